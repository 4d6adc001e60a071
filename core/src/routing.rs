//! Routing: which operator gets a conversation, when a group is open, which auto-reply a customer
//! receives and which queued conversation an operator takes next.
//!
//! Everything here is a pure function of its arguments. The router actor gathers the facts
//! (presence, load, competency, the clock) and asks these functions; it never decides by itself,
//! so every decision can be tested without a runtime and replayed from the same inputs.
//!
//! Ties are always broken down to the user or conversation id, so two nodes that see the same
//! facts make the same choice, and tests are deterministic.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, GroupId, UserId};

/// How a group distributes new conversations among its operators.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// In turn: the operator who got a conversation longest ago (or never) gets the next.
    #[default]
    RoundRobin,
    /// The operator with the lowest share of their capacity in use.
    LeastBusy,
    /// The operator with the highest competency in the group; load breaks ties.
    MostSkilled,
}

impl RoutingMode {
    pub const ALL: [RoutingMode; 3] = [
        RoutingMode::RoundRobin,
        RoutingMode::LeastBusy,
        RoutingMode::MostSkilled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoutingMode::RoundRobin => "round_robin",
            RoutingMode::LeastBusy => "least_busy",
            RoutingMode::MostSkilled => "most_skilled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Whether an operator is at the console. Only `online` operators receive new conversations;
/// `away` keeps the operator's current conversations but takes no new ones.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Away,
    #[default]
    Offline,
}

impl Presence {
    pub const ALL: [Presence; 3] = [Presence::Online, Presence::Away, Presence::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One operator of a group as the router sees them at the moment of a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Candidate {
    pub user_id: UserId,
    pub presence: Presence,
    /// False when the operator switched on "no new chats".
    pub accepting_new: bool,
    /// How many conversations the operator handles at once.
    pub capacity: u32,
    /// How many conversations are assigned to them and not resolved.
    pub active: u32,
    /// Competency in this group, 1–100.
    pub competency: u8,
    /// When the operator was last given a conversation by the router.
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// Whether the operator may be given one more conversation right now.
pub fn can_take(c: &Candidate) -> bool {
    c.presence == Presence::Online && c.accepting_new && c.active < c.capacity
}

/// Longest ago first; never assigned before anyone who was.
fn by_turn(a: &Candidate, b: &Candidate) -> Ordering {
    // `None < Some(_)` is exactly "never assigned goes first".
    a.last_assigned_at.cmp(&b.last_assigned_at)
}

/// Lower share of capacity in use first, then fewer active, then longest ago.
fn by_load(a: &Candidate, b: &Candidate) -> Ordering {
    // a.active / a.capacity vs b.active / b.capacity, cross-multiplied in u64 so it neither
    // overflows nor rounds like floats would (1/3 vs 2/6 must tie).
    let share = (u64::from(a.active) * u64::from(b.capacity))
        .cmp(&(u64::from(b.active) * u64::from(a.capacity)));
    share
        .then(a.active.cmp(&b.active))
        .then_with(|| by_turn(a, b))
}

/// Chooses the operator for a new conversation among those who [`can_take`] it, or `None` when
/// nobody can (the conversation then waits in the queue).
///
/// - `RoundRobin`: assigned longest ago, never assigned first.
/// - `LeastBusy`: lowest `active / capacity`, then fewest active, then longest ago.
/// - `MostSkilled`: highest competency, then as `LeastBusy`.
///
/// Remaining ties go to the lowest user id, so the answer never depends on the slice's order.
pub fn pick(mode: RoutingMode, candidates: &[Candidate]) -> Option<UserId> {
    let order = |a: &&Candidate, b: &&Candidate| {
        let primary = match mode {
            RoutingMode::RoundRobin => by_turn(a, b),
            RoutingMode::LeastBusy => by_load(a, b),
            RoutingMode::MostSkilled => b.competency.cmp(&a.competency).then_with(|| by_load(a, b)),
        };
        primary.then(a.user_id.cmp(&b.user_id))
    };
    candidates
        .iter()
        .filter(|c| can_take(c))
        .min_by(order)
        .map(|c| c.user_id)
}

/// Checks an operator's competency in a group: 1 to 100.
pub fn validate_competency(competency: u8) -> Result<u8, RoutingError> {
    if (1..=100).contains(&competency) {
        Ok(competency)
    } else {
        Err(RoutingError::Competency(competency))
    }
}

/// The wall-clock times of one working period, in the group's time zone.
///
/// In JSON both ends are `"HH:MM"`. `end` must be later than `start`, except that an `end` of
/// `"00:00"` means midnight at the end of the day, so `{"start":"22:00","end":"00:00"}` is the
/// last two hours of the day and `00:00`–`00:00` the whole day. A period across midnight is
/// written as two: the evening on one day and the morning on the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimeRange {
    #[serde(with = "hh_mm")]
    #[schema(value_type = String, example = "09:00")]
    pub start: NaiveTime,
    #[serde(with = "hh_mm")]
    #[schema(value_type = String, example = "18:00")]
    pub end: NaiveTime,
}

const SECONDS_PER_DAY: u32 = 24 * 60 * 60;

impl TimeRange {
    /// Seconds since midnight at which the range starts.
    fn start_secs(&self) -> u32 {
        self.start.num_seconds_from_midnight()
    }

    /// Seconds since midnight at which the range ends, with a `00:00` end counted as 24:00.
    fn end_secs(&self) -> u32 {
        match self.end.num_seconds_from_midnight() {
            0 => SECONDS_PER_DAY,
            s => s,
        }
    }

    /// Whether the wall-clock time `t` falls inside (start inclusive, end exclusive).
    pub fn contains(&self, t: NaiveTime) -> bool {
        let s = t.num_seconds_from_midnight();
        self.start_secs() <= s && s < self.end_secs()
    }
}

/// Serde for `NaiveTime` as exactly `"HH:MM"` (chrono's own form carries seconds, which the
/// console never shows and a schedule never needs).
mod hh_mm {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", t.hour(), t.minute()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let raw = String::deserialize(d)?;
        parse(&raw).ok_or_else(|| D::Error::custom(format!("`{raw}` is not a time as HH:MM")))
    }

    pub(super) fn parse(raw: &str) -> Option<NaiveTime> {
        let b = raw.as_bytes();
        // Exactly two digits, a colon, two digits: "9:00" or "09:00:00" are refused rather
        // than guessed at.
        if b.len() != 5 || b[2] != b':' {
            return None;
        }
        let two = |hi: u8, lo: u8| {
            (hi.is_ascii_digit() && lo.is_ascii_digit())
                .then(|| u32::from(hi - b'0') * 10 + u32::from(lo - b'0'))
        };
        NaiveTime::from_hms_opt(two(b[0], b[1])?, two(b[3], b[4])?, 0)
    }
}

/// At most this many working periods per day: a real schedule has two or three, and the bound
/// keeps a hostile settings payload small.
pub const MAX_RANGES_PER_DAY: usize = 12;

/// A group's working hours: periods per weekday in an IANA time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WeeklyHours {
    /// IANA time-zone name, e.g. `Europe/Moscow`; daylight-saving changes follow it.
    #[schema(example = "Europe/Moscow")]
    pub timezone: String,
    /// When true the group is always open and `days` is ignored (but still validated).
    pub always_open: bool,
    /// Periods per weekday, Monday first; each day's periods sorted and not overlapping.
    #[schema(value_type = Vec<Vec<TimeRange>>)]
    pub days: [Vec<TimeRange>; 7],
}

impl Default for WeeklyHours {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            always_open: true,
            days: Default::default(),
        }
    }
}

/// What is wrong with one working period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeProblem {
    /// `end` is not after `start` (and is not the midnight `00:00`).
    EndNotAfterStart,
    /// It starts before the end of the previous period of the same day.
    OverlapsPrevious,
}

impl std::fmt::Display for RangeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RangeProblem::EndNotAfterStart => "must end after it starts",
            RangeProblem::OverlapsPrevious => {
                "must start at or after the end of the previous period"
            }
        })
    }
}

fn timezone(name: &str) -> Result<chrono_tz::Tz, RoutingError> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| RoutingError::UnknownTimezone(name.to_owned()))
}

impl WeeklyHours {
    /// Checks the time zone and every day's periods; called before settings are saved.
    pub fn validate(&self) -> Result<(), RoutingError> {
        timezone(&self.timezone)?;
        for (day, ranges) in self.days.iter().enumerate() {
            if ranges.len() > MAX_RANGES_PER_DAY {
                return Err(RoutingError::TooManyRanges {
                    day,
                    max: MAX_RANGES_PER_DAY,
                });
            }
            let mut previous_end = 0;
            for (index, r) in ranges.iter().enumerate() {
                let bad = |problem| RoutingError::BadRange {
                    day,
                    index,
                    problem,
                };
                if r.end_secs() <= r.start_secs() {
                    return Err(bad(RangeProblem::EndNotAfterStart));
                }
                // Touching periods (12:00–13:00, 13:00–18:00) are fine; this also refuses
                // unsorted input, so `is_open` and the console can rely on the order.
                if r.start_secs() < previous_end {
                    return Err(bad(RangeProblem::OverlapsPrevious));
                }
                previous_end = r.end_secs();
            }
        }
        Ok(())
    }

    /// Whether the group works at the instant `at`, judged by the wall clock in its time zone:
    /// a 09:00–18:00 day stays 09:00–18:00 local across daylight-saving changes. On the night
    /// clocks go back the repeated hour counts twice; on the night they go forward the skipped
    /// hour never happens. Periods are not re-validated here; invalid ones simply never match.
    pub fn is_open(&self, at: DateTime<Utc>) -> Result<bool, RoutingError> {
        let tz = timezone(&self.timezone)?;
        if self.always_open {
            return Ok(true);
        }
        let local = at.with_timezone(&tz);
        let day = local.weekday().num_days_from_monday() as usize;
        let time = local.time();
        Ok(self
            .days
            .get(day)
            .is_some_and(|ranges| ranges.iter().any(|r| r.contains(time))))
    }
}

/// The automatic first answers of a group: new or returning customer × in or out of hours.
/// `None` (or blank text) sends nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AutoReplies {
    pub new_in_hours: Option<String>,
    pub new_off_hours: Option<String>,
    pub returning_in_hours: Option<String>,
    pub returning_off_hours: Option<String>,
}

/// The auto-reply to send to a customer who opens a request, if any. Blank text counts as
/// none, so clearing the field in the console switches the reply off.
pub fn auto_reply(replies: &AutoReplies, returning_customer: bool, open: bool) -> Option<&str> {
    let text = match (returning_customer, open) {
        (false, true) => &replies.new_in_hours,
        (false, false) => &replies.new_off_hours,
        (true, true) => &replies.returning_in_hours,
        (true, false) => &replies.returning_off_hours,
    };
    text.as_deref().filter(|t| !t.trim().is_empty())
}

/// A conversation waiting for a free operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueEntry {
    pub conversation_id: ConversationId,
    /// The group it waits for; `None` means any operator of the client.
    pub group_id: Option<GroupId>,
    pub enqueued_at: DateTime<Utc>,
}

/// Whether an operator in `operator_groups` may take `entry` from the queue.
pub fn may_take_from_queue(entry: &QueueEntry, operator_groups: &[GroupId]) -> bool {
    entry.group_id.is_none_or(|g| operator_groups.contains(&g))
}

/// The first entry (FIFO by enqueued_at, then conversation id) the given operator may take:
/// entries of groups the operator is a member of, or with no group. Returns its index in `queue`,
/// which need not be sorted.
pub fn next_for_operator(queue: &[QueueEntry], operator_groups: &[GroupId]) -> Option<usize> {
    queue
        .iter()
        .enumerate()
        .filter(|(_, e)| may_take_from_queue(e, operator_groups))
        .min_by(|(_, a), (_, b)| {
            a.enqueued_at
                .cmp(&b.enqueued_at)
                .then(a.conversation_id.cmp(&b.conversation_id))
        })
        .map(|(i, _)| i)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutingError {
    #[error("unknown time zone `{0}`")]
    UnknownTimezone(String),
    /// `day` is 0 for Monday … 6 for Sunday, `index` the period's position in that day.
    #[error("working hours, day {} period {}: {problem}", day + 1, index + 1)]
    BadRange {
        day: usize,
        index: usize,
        problem: RangeProblem,
    },
    #[error("working hours, day {}: at most {max} periods", day + 1)]
    TooManyRanges { day: usize, max: usize },
    #[error("competency must be 1 to 100, not {0}")]
    Competency(u8),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn uid(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn t(s: &str) -> NaiveTime {
        hh_mm::parse(s).unwrap()
    }

    fn range(start: &str, end: &str) -> TimeRange {
        TimeRange {
            start: t(start),
            end: t(end),
        }
    }

    /// An online, accepting operator with room, never assigned, competency 50.
    fn cand(n: u128) -> Candidate {
        Candidate {
            user_id: uid(n),
            presence: Presence::Online,
            accepting_new: true,
            capacity: 5,
            active: 0,
            competency: 50,
            last_assigned_at: None,
        }
    }

    fn with(n: u128, f: impl FnOnce(&mut Candidate)) -> Candidate {
        let mut c = cand(n);
        f(&mut c);
        c
    }

    #[test]
    fn modes_and_presence_round_trip_their_names() {
        for m in RoutingMode::ALL {
            assert_eq!(RoutingMode::parse(m.as_str()), Some(m));
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
        }
        for p in Presence::ALL {
            assert_eq!(Presence::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert_eq!(RoutingMode::parse("RoundRobin"), None);
        assert_eq!(Presence::parse("busy"), None);
    }

    #[test]
    fn who_can_take() {
        let cases: [(&str, Candidate, bool); 8] = [
            ("online with room", cand(1), true),
            ("away", with(1, |c| c.presence = Presence::Away), false),
            (
                "offline",
                with(1, |c| c.presence = Presence::Offline),
                false,
            ),
            ("no new chats", with(1, |c| c.accepting_new = false), false),
            ("one slot left", with(1, |c| c.active = 4), true),
            ("capacity full", with(1, |c| c.active = 5), false),
            ("over capacity", with(1, |c| c.active = 9), false),
            ("zero capacity", with(1, |c| c.capacity = 0), false),
        ];
        for (name, c, expected) in cases {
            assert_eq!(can_take(&c), expected, "{name}");
        }
    }

    #[test]
    fn nobody_available_gives_none_in_every_mode() {
        let unavailable = [
            with(1, |c| c.presence = Presence::Away),
            with(2, |c| c.presence = Presence::Offline),
            with(3, |c| c.accepting_new = false),
            with(4, |c| c.active = c.capacity),
        ];
        for mode in RoutingMode::ALL {
            assert_eq!(pick(mode, &unavailable), None, "{mode:?}");
            assert_eq!(pick(mode, &[]), None, "{mode:?}");
        }
    }

    #[test]
    fn unavailable_operators_are_skipped_even_when_they_would_win() {
        // Operator 1 would win every mode (never assigned, idle, most skilled) but cannot take.
        let best = |f: fn(&mut Candidate)| {
            let mut c = with(1, |c| c.competency = 100);
            f(&mut c);
            c
        };
        let other = with(2, |c| {
            c.active = 3;
            c.last_assigned_at = Some(at("2025-01-01T10:00:00Z"));
        });
        for block in [
            (|c: &mut Candidate| c.presence = Presence::Away) as fn(&mut Candidate),
            |c| c.presence = Presence::Offline,
            |c| c.accepting_new = false,
            |c| c.active = c.capacity,
        ] {
            for mode in RoutingMode::ALL {
                assert_eq!(
                    pick(mode, &[best(block), other.clone()]),
                    Some(uid(2)),
                    "{mode:?}"
                );
            }
        }
    }

    #[test]
    fn round_robin_takes_the_longest_waiting() {
        let old = at("2025-01-01T09:00:00Z");
        let newer = at("2025-01-01T10:00:00Z");
        let cases: [(&str, Vec<Candidate>, u128); 5] = [
            (
                "oldest assignment wins",
                vec![
                    with(1, |c| c.last_assigned_at = Some(newer)),
                    with(2, |c| c.last_assigned_at = Some(old)),
                ],
                2,
            ),
            (
                "never assigned beats anyone",
                vec![
                    with(1, |c| c.last_assigned_at = Some(old)),
                    with(2, |c| c.last_assigned_at = None),
                ],
                2,
            ),
            (
                "ties by user id",
                vec![
                    with(3, |c| c.last_assigned_at = Some(old)),
                    with(2, |c| c.last_assigned_at = Some(old)),
                    with(4, |c| c.last_assigned_at = Some(old)),
                ],
                2,
            ),
            (
                "all never assigned: lowest id",
                vec![cand(9), cand(5), cand(7)],
                5,
            ),
            (
                "load and skill are ignored",
                vec![
                    with(1, |c| {
                        c.active = 4;
                        c.competency = 1;
                        c.last_assigned_at = Some(old);
                    }),
                    with(2, |c| {
                        c.competency = 100;
                        c.last_assigned_at = Some(newer);
                    }),
                ],
                1,
            ),
        ];
        for (name, cs, expected) in cases {
            assert_eq!(
                pick(RoutingMode::RoundRobin, &cs),
                Some(uid(expected)),
                "{name}"
            );
        }
    }

    #[test]
    fn round_robin_rotates_through_the_group() {
        let mut cs = vec![cand(1), cand(2), cand(3)];
        let mut order = Vec::new();
        for minute in 0..6 {
            let chosen = pick(RoutingMode::RoundRobin, &cs).unwrap();
            order.push(chosen);
            let c = cs.iter_mut().find(|c| c.user_id == chosen).unwrap();
            c.last_assigned_at = Some(Utc.with_ymd_and_hms(2025, 1, 1, 9, minute, 0).unwrap());
        }
        assert_eq!(order, [1, 2, 3, 1, 2, 3].map(uid));
    }

    #[test]
    fn least_busy_compares_shares_exactly() {
        let old = at("2025-01-01T09:00:00Z");
        let newer = at("2025-01-01T10:00:00Z");
        let load = |n, active, capacity| {
            with(n, |c| {
                c.active = active;
                c.capacity = capacity;
            })
        };
        let cases: [(&str, Vec<Candidate>, u128); 7] = [
            ("lower share wins", vec![load(1, 2, 4), load(2, 1, 4)], 2),
            (
                "share, not count: 3/10 beats 1/2",
                vec![load(1, 1, 2), load(2, 3, 10)],
                2,
            ),
            (
                "equal shares (1/3 = 2/6): fewer active wins",
                vec![load(1, 2, 6), load(2, 1, 3)],
                2,
            ),
            (
                "equal share and count: longest ago wins",
                vec![
                    with(1, |c| c.last_assigned_at = Some(newer)),
                    with(2, |c| c.last_assigned_at = Some(old)),
                ],
                2,
            ),
            (
                "equal share and count: never assigned wins",
                vec![
                    with(1, |c| c.last_assigned_at = Some(old)),
                    with(2, |c| c.last_assigned_at = None),
                ],
                2,
            ),
            ("full tie: lowest id", vec![load(8, 1, 4), load(6, 1, 4)], 6),
            (
                "huge capacities do not overflow",
                vec![
                    load(1, u32::MAX - 1, u32::MAX),
                    load(2, u32::MAX - 2, u32::MAX),
                ],
                2,
            ),
        ];
        for (name, cs, expected) in cases {
            assert_eq!(
                pick(RoutingMode::LeastBusy, &cs),
                Some(uid(expected)),
                "{name}"
            );
        }
    }

    #[test]
    fn least_busy_ignores_competency() {
        let cs = [
            with(1, |c| {
                c.competency = 100;
                c.active = 1;
            }),
            with(2, |c| c.competency = 1),
        ];
        assert_eq!(pick(RoutingMode::LeastBusy, &cs), Some(uid(2)));
    }

    #[test]
    fn most_skilled_prefers_competency_then_load() {
        let old = at("2025-01-01T09:00:00Z");
        let cases: [(&str, Vec<Candidate>, u128); 5] = [
            (
                "highest competency wins even when busier",
                vec![
                    with(1, |c| c.competency = 60),
                    with(2, |c| {
                        c.competency = 90;
                        c.active = 4;
                    }),
                ],
                2,
            ),
            (
                "equal competency: lower share wins",
                vec![
                    with(1, |c| {
                        c.competency = 90;
                        c.active = 2;
                    }),
                    with(2, |c| {
                        c.competency = 90;
                        c.active = 1;
                    }),
                ],
                2,
            ),
            (
                "equal competency and share: fewer active",
                vec![
                    with(1, |c| {
                        c.competency = 90;
                        c.active = 2;
                        c.capacity = 4;
                    }),
                    with(2, |c| {
                        c.competency = 90;
                        c.active = 1;
                        c.capacity = 2;
                    }),
                ],
                2,
            ),
            (
                "equal competency and load: longest ago",
                vec![
                    with(1, |c| c.last_assigned_at = Some(old)),
                    with(2, |c| c.last_assigned_at = None),
                ],
                2,
            ),
            ("full tie: lowest id", vec![cand(4), cand(3)], 3),
        ];
        for (name, cs, expected) in cases {
            assert_eq!(
                pick(RoutingMode::MostSkilled, &cs),
                Some(uid(expected)),
                "{name}"
            );
        }
    }

    #[test]
    fn the_choice_does_not_depend_on_input_order() {
        let cs = vec![
            with(1, |c| c.last_assigned_at = Some(at("2025-01-01T09:00:00Z"))),
            with(2, |c| c.competency = 70),
            with(3, |c| c.active = 1),
            cand(4),
        ];
        for mode in RoutingMode::ALL {
            let forward = pick(mode, &cs);
            let mut reversed = cs.clone();
            reversed.reverse();
            assert_eq!(pick(mode, &reversed), forward, "{mode:?}");
        }
    }

    #[test]
    fn competency_is_one_to_a_hundred() {
        for (c, ok) in [
            (0, false),
            (1, true),
            (50, true),
            (100, true),
            (101, false),
            (255, false),
        ] {
            assert_eq!(validate_competency(c).is_ok(), ok, "{c}");
        }
        assert_eq!(validate_competency(0), Err(RoutingError::Competency(0)));
    }

    #[test]
    fn time_range_json_is_hh_mm() {
        let r = range("09:30", "00:00");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"start":"09:30","end":"00:00"}"#);
        assert_eq!(serde_json::from_str::<TimeRange>(&json).unwrap(), r);
        for bad in [
            "9:30", "09:30:00", "24:00", "12:60", "ab:cd", "", "09-30", "0930 ", "+9:30",
        ] {
            let json = format!(r#"{{"start":"{bad}","end":"18:00"}}"#);
            let err = serde_json::from_str::<TimeRange>(&json).unwrap_err();
            assert!(err.to_string().contains("HH:MM"), "{bad}: {err}");
        }
    }

    #[test]
    fn weekly_hours_json_round_trips() {
        let mut h = WeeklyHours {
            timezone: "Europe/Moscow".into(),
            always_open: false,
            days: Default::default(),
        };
        h.days[0] = vec![range("09:00", "13:00"), range("14:00", "18:00")];
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["days"].as_array().unwrap().len(), 7);
        assert_eq!(json["days"][0][1]["end"], "18:00");
        assert_eq!(serde_json::from_value::<WeeklyHours>(json).unwrap(), h);
        // Not seven days is refused rather than padded.
        let six = serde_json::json!({"timezone": "UTC", "always_open": true, "days": [[],[],[],[],[],[]]});
        assert!(serde_json::from_value::<WeeklyHours>(six).is_err());
    }

    #[test]
    fn default_hours_are_always_open_in_utc() {
        let h = WeeklyHours::default();
        assert_eq!(h.timezone, "UTC");
        assert!(h.always_open);
        assert_eq!(h.validate(), Ok(()));
        assert_eq!(h.is_open(at("2025-06-01T03:00:00Z")), Ok(true));
    }

    #[test]
    fn validation_of_hours() {
        let day = |ranges: Vec<TimeRange>| {
            let mut h = WeeklyHours {
                always_open: false,
                ..WeeklyHours::default()
            };
            h.days[2] = ranges;
            h.validate()
        };
        let bad = |index, problem| {
            Err(RoutingError::BadRange {
                day: 2,
                index,
                problem,
            })
        };
        use RangeProblem::*;
        let cases: Vec<(&str, Vec<TimeRange>, Result<(), RoutingError>)> = vec![
            ("empty day", vec![], Ok(())),
            ("one period", vec![range("09:00", "18:00")], Ok(())),
            ("ends at midnight", vec![range("22:00", "00:00")], Ok(())),
            ("whole day", vec![range("00:00", "00:00")], Ok(())),
            (
                "touching periods",
                vec![range("09:00", "12:00"), range("12:00", "18:00")],
                Ok(()),
            ),
            (
                "lunch break then until midnight",
                vec![range("09:00", "13:00"), range("14:00", "00:00")],
                Ok(()),
            ),
            (
                "end before start",
                vec![range("18:00", "09:00")],
                bad(0, EndNotAfterStart),
            ),
            (
                "empty period",
                vec![range("09:00", "09:00")],
                bad(0, EndNotAfterStart),
            ),
            (
                "overlap",
                vec![range("09:00", "13:00"), range("12:00", "18:00")],
                bad(1, OverlapsPrevious),
            ),
            (
                "unsorted",
                vec![range("14:00", "18:00"), range("09:00", "13:00")],
                bad(1, OverlapsPrevious),
            ),
            (
                "anything after a midnight end",
                vec![range("20:00", "00:00"), range("22:00", "23:00")],
                bad(1, OverlapsPrevious),
            ),
            (
                "contained period",
                vec![range("09:00", "18:00"), range("10:00", "11:00")],
                bad(1, OverlapsPrevious),
            ),
            (
                "too many periods",
                (0..13)
                    .map(|h| range(&format!("{h:02}:00"), &format!("{h:02}:30")))
                    .collect(),
                Err(RoutingError::TooManyRanges { day: 2, max: 12 }),
            ),
        ];
        for (name, ranges, expected) in cases {
            assert_eq!(day(ranges), expected, "{name}");
        }
    }

    #[test]
    fn validation_checks_the_time_zone_and_days_even_when_always_open() {
        for (tz, ok) in [
            ("Europe/Moscow", true),
            ("Europe/Berlin", true),
            ("Asia/Vladivostok", true),
            ("UTC", true),
            ("Mars/Olympus", false),
            ("", false),
            ("europe/moscow", false),
        ] {
            let h = WeeklyHours {
                timezone: tz.into(),
                ..WeeklyHours::default()
            };
            let expected = if ok {
                Ok(())
            } else {
                Err(RoutingError::UnknownTimezone(tz.into()))
            };
            assert_eq!(h.validate(), expected, "{tz}");
            assert_eq!(
                h.is_open(at("2025-01-01T00:00:00Z")),
                expected.map(|()| true)
            );
        }
        let mut h = WeeklyHours::default();
        h.days[6] = vec![range("10:00", "09:00")];
        assert_eq!(
            h.validate(),
            Err(RoutingError::BadRange {
                day: 6,
                index: 0,
                problem: RangeProblem::EndNotAfterStart
            })
        );
    }

    #[test]
    fn error_messages_name_the_day_and_period() {
        let e = RoutingError::BadRange {
            day: 0,
            index: 1,
            problem: RangeProblem::OverlapsPrevious,
        };
        assert_eq!(
            e.to_string(),
            "working hours, day 1 period 2: must start at or after the end of the previous period"
        );
        assert_eq!(
            RoutingError::UnknownTimezone("X/Y".into()).to_string(),
            "unknown time zone `X/Y`"
        );
    }

    /// Working hours 09:00–18:00 every day in `tz`.
    fn nine_to_six(tz: &str) -> WeeklyHours {
        WeeklyHours {
            timezone: tz.into(),
            always_open: false,
            days: std::array::from_fn(|_| vec![range("09:00", "18:00")]),
        }
    }

    fn check(h: &WeeklyHours, cases: &[(&str, bool)]) {
        assert_eq!(h.validate(), Ok(()));
        for (instant, expected) in cases {
            assert_eq!(
                h.is_open(at(instant)),
                Ok(*expected),
                "{} at {instant}",
                h.timezone
            );
        }
    }

    #[test]
    fn moscow_is_utc_plus_three_all_year() {
        // Moscow has had no daylight saving since 2014: 09:00 local is 06:00 UTC in winter and
        // summer alike, including the nights Europe changes its clocks.
        check(
            &nine_to_six("Europe/Moscow"),
            &[
                ("2025-01-15T05:59:59Z", false),
                ("2025-01-15T06:00:00Z", true),
                ("2025-01-15T14:59:59Z", true),
                ("2025-01-15T15:00:00Z", false),
                ("2025-07-15T05:59:59Z", false),
                ("2025-07-15T06:00:00Z", true),
                ("2025-07-15T15:00:00Z", false),
                ("2025-03-30T06:00:00Z", true),
                ("2025-03-30T05:30:00Z", false),
                ("2025-10-26T06:00:00Z", true),
                ("2025-10-26T14:30:00Z", true),
                // In 2013 Moscow was UTC+4: 05:00 UTC was 09:00 local then, 08:00 now.
                ("2013-07-01T05:00:00Z", true),
                ("2025-07-01T05:00:00Z", false),
            ],
        );
    }

    #[test]
    fn berlin_follows_daylight_saving() {
        // CET (UTC+1) in winter, CEST (UTC+2) from 2025-03-30 01:00 UTC to 2025-10-26 01:00 UTC.
        check(
            &nine_to_six("Europe/Berlin"),
            &[
                // Winter: 09:00–18:00 local is 08:00–17:00 UTC.
                ("2025-03-28T07:59:00Z", false),
                ("2025-03-28T08:00:00Z", true),
                ("2025-03-28T16:30:00Z", true),
                ("2025-03-28T17:00:00Z", false),
                // The Sunday of the change and the Monday after: 07:00–16:00 UTC.
                ("2025-03-30T06:59:00Z", false),
                ("2025-03-30T07:00:00Z", true),
                ("2025-03-30T16:30:00Z", false),
                ("2025-03-31T07:30:00Z", true),
                ("2025-03-31T16:00:00Z", false),
                // Back to winter time on 2025-10-26.
                ("2025-10-25T07:00:00Z", true),
                ("2025-10-25T16:30:00Z", false),
                ("2025-10-26T07:30:00Z", false),
                ("2025-10-26T08:00:00Z", true),
                ("2025-10-26T16:30:00Z", true),
                ("2025-10-26T17:00:00Z", false),
            ],
        );
    }

    #[test]
    fn berlin_skipped_and_repeated_hours() {
        // A period 02:00–03:00 on Sundays only.
        let mut h = WeeklyHours {
            timezone: "Europe/Berlin".into(),
            always_open: false,
            days: Default::default(),
        };
        h.days[6] = vec![range("02:00", "03:00")];
        check(
            &h,
            &[
                // Spring: 01:59:59 CET is followed by 03:00 CEST; 02:xx never happens.
                ("2025-03-30T00:59:59Z", false),
                ("2025-03-30T01:00:00Z", false),
                ("2025-03-30T01:30:00Z", false),
                // Autumn: 02:xx happens twice, first in CEST (00:xx UTC), then CET (01:xx UTC).
                ("2025-10-26T00:00:00Z", true),
                ("2025-10-26T00:59:59Z", true),
                ("2025-10-26T01:00:00Z", true),
                ("2025-10-26T01:59:59Z", true),
                ("2025-10-26T02:00:00Z", false),
                ("2025-10-25T23:59:59Z", false),
                // An ordinary Sunday: 02:00–03:00 CET is 01:00–02:00 UTC.
                ("2025-01-05T01:00:00Z", true),
                ("2025-01-05T00:59:59Z", false),
                ("2025-01-05T02:00:00Z", false),
            ],
        );
    }

    #[test]
    fn midnight_ending_ranges_and_weekday_boundaries() {
        // Friday 20:00–midnight, Saturday 00:00–02:00 (one night shift split in two), Moscow.
        let mut h = WeeklyHours {
            timezone: "Europe/Moscow".into(),
            always_open: false,
            days: Default::default(),
        };
        h.days[4] = vec![range("20:00", "00:00")];
        h.days[5] = vec![range("00:00", "02:00")];
        // 2025-06-06 is a Friday.
        check(
            &h,
            &[
                ("2025-06-06T16:59:59Z", false), // Fri 19:59:59
                ("2025-06-06T17:00:00Z", true),  // Fri 20:00
                ("2025-06-06T20:59:59Z", true),  // Fri 23:59:59
                ("2025-06-06T21:00:00Z", true),  // Sat 00:00
                ("2025-06-06T22:59:59Z", true),  // Sat 01:59:59
                ("2025-06-06T23:00:00Z", false), // Sat 02:00
                ("2025-06-07T17:00:00Z", false), // Sat 20:00: Friday's period only
                ("2025-06-05T21:00:00Z", false), // Fri 00:00: Saturday's period only
            ],
        );
        // Without the Saturday morning, the midnight end is exclusive.
        h.days[5].clear();
        check(
            &h,
            &[
                ("2025-06-06T20:59:59Z", true),
                ("2025-06-06T21:00:00Z", false),
            ],
        );
    }

    #[test]
    fn weekday_is_the_local_one() {
        // Only Mondays, whole day, Vladivostok (UTC+10): Monday starts Sunday 14:00 UTC.
        let mut h = WeeklyHours {
            timezone: "Asia/Vladivostok".into(),
            always_open: false,
            days: Default::default(),
        };
        h.days[0] = vec![range("00:00", "00:00")];
        check(
            &h,
            &[
                ("2025-06-01T13:59:59Z", false), // Sunday 23:59:59 local
                ("2025-06-01T14:00:00Z", true),  // Monday 00:00 local
                ("2025-06-02T13:59:59Z", true),  // Monday 23:59:59 local
                ("2025-06-02T14:00:00Z", false), // Tuesday local, still Monday UTC
            ],
        );
    }

    #[test]
    fn always_open_ignores_days_and_closed_days_are_closed() {
        let mut h = nine_to_six("Europe/Berlin");
        h.always_open = true;
        assert_eq!(h.is_open(at("2025-01-01T03:00:00Z")), Ok(true));
        h.always_open = false;
        h.days = Default::default();
        assert_eq!(h.is_open(at("2025-01-01T12:00:00Z")), Ok(false));
    }

    #[test]
    fn auto_reply_picks_one_of_four() {
        let r = AutoReplies {
            new_in_hours: Some("hello".into()),
            new_off_hours: Some("we are closed".into()),
            returning_in_hours: Some("welcome back".into()),
            returning_off_hours: Some("back tomorrow".into()),
        };
        let cases = [
            (false, true, "hello"),
            (false, false, "we are closed"),
            (true, true, "welcome back"),
            (true, false, "back tomorrow"),
        ];
        for (returning, open, expected) in cases {
            assert_eq!(auto_reply(&r, returning, open), Some(expected));
        }
        let none = AutoReplies::default();
        for (returning, open, _) in cases {
            assert_eq!(auto_reply(&none, returning, open), None);
        }
        let blank = AutoReplies {
            new_off_hours: Some("  \n".into()),
            returning_off_hours: Some(String::new()),
            ..AutoReplies::default()
        };
        assert_eq!(auto_reply(&blank, false, false), None);
        assert_eq!(auto_reply(&blank, true, false), None);
        // One variant set does not leak into another.
        let only_new_off = AutoReplies {
            new_off_hours: Some("closed".into()),
            ..AutoReplies::default()
        };
        assert_eq!(auto_reply(&only_new_off, true, false), None);
        assert_eq!(auto_reply(&only_new_off, false, true), None);
    }

    fn entry(n: u128, group: Option<GroupId>, minute: u32) -> QueueEntry {
        QueueEntry {
            conversation_id: ConversationId(Uuid::from_u128(n)),
            group_id: group,
            enqueued_at: Utc.with_ymd_and_hms(2025, 1, 1, 9, minute, 0).unwrap(),
        }
    }

    #[test]
    fn queue_is_fifo_within_what_the_operator_may_take() {
        let sales = GroupId(Uuid::from_u128(100));
        let support = GroupId(Uuid::from_u128(200));
        let queue = vec![
            entry(1, Some(support), 5),
            entry(2, Some(sales), 1),
            entry(3, None, 3),
            entry(4, Some(sales), 1),
            entry(5, Some(support), 0),
        ];
        let cases: [(&str, Vec<GroupId>, Option<usize>); 4] = [
            // Entries 2 and 4 tie on time; the lower conversation id goes first.
            ("sales", vec![sales], Some(1)),
            ("support", vec![support], Some(4)),
            ("both", vec![sales, support], Some(4)),
            ("no group: only ungrouped", vec![], Some(2)),
        ];
        for (name, groups, expected) in cases {
            assert_eq!(next_for_operator(&queue, &groups), expected, "{name}");
        }
        assert_eq!(next_for_operator(&[], &[sales]), None);
        let grouped_only = vec![entry(1, Some(support), 0)];
        assert_eq!(next_for_operator(&grouped_only, &[sales]), None);
        assert_eq!(next_for_operator(&grouped_only, &[]), None);
    }

    #[test]
    fn queue_order_is_independent_of_slice_order() {
        let g = GroupId(Uuid::from_u128(7));
        let mut queue = vec![
            entry(9, Some(g), 2),
            entry(8, None, 2),
            entry(7, Some(g), 3),
        ];
        let first = next_for_operator(&queue, &[g]).map(|i| queue[i].conversation_id);
        assert_eq!(first, Some(ConversationId(Uuid::from_u128(8))));
        queue.reverse();
        let again = next_for_operator(&queue, &[g]).map(|i| queue[i].conversation_id);
        assert_eq!(again, first);
    }
}
