//! The time-series chart as inline SVG drawn by Tessera (no chart library to vendor): one
//! bar per bucket, a baseline, the highest count and the first and last dates as text.
//! Each bar carries a `<title>` (its date and count, shown on hover and read by screen
//! readers); the card adds the same numbers as a table for anyone who cannot see it.

use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room for the labels under and left of the plot.
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

/// One bar: its label (a date in words) and its count.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub count: u64,
}

/// The chart of `bars`, titled `title` (the SVG's accessible name).
pub fn bars(title: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let step = plot_w / bars.len().max(1) as f64;
    // A gap between bars while they are wide enough to show one.
    let gap = if step > 4.0 { step * 0.15 } else { 0.0 };
    let y_of = |n: u64| TOP + plot_h - plot_h * n as f64 / max as f64;
    let baseline = TOP + plot_h;
    html! {
        svg.series-chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-label=(title) preserveAspectRatio="none" {
            title { (title) }
            line.axis x1=(LEFT) y1=(baseline) x2=(WIDTH - 8.0) y2=(baseline) {}
            line.grid x1=(LEFT) y1=(TOP) x2=(WIDTH - 8.0) y2=(TOP) {}
            text.tick x=(LEFT - 4.0) y=(TOP + 4.0) text-anchor="end" { (super::thousands(max)) }
            text.tick x=(LEFT - 4.0) y=(baseline) text-anchor="end" { "0" }
            @for (i, b) in bars.iter().enumerate() {
                @let x = LEFT + step * i as f64 + gap / 2.0;
                @let y = y_of(b.count);
                rect.bar x=(fmt(x)) y=(fmt(y)) width=(fmt((step - gap).max(0.5)))
                    height=(fmt(baseline - y)) {
                    title { (b.label) ": " (super::thousands(b.count)) }
                }
            }
            @if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
                text.tick x=(LEFT) y=(HEIGHT - 6.0) text-anchor="start" { (first.label) }
                @if bars.len() > 1 {
                    text.tick x=(WIDTH - 8.0) y=(HEIGHT - 6.0) text-anchor="end" { (last.label) }
                }
            }
        }
    }
}

/// Two decimals are plenty at this size and keep the markup short.
fn fmt(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bar_is_as_tall_as_its_count_and_titled() {
        let data = [
            Bar {
                label: "1 Jan 2025".into(),
                count: 10,
            },
            Bar {
                label: "2 Jan 2025".into(),
                count: 5,
            },
            Bar {
                label: "3 Jan 2025".into(),
                count: 0,
            },
        ];
        let svg = bars("Items per day", &data).into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("<title>2 Jan 2025: 5</title>"), "{svg}");
        let heights: Vec<f64> = svg
            .split("height=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
            .collect();
        assert_eq!(heights.len(), 3);
        assert!((heights[0] - 2.0 * heights[1]).abs() < 0.02, "{heights:?}");
        assert_eq!(heights[2], 0.0);
    }
}
