//! One measured figure and its JSON line: `{"bench","value","unit","baseline","ratio","target","ok"}`.

use serde::Serialize;

/// Which way a figure's ratio must lie from its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// `ok` when `ratio >= target` (throughput).
    AtLeast,
    /// `ok` when `ratio <= target` (latency).
    AtMost,
    /// `ok` when the `value` itself is at most `target`, in `unit`: an absolute bound (a
    /// latency in ms, a count, a memory size), with `baseline` and `ratio` for comparison.
    ValueAtMost,
}

/// Serialised in this field order, which is the agreed order of the keys.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub bench: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub baseline: f64,
    /// `value / baseline`; `None` when the baseline is not a positive number.
    pub ratio: Option<f64>,
    pub target: f64,
    pub ok: bool,
}

impl Figure {
    /// A figure compared with its baseline; `sound` is false when the measurement itself went
    /// wrong (errors during the run), which fails the figure whatever the ratio.
    pub fn new(
        bench: &'static str,
        unit: &'static str,
        value: f64,
        baseline: f64,
        goal: Goal,
        target: f64,
        sound: bool,
    ) -> Figure {
        let ratio = (baseline > 0.0 && value.is_finite()).then(|| value / baseline);
        let meets = match (ratio, goal) {
            (Some(r), Goal::AtLeast) => r >= target,
            (Some(r), Goal::AtMost) => r <= target,
            (_, Goal::ValueAtMost) => value <= target,
            (None, _) => false,
        };
        Figure {
            bench,
            value,
            unit,
            baseline,
            ratio,
            target,
            ok: sound && meets,
        }
    }

    pub fn to_json(&self) -> String {
        let rounded = Figure {
            value: round(self.value, 3),
            baseline: round(self.baseline, 3),
            ratio: self.ratio.map(|r| round(r, 3)),
            ..self.clone()
        };
        // A struct of plain numbers, strings and booleans always serialises; NaN becomes null.
        serde_json::to_string(&rounded).unwrap_or_default()
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ratios_meet_their_target_in_the_right_direction() {
        let tput = Figure::new("t", "req/s", 600.0, 1000.0, Goal::AtLeast, 0.5, true);
        assert_eq!(tput.ratio, Some(0.6));
        assert!(tput.ok);
        assert!(!Figure::new("t", "req/s", 400.0, 1000.0, Goal::AtLeast, 0.5, true).ok);
        assert!(Figure::new("l", "ms", 2.0, 1.0, Goal::AtMost, 3.0, true).ok);
        assert!(!Figure::new("l", "ms", 4.0, 1.0, Goal::AtMost, 3.0, true).ok);
        // Errors during the run fail a figure whatever its ratio; so does a zero baseline.
        assert!(!Figure::new("t", "req/s", 900.0, 1000.0, Goal::AtLeast, 0.5, false).ok);
        let zero = Figure::new("t", "req/s", 900.0, 0.0, Goal::AtLeast, 0.5, true);
        assert!(!zero.ok && zero.ratio.is_none());
        // An absolute bound judges the value, whatever the baseline.
        assert!(Figure::new("a", "ms", 40.0, 0.0, Goal::ValueAtMost, 50.0, true).ok);
        assert!(!Figure::new("a", "ms", 60.0, 90.0, Goal::ValueAtMost, 50.0, true).ok);
        assert!(Figure::new("n", "messages", 0.0, 0.0, Goal::ValueAtMost, 0.0, true).ok);
    }

    #[test]
    fn json_line_has_exactly_the_agreed_keys() {
        let line = Figure::new(
            "api_x",
            "req/s",
            1234.5678,
            2000.0,
            Goal::AtLeast,
            0.5,
            true,
        )
        .to_json();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "baseline", "bench", "ok", "ratio", "target", "unit", "value"
            ]
        );
        assert_eq!(v["value"], 1234.568);
        assert_eq!(v["ratio"], 0.617);
        assert_eq!(v["ok"], true);
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(
                r#"{"bench":"api_x","value":1234.568,"unit":"req/s","baseline":2000.0,"#
            )
        );
    }
}
