//! When scheduled tasks run: recurrence by a cron expression in an IANA time zone, and what
//! happens to occurrences missed while no node was running (the catch-up policy).
//!
//! Cron expressions have five fields — minute, hour, day of month, month, day of week — in the
//! usual syntax (`*`, lists, ranges, steps, month and day names, `L` for the last day), read in
//! the task's time zone. Daylight-saving transitions follow one rule: a local time that does not
//! exist that day (the clocks jump over it) fires at the first valid instant after the jump;
//! a local time that happens twice (the clocks go back) fires once, at its first instant.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

/// Why a schedule cannot be used.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("invalid cron expression `{expression}`: {reason}")]
    Cron { expression: String, reason: String },
    #[error("unknown time zone `{0}` (expected an IANA name such as Europe/Moscow)")]
    TimeZone(String),
    #[error("the cron expression `{0}` never fires")]
    Never(String),
    #[error("invalid catch-up policy `{0}`")]
    CatchUp(String),
}

/// A recurring schedule: a cron expression read in a time zone.
#[derive(Clone, Debug)]
pub struct Recurrence {
    expression: String,
    cron: Cron,
    zone: Tz,
}

impl PartialEq for Recurrence {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.zone == other.zone
    }
}

impl Eq for Recurrence {}

/// Occurrences looked at before a schedule is declared to never fire again (a repeated local
/// hour skips at most a few dozen of them).
const SEARCH_LIMIT: usize = 512;

impl Recurrence {
    /// Parses and checks `expression` (five fields) in the IANA zone `zone`.
    pub fn parse(expression: &str, zone: &str) -> Result<Recurrence, ScheduleError> {
        let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        let cron_error = |reason: String| ScheduleError::Cron {
            expression: expression.clone(),
            reason,
        };
        if expression.split(' ').count() != 5 {
            return Err(cron_error(
                "expected five fields: minute hour day-of-month month day-of-week".into(),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&expression)
            .map_err(|e| cron_error(e.to_string()))?;
        let zone = Tz::from_str(zone.trim()).map_err(|_| ScheduleError::TimeZone(zone.into()))?;
        let recurrence = Recurrence {
            expression,
            cron,
            zone,
        };
        // A pattern such as `0 0 31 2 *` parses but names no real day.
        let probe = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        if recurrence.next_after(probe).is_none() {
            return Err(ScheduleError::Never(recurrence.expression));
        }
        Ok(recurrence)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// The first occurrence strictly after `after`, `None` when there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let previous_local = after.with_timezone(&self.zone).naive_local();
        let mut from = after.with_timezone(&self.zone);
        for _ in 0..SEARCH_LIMIT {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            // The clocks went back: a wall time not later than the previous occurrence's has
            // already fired once.
            if next.naive_local() > previous_local {
                return Some(next.with_timezone(&Utc));
            }
            from = next;
        }
        None
    }
}

/// What to do with the occurrences of a task that fell due while nothing ran it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum CatchUp {
    /// Run every missed occurrence, one after another.
    #[default]
    FireAllMissed,
    /// Run a recurring task once for all its missed occurrences, then carry on from now.
    FireOnce,
    /// An occurrence later than this many seconds is skipped with the reason recorded.
    SkipIfOlderThan { seconds: u64 },
}

/// What the scheduler does with a claimed task given the time now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firing {
    /// Run it.
    Run,
    /// Do not run it: it is later than its policy allows, by this much.
    Skip { late: Duration },
}

impl CatchUp {
    /// The stored form: `fire_all_missed`, `fire_once`, `skip_if_older_than:SECONDS`.
    pub fn as_text(&self) -> String {
        match self {
            CatchUp::FireAllMissed => "fire_all_missed".into(),
            CatchUp::FireOnce => "fire_once".into(),
            CatchUp::SkipIfOlderThan { seconds } => format!("skip_if_older_than:{seconds}"),
        }
    }

    pub fn from_text(text: &str) -> Result<CatchUp, ScheduleError> {
        match text {
            "fire_all_missed" => Ok(CatchUp::FireAllMissed),
            "fire_once" => Ok(CatchUp::FireOnce),
            other => other
                .strip_prefix("skip_if_older_than:")
                .and_then(|s| s.parse().ok())
                .map(|seconds| CatchUp::SkipIfOlderThan { seconds })
                .ok_or_else(|| ScheduleError::CatchUp(other.into())),
        }
    }

    /// Whether an occurrence due at `due` runs at `now`.
    pub fn firing(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Firing {
        let late = (now - due).to_std().unwrap_or(Duration::ZERO);
        match self {
            CatchUp::SkipIfOlderThan { seconds } if late > Duration::from_secs(*seconds) => {
                Firing::Skip { late }
            }
            _ => Firing::Run,
        }
    }

    /// The occurrence after the one due at `due`, for a task handled at `now`: every missed
    /// one in turn (`FireAllMissed`), or the first after now when the task ran late
    /// (`FireOnce` coalesces; a skipped late occurrence has no reason to queue the others).
    pub fn next_occurrence(
        &self,
        recurrence: &Recurrence,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let next = recurrence.next_after(due)?;
        match self {
            CatchUp::FireAllMissed => Some(next),
            CatchUp::FireOnce | CatchUp::SkipIfOlderThan { .. } if next < now => {
                recurrence.next_after(now)
            }
            _ => Some(next),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone as _;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        let err = Recurrence::parse("0 9 * *", "UTC").unwrap_err();
        assert!(err.to_string().contains("five fields"), "{err}");
        let err = Recurrence::parse("61 9 * * *", "UTC").unwrap_err();
        assert!(matches!(err, ScheduleError::Cron { .. }), "{err}");
        let err = Recurrence::parse("0 9 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(err, ScheduleError::TimeZone("Mars/Olympus".into()));
        let err = Recurrence::parse("0 0 31 2 *", "UTC").unwrap_err();
        assert!(matches!(err, ScheduleError::Never(_)), "{err}");
        assert!(Recurrence::parse(" 0  9 * * MON-FRI ", "Europe/Moscow").is_ok());
    }

    #[test]
    fn occurrences_are_read_in_the_time_zone() {
        let r = Recurrence::parse("0 9 * * *", "Europe/Moscow").unwrap();
        // 09:00 in Moscow is 06:00 UTC.
        assert_eq!(
            r.next_after(utc("2026-03-01T06:00:00Z")),
            Some(utc("2026-03-02T06:00:00Z"))
        );
        assert_eq!(
            r.next_after(utc("2026-03-01T05:59:59Z")),
            Some(utc("2026-03-01T06:00:00Z"))
        );
    }

    #[test]
    fn a_skipped_local_time_fires_at_the_next_valid_instant() {
        // Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let r = Recurrence::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let next = r.next_after(utc("2026-03-28T12:00:00Z")).unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            next,
            berlin
                .with_ymd_and_hms(2026, 3, 29, 3, 0, 0)
                .unwrap()
                .to_utc()
        );
        // And the day after, 02:30 as usual.
        assert_eq!(
            r.next_after(next),
            Some(
                berlin
                    .with_ymd_and_hms(2026, 3, 30, 2, 30, 0)
                    .unwrap()
                    .to_utc()
            )
        );
    }

    #[test]
    fn a_repeated_local_time_fires_once() {
        // Berlin, 25 October 2026: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let r = Recurrence::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let first = r.next_after(utc("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
        assert_eq!(r.next_after(first), Some(utc("2026-10-26T01:30:00Z")));
        // An interval schedule does not repeat the hour that comes twice either.
        let every_half_hour = Recurrence::parse("*/30 * * * *", "Europe/Berlin").unwrap();
        let mut at = utc("2026-10-24T23:45:00Z"); // 01:45 CEST
        let mut fired = Vec::new();
        for _ in 0..4 {
            at = every_half_hour.next_after(at).unwrap();
            fired.push(at);
        }
        assert_eq!(
            fired,
            vec![
                utc("2026-10-25T00:00:00Z"), // 02:00 CEST
                utc("2026-10-25T00:30:00Z"), // 02:30 CEST
                utc("2026-10-25T02:00:00Z"), // 03:00 CET: 02:00 and 02:30 CET came already
                utc("2026-10-25T02:30:00Z"),
            ]
        );
    }

    #[test]
    fn catch_up_policies() {
        let r = Recurrence::parse("0 * * * *", "UTC").unwrap();
        let due = utc("2026-05-01T10:00:00Z");
        let now = utc("2026-05-01T13:20:00Z");
        assert_eq!(
            CatchUp::FireAllMissed.next_occurrence(&r, due, now),
            Some(utc("2026-05-01T11:00:00Z"))
        );
        assert_eq!(
            CatchUp::FireOnce.next_occurrence(&r, due, now),
            Some(utc("2026-05-01T14:00:00Z"))
        );
        let skip = CatchUp::SkipIfOlderThan { seconds: 600 };
        assert_eq!(
            skip.firing(due, now),
            Firing::Skip {
                late: Duration::from_secs(12_000)
            }
        );
        assert_eq!(
            skip.firing(due, due + chrono::Duration::minutes(5)),
            Firing::Run
        );
        assert_eq!(CatchUp::FireOnce.firing(due, now), Firing::Run);
        for policy in [CatchUp::FireAllMissed, CatchUp::FireOnce, skip] {
            assert_eq!(CatchUp::from_text(&policy.as_text()), Ok(policy));
        }
        assert!(CatchUp::from_text("skip_if_older_than:soon").is_err());
    }
}
