//! The part of the MapLibre style expression language our styles use, evaluated per
//! feature, so that a picture colours, sizes and filters exactly as the style says
//! (operators as in the MapLibre Style Specification, "Expressions").
//!
//! An operator outside this subset evaluates to `null`: a filter is then false and a
//! paint property falls back to its default, so an unknown style draws less, never wrong
//! colours from a guess.

use serde_json::{Value as Json, json};
use std::collections::HashMap;

/// What an expression may read: the map's zoom and one feature.
#[derive(Debug)]
pub struct Context<'a> {
    pub zoom: f64,
    /// `Point`, `LineString` or `Polygon` (MapLibre reports multi-parts by the same names).
    pub geometry_type: &'a str,
    pub properties: &'a HashMap<String, Json>,
}

/// Evaluates `e` for `ctx`.
pub fn eval(e: &Json, ctx: &Context) -> Json {
    Evaluator {
        ctx,
        vars: Vec::new(),
    }
    .eval(e)
}

/// Whether a layer's `filter` lets a feature through (no filter: all pass).
pub fn passes(filter: Option<&Json>, ctx: &Context) -> bool {
    filter.is_none_or(|f| truthy(&eval(f, ctx)))
}

pub fn truthy(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Null => false,
        Json::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Json::String(s) => !s.is_empty(),
        _ => true,
    }
}

struct Evaluator<'a> {
    ctx: &'a Context<'a>,
    vars: Vec<(String, Json)>,
}

fn num(v: &Json) -> Option<f64> {
    v.as_f64()
}

/// MapLibre's `to-string`: numbers without a trailing `.0`, null as "".
pub fn to_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(x)) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

impl Evaluator<'_> {
    fn eval(&mut self, e: &Json) -> Json {
        let Some(items) = e.as_array() else {
            return e.clone();
        };
        let Some(op) = items.first().and_then(Json::as_str) else {
            return e.clone();
        };
        let args = &items[1..];
        let arg = |i: usize| args.get(i).unwrap_or(&Json::Null);
        match op {
            "literal" => arg(0).clone(),
            "get" => self
                .ctx
                .properties
                .get(arg(0).as_str().unwrap_or(""))
                .cloned()
                .unwrap_or(Json::Null),
            "has" => json!(
                self.ctx
                    .properties
                    .contains_key(arg(0).as_str().unwrap_or(""))
            ),
            "geometry-type" => json!(self.ctx.geometry_type),
            "zoom" => json!(self.ctx.zoom),
            "to-string" => json!(to_text(&self.eval(arg(0)))),
            "to-number" => {
                let v = self.eval(arg(0));
                match &v {
                    Json::String(s) => s.trim().parse::<f64>().map_or(Json::Null, |x| json!(x)),
                    Json::Bool(b) => json!(u8::from(*b)),
                    _ => v,
                }
            }
            "downcase" => json!(to_text(&self.eval(arg(0))).to_lowercase()),
            "upcase" => json!(to_text(&self.eval(arg(0))).to_uppercase()),
            "!" => json!(!truthy(&self.eval(arg(0)))),
            "all" => json!(args.iter().all(|a| truthy(&self.eval(a)))),
            "any" => json!(args.iter().any(|a| truthy(&self.eval(a)))),
            "==" | "!=" => {
                let same = loose_eq(&self.eval(arg(0)), &self.eval(arg(1)));
                json!(same == (op == "=="))
            }
            "<" | ">" | "<=" | ">=" => {
                let (a, b) = (self.eval(arg(0)), self.eval(arg(1)));
                let Some(order) = compare(&a, &b) else {
                    return json!(false);
                };
                json!(match op {
                    "<" => order.is_lt(),
                    ">" => order.is_gt(),
                    "<=" => order.is_le(),
                    _ => order.is_ge(),
                })
            }
            "coalesce" => args
                .iter()
                .map(|a| self.eval(a))
                .find(|v| !v.is_null())
                .unwrap_or(Json::Null),
            "case" => {
                let mut i = 0;
                while i + 1 < args.len() {
                    if truthy(&self.eval(&args[i])) {
                        return self.eval(&args[i + 1]);
                    }
                    i += 2;
                }
                args.last().map_or(Json::Null, |d| self.eval(d))
            }
            "match" => self.matching(args),
            "step" => self.step(args),
            "interpolate" => self.interpolate(args),
            "let" => {
                let depth = self.vars.len();
                let mut i = 0;
                while i + 1 < args.len() {
                    let v = self.eval(&args[i + 1]);
                    self.vars.push((to_text(&args[i]), v));
                    i += 2;
                }
                let out = args.last().map_or(Json::Null, |b| self.eval(b));
                self.vars.truncate(depth);
                out
            }
            "var" => {
                let name = arg(0).as_str().unwrap_or("");
                let found = self.vars.iter().rev().find(|(n, _)| n == name);
                found.map_or(Json::Null, |(_, v)| v.clone())
            }
            "in" => {
                let (needle, hay) = (self.eval(arg(0)), self.eval(arg(1)));
                match hay {
                    Json::String(s) => json!(s.contains(&to_text(&needle))),
                    Json::Array(a) => json!(a.iter().any(|x| loose_eq(x, &needle))),
                    _ => json!(false),
                }
            }
            "index-of" => {
                let (needle, hay) = (self.eval(arg(0)), self.eval(arg(1)));
                let at = match hay {
                    Json::String(s) => s
                        .find(&to_text(&needle))
                        .map(|b| s[..b].chars().count() as i64),
                    Json::Array(a) => a
                        .iter()
                        .position(|x| loose_eq(x, &needle))
                        .map(|i| i as i64),
                    _ => None,
                };
                json!(at.unwrap_or(-1))
            }
            "concat" => json!(
                args.iter()
                    .map(|a| to_text(&self.eval(a)))
                    .collect::<String>()
            ),
            "+" | "*" => {
                let values: Option<Vec<f64>> = args.iter().map(|a| num(&self.eval(a))).collect();
                values.map_or(Json::Null, |v| {
                    json!(if op == "+" {
                        v.iter().sum::<f64>()
                    } else {
                        v.iter().product()
                    })
                })
            }
            _ => Json::Null,
        }
    }

    fn matching(&mut self, args: &[Json]) -> Json {
        let Some(input) = args.first().map(|a| self.eval(a)) else {
            return Json::Null;
        };
        let mut i = 1;
        while i + 1 < args.len() {
            let hit = match &args[i] {
                Json::Array(labels) => labels.iter().any(|l| loose_eq(l, &input)),
                label => loose_eq(label, &input),
            };
            if hit {
                return self.eval(&args[i + 1]);
            }
            i += 2;
        }
        args.last()
            .filter(|_| args.len().is_multiple_of(2))
            .map_or(Json::Null, |d| self.eval(d))
    }

    fn step(&mut self, args: &[Json]) -> Json {
        let Some(x) = args.first().and_then(|a| num(&self.eval(a))) else {
            return Json::Null;
        };
        let mut out = args.get(1).cloned().unwrap_or(Json::Null);
        for pair in args.get(2..).unwrap_or(&[]).chunks(2) {
            match (num(&pair[0]), pair.get(1)) {
                (Some(stop), Some(v)) if x >= stop => out = v.clone(),
                _ => break,
            }
        }
        self.eval(&out)
    }

    /// Numeric stops only (widths, radii, opacities); colour stops take the nearer side.
    fn interpolate(&mut self, args: &[Json]) -> Json {
        let base = match args.first().and_then(Json::as_array) {
            Some(kind) if kind.first().and_then(Json::as_str) == Some("exponential") => {
                kind.get(1).and_then(num).unwrap_or(1.0)
            }
            _ => 1.0,
        };
        let Some(x) = args.get(1).and_then(|a| num(&self.eval(a))) else {
            return Json::Null;
        };
        let stops: Vec<(f64, Json)> = args
            .get(2..)
            .unwrap_or(&[])
            .chunks(2)
            .filter_map(|p| Some((num(&p[0])?, self.eval(p.get(1)?))))
            .collect();
        let (Some(first), Some(last)) = (stops.first(), stops.last()) else {
            return Json::Null;
        };
        if x <= first.0 {
            return first.1.clone();
        }
        if x >= last.0 {
            return last.1.clone();
        }
        let i = stops
            .iter()
            .position(|(s, _)| *s > x)
            .unwrap_or(stops.len() - 1);
        let ((x0, v0), (x1, v1)) = (&stops[i - 1], &stops[i]);
        let t = if (base - 1.0).abs() < 1e-9 {
            (x - x0) / (x1 - x0)
        } else {
            (base.powf(x - x0) - 1.0) / (base.powf(x1 - x0) - 1.0)
        };
        match (num(v0), num(v1)) {
            (Some(a), Some(b)) => json!(a + (b - a) * t),
            _ if t < 0.5 => v0.clone(),
            _ => v1.clone(),
        }
    }
}

/// Equality as the style means it: numbers by value (an integer property equals a float
/// literal), everything else exactly.
fn loose_eq(a: &Json, b: &Json) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Json::String(x), Json::String(y)) => Some(x.cmp(y)),
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(props: Json, f: impl FnOnce(&Context)) {
        let properties: HashMap<String, Json> = serde_json::from_value(props).unwrap();
        f(&Context {
            zoom: 12.0,
            geometry_type: "Point",
            properties: &properties,
        });
    }

    #[test]
    fn the_expressions_of_our_styles() {
        with(
            json!({"kind": "Noise", "point_count": 150, "cluster": true}),
            |c| {
                let colour = json!([
                    "match",
                    ["to-string", ["get", "kind"]],
                    "Noise",
                    "#111111",
                    "Heat",
                    "#222222",
                    "#888888"
                ]);
                assert_eq!(eval(&colour, c), json!("#111111"));
                let radius = json!(["step", ["get", "point_count"], 13, 100, 17, 1000, 22]);
                assert_eq!(eval(&radius, c), json!(17));
                let width = json!(["interpolate", ["linear"], ["zoom"], 8, 3, 16, 11]);
                assert_eq!(eval(&width, c), json!(7.0));
                assert!(passes(Some(&json!(["==", ["get", "cluster"], true])), c));
                assert!(!passes(Some(&json!(["!=", ["get", "cluster"], true])), c));
                let geom = json!([
                    "match",
                    ["geometry-type"],
                    ["Polygon", "MultiPolygon"],
                    true,
                    false
                ]);
                assert!(!passes(Some(&geom), c));
                let insp = json!([
                    "let",
                    "r",
                    ["downcase", ["get", "kind"]],
                    ["case", ["in", "noi", ["var", "r"]], "#c62828", "#757575"]
                ]);
                assert_eq!(eval(&insp, c), json!("#c62828"));
                assert_eq!(eval(&json!(["some-new-op", 1]), c), Json::Null);
            },
        );
    }
}
