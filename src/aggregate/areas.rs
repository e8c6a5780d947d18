//! A boundary dataset read once per version into what counting needs: the polygon
//! index, and per area its served id, name, population and join keys.

use super::{AggregateError, AreaIndex};
use crate::model::{DatasetInfo, Value};
use crate::store::{Query, Snapshot, StoredGeometry};
use std::collections::HashMap;

/// The areas of one boundary dataset version. Areas are numbered by their position in
/// the store's order (its internal id order): that number is the area id given to
/// [`AreaIndex`], so ties on shared edges go to the area stored first.
#[derive(Debug)]
pub struct Areas {
    pub version: i64,
    pub index: AreaIndex,
    /// Served feature id of each area.
    pub ids: Vec<String>,
    pub names: Vec<Option<String>>,
    /// Residents, when the dataset names a population field and the area has a number.
    pub population: Vec<Option<f64>>,
    /// Whether the dataset has a population field at all (then `rate` is reported).
    pub has_population: bool,
    /// Every property of each area, for attribute joins on any key field.
    values: Vec<Vec<Value>>,
    fields: Vec<String>,
}

/// Field names tried, in order, for an area's display name (case-insensitive).
const NAME_FIELDS: &[&str] = &[
    "name",
    "ntaname",
    "neighborhood",
    "neighbourhood",
    "community",
    "boro_name",
    "borough",
    "lsoa11nm",
    "lsoa21nm",
    "msoa11nm",
    "wd18nm",
];

impl Areas {
    /// Reads the polygons of `ds`; fails when it holds none.
    pub fn load(snap: &dyn Snapshot, ds: &DatasetInfo) -> Result<Self, AggregateError> {
        let name_field = name_field(ds);
        let population_field = ds
            .meta
            .population
            .as_deref()
            .and_then(|f| ds.field_index(f));
        let mut shapes = Vec::new();
        let (mut ids, mut names, mut population, mut values) = (vec![], vec![], vec![], vec![]);
        let q = Query::default();
        snap.scan(ds, &q, &mut |f| {
            let Some(StoredGeometry::Shape { geometry, .. }) = f.geometry else {
                return true;
            };
            shapes.push((ids.len() as i64, geometry));
            ids.push(f.id);
            names.push(name_field.and_then(|i| f.values.get(i)).and_then(text));
            population.push(
                population_field
                    .and_then(|i| f.values.get(i))
                    .and_then(number),
            );
            values.push(f.values);
            true
        })?;
        let index = AreaIndex::build(shapes);
        if index.is_empty() {
            return Err(AggregateError::NotAreas(ds.id.to_string()));
        }
        Ok(Self {
            version: ds.version,
            index,
            ids,
            names,
            population,
            has_population: population_field.is_some(),
            values,
            fields: ds.fields.iter().map(|f| f.name.clone()).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The area number of each value of field `key`, as text (see [`join_text`]); `None`
    /// when the dataset has no such field.
    pub fn keys(&self, key: &str) -> Option<HashMap<String, u32>> {
        let field = self.fields.iter().position(|f| f == key)?;
        let mut out = HashMap::new();
        for (slot, row) in self.values.iter().enumerate() {
            if let Some(k) = row.get(field).and_then(join_text) {
                // The first area with a key wins, as on shared edges.
                out.entry(k).or_insert(slot as u32);
            }
        }
        Some(out)
    }
}

pub(super) fn name_field(ds: &DatasetInfo) -> Option<usize> {
    let lower: Vec<String> = ds.fields.iter().map(|f| f.name.to_lowercase()).collect();
    NAME_FIELDS
        .iter()
        .find_map(|n| lower.iter().position(|f| f == n))
        .or_else(|| lower.iter().position(|f| f.contains("name")))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(x) => Some(x.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(x) => Some(*x),
        Value::Text(s) => s.trim().replace(',', "").parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A value as a join key: trimmed text, and whole numbers without a fraction, so that
/// `35`, `35.0` and `" 35"` (a number in one file, text in the other) meet.
pub fn join_text(v: &Value) -> Option<String> {
    let t = match v {
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => (*x as i64).to_string(),
        Value::Text(s) => {
            let s = s.trim();
            match s.parse::<f64>() {
                Ok(x) if x.fract() == 0.0 && x.abs() < 1e15 && !s.is_empty() => {
                    (x as i64).to_string()
                }
                _ => s.to_owned(),
            }
        }
        other => text(other)?,
    };
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keys_meet_across_number_and_text() {
        let a = join_text(&Value::Integer(35));
        assert_eq!(a.as_deref(), Some("35"));
        assert_eq!(join_text(&Value::Number(35.0)), a);
        assert_eq!(join_text(&Value::Text(" 35 ".into())), a);
        assert_eq!(
            join_text(&Value::Text("Brooklyn".into())).as_deref(),
            Some("Brooklyn")
        );
        assert_eq!(join_text(&Value::Text("  ".into())), None);
        assert_eq!(join_text(&Value::Null), None);
    }
}
