//! How domain values map to stored columns, independent of the engine: timestamps as unix
//! milliseconds, enums as their snake_case names, rights as integer bit sets, search patterns.

use chrono::{DateTime, Utc};
use omnihub_core::Role;
use omnihub_core::events::EventKind;
use omnihub_core::model::{
    ChannelKind, ClientStatus, ConversationStatus, DeliveryStatus, Direction, MessageKind, Provider,
};
use omnihub_core::routing::{Presence, RoutingMode};

use crate::hub::TaskStatus;

use crate::{Result, StoreError};

/// Page size when a filter leaves `limit` at 0.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// No page is larger than this, whatever the caller asks.
pub(crate) const MAX_LIMIT: u32 = 1000;

pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_LIMIT
    } else {
        limit.min(MAX_LIMIT)
    })
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn ts(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub(crate) fn opt_ts(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(ts).transpose()
}

/// The current time at the precision the store keeps, so a record returned by a create call
/// equals the same record read back.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

pub(crate) fn rights_from(bits: i64) -> u32 {
    // Bits beyond u32 cannot have been written by us; dropping them matches from_bits_truncate.
    (bits & i64::from(u32::MAX)) as u32
}

/// E-mail addresses are kept and compared lower-cased.
pub(crate) fn fold_email(email: &str) -> String {
    email.to_lowercase()
}

/// A `LIKE … ESCAPE '\'` pattern matching `needle` anywhere, case folded like `fold`.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// An event payload that could not be written as JSON.
pub(crate) fn bad_payload(err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("event payload: {err}"))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} `{value}`"))
}

pub(crate) fn client_status_str(s: ClientStatus) -> &'static str {
    match s {
        ClientStatus::Active => "active",
        ClientStatus::Blocked => "blocked",
    }
}

pub(crate) fn client_status(s: &str) -> Result<ClientStatus> {
    match s {
        "active" => Ok(ClientStatus::Active),
        "blocked" => Ok(ClientStatus::Blocked),
        _ => Err(corrupt("client status", s)),
    }
}

pub(crate) fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

pub(crate) fn direction(s: &str) -> Result<Direction> {
    match s {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        _ => Err(corrupt("direction", s)),
    }
}

const DELIVERY: [(DeliveryStatus, &str); 6] = [
    (DeliveryStatus::Received, "received"),
    (DeliveryStatus::Pending, "pending"),
    (DeliveryStatus::Sent, "sent"),
    (DeliveryStatus::Delivered, "delivered"),
    (DeliveryStatus::Read, "read"),
    (DeliveryStatus::Failed, "failed"),
];

pub(crate) fn delivery_str(d: DeliveryStatus) -> &'static str {
    DELIVERY
        .iter()
        .find(|(x, _)| *x == d)
        .map_or("failed", |(_, s)| s)
}

pub(crate) fn delivery(s: &str) -> Result<DeliveryStatus> {
    DELIVERY
        .iter()
        .find(|(_, n)| *n == s)
        .map(|(d, _)| *d)
        .ok_or_else(|| corrupt("delivery status", s))
}

pub(crate) fn role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| corrupt("role", s))
}

pub(crate) fn provider(s: &str) -> Result<Provider> {
    Provider::parse(s).ok_or_else(|| corrupt("provider", s))
}

pub(crate) fn channel_kind(s: &str) -> Result<ChannelKind> {
    ChannelKind::parse(s).ok_or_else(|| corrupt("channel kind", s))
}

pub(crate) fn conversation_status(s: &str) -> Result<ConversationStatus> {
    ConversationStatus::parse(s).ok_or_else(|| corrupt("conversation status", s))
}

/// Where a delivery status stands: an outbound message only moves to a higher rank. `failed`
/// ranks above everything, so nothing leaves it.
pub(crate) fn delivery_rank(d: DeliveryStatus) -> i64 {
    match d {
        DeliveryStatus::Received => 0,
        DeliveryStatus::Pending => 1,
        DeliveryStatus::Sent => 2,
        DeliveryStatus::Delivered => 3,
        DeliveryStatus::Read => 4,
        DeliveryStatus::Failed => 99,
    }
}

/// A message may move to `target` only from a status ranked below the returned value: read,
/// delivered and sent from anything lower, failed only from pending or sent, and nothing to
/// pending or received.
pub(crate) fn delivery_move_below(target: DeliveryStatus) -> i64 {
    match target {
        DeliveryStatus::Received | DeliveryStatus::Pending => 0,
        DeliveryStatus::Failed => delivery_rank(DeliveryStatus::Delivered),
        other => delivery_rank(other),
    }
}

const MESSAGE_KINDS: [(MessageKind, &str); 3] = [
    (MessageKind::Message, "message"),
    (MessageKind::Note, "note"),
    (MessageKind::AutoReply, "auto_reply"),
];

pub(crate) fn message_kind_str(k: MessageKind) -> &'static str {
    MESSAGE_KINDS
        .iter()
        .find(|(x, _)| *x == k)
        .map_or("message", |(_, s)| s)
}

pub(crate) fn message_kind(s: &str) -> Result<MessageKind> {
    MESSAGE_KINDS
        .iter()
        .find(|(_, n)| *n == s)
        .map(|(k, _)| *k)
        .ok_or_else(|| corrupt("message kind", s))
}

pub(crate) fn event_kind(s: &str) -> Result<EventKind> {
    EventKind::parse(s).ok_or_else(|| corrupt("event kind", s))
}

pub(crate) fn presence(s: &str) -> Result<Presence> {
    Presence::parse(s).ok_or_else(|| corrupt("presence", s))
}

pub(crate) fn routing_mode(s: &str) -> Result<RoutingMode> {
    RoutingMode::parse(s).ok_or_else(|| corrupt("routing mode", s))
}

const TASK_STATUSES: [(TaskStatus, &str); 6] = [
    (TaskStatus::Pending, "pending"),
    (TaskStatus::Running, "running"),
    (TaskStatus::Done, "done"),
    (TaskStatus::Failed, "failed"),
    (TaskStatus::Cancelled, "cancelled"),
    (TaskStatus::Skipped, "skipped"),
];

pub(crate) fn task_status_text(status: &TaskStatus) -> &'static str {
    TASK_STATUSES
        .iter()
        .find(|(t, _)| t == status)
        .map_or("pending", |(_, n)| n)
}

pub(crate) fn task_status(s: &str) -> Result<TaskStatus> {
    TASK_STATUSES
        .iter()
        .find(|(_, n)| *n == s)
        .map(|(t, _)| t.clone())
        .ok_or_else(|| corrupt("task status", s))
}

/// The words of a search query, each with at least one letter or digit (the rest can match
/// nothing on either engine), or `None` when no word is left.
pub(crate) fn search_words(query: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = query
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    (!words.is_empty()).then_some(words)
}

/// An FTS5 query matching messages that contain every word of `query`: each word becomes a
/// quoted string (inner quotes doubled), so operators, `*`, `NEAR`, `-`, `:` and parentheses in
/// user input are plain text, never syntax.
pub(crate) fn fts5_query(query: &str) -> Option<String> {
    let words = search_words(query)?;
    let quoted: Vec<String> = words
        .into_iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    Some(quoted.join(" "))
}

/// A UTC time serialized as chrono serializes it (RFC 3339, `Z`, 0, 3, 6 or 9 fractional
/// digits), without going through `fmt`: an event payload carries several, and chrono's
/// formatter was about half of what building one cost. Years outside 0–9999 and leap seconds,
/// which this shortcut does not spell, are left to chrono.
pub(crate) struct Rfc3339(pub DateTime<Utc>);

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use chrono::{Datelike as _, Timelike as _};
        let t = self.0;
        let (year, nanos) = (t.year(), t.nanosecond());
        let Ok(year @ 0..=9999) = u32::try_from(year) else {
            return t.serialize(s);
        };
        if nanos >= 1_000_000_000 {
            return t.serialize(s);
        }
        let (fraction, fraction_digits) = match nanos {
            0 => (0, 0),
            n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
            n if n % 1_000 == 0 => (n / 1_000, 6),
            n => (n, 9),
        };
        let mut text = Ascii::default();
        text.digits(year, 4);
        let fields = [t.month(), t.day(), t.hour(), t.minute(), t.second()];
        for (field, separator) in fields.into_iter().zip(*b"--T::") {
            text.byte(separator);
            text.digits(field, 2);
        }
        if fraction_digits > 0 {
            text.byte(b'.');
            text.digits(fraction, fraction_digits);
        }
        text.byte(b'Z');
        s.serialize_str(text.as_str())
    }
}

/// A short ASCII text built in place.
#[derive(Default)]
struct Ascii {
    bytes: [u8; 32],
    len: usize,
}

impl Ascii {
    fn byte(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// `value`'s last `count` decimal digits, zero-padded.
    fn digits(&mut self, value: u32, count: u32) {
        for place in (0..count).rev() {
            self.byte(b'0' + (value / 10u32.pow(place) % 10) as u8);
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// A 64-bit key for PostgreSQL advisory locks from a UUID, the same on every node.
pub(crate) fn lock_key(id: uuid::Uuid) -> i64 {
    let b = id.as_bytes();
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&b[..8]);
    lo.copy_from_slice(&b[8..]);
    i64::from_be_bytes(hi) ^ i64::from_be_bytes(lo)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for s in [ClientStatus::Active, ClientStatus::Blocked] {
            assert_eq!(client_status(client_status_str(s)).unwrap(), s);
        }
        for d in [Direction::Inbound, Direction::Outbound] {
            assert_eq!(direction(direction_str(d)).unwrap(), d);
        }
        for (d, _) in DELIVERY {
            assert_eq!(delivery(delivery_str(d)).unwrap(), d);
        }
        assert!(matches!(client_status("gone"), Err(StoreError::Corrupt(_))));
        for (k, _) in MESSAGE_KINDS {
            assert_eq!(message_kind(message_kind_str(k)).unwrap(), k);
        }
        for (t, s) in TASK_STATUSES {
            assert_eq!(task_status(s).unwrap(), t);
        }
        assert!(message_kind("letter").is_err());
    }

    #[test]
    fn delivery_only_moves_forward() {
        use DeliveryStatus::*;
        let may = |from: DeliveryStatus, to: DeliveryStatus| {
            delivery_rank(from) < delivery_move_below(to)
        };
        assert!(may(Pending, Sent) && may(Sent, Delivered) && may(Delivered, Read));
        assert!(may(Pending, Read) && may(Pending, Failed) && may(Sent, Failed));
        assert!(!may(Read, Delivered) && !may(Delivered, Sent) && !may(Sent, Pending));
        assert!(!may(Delivered, Failed) && !may(Read, Failed));
        assert!(!may(Failed, Sent) && !may(Failed, Read) && !may(Failed, Failed));
        assert!(!may(Received, Pending) && !may(Pending, Pending));
    }

    #[test]
    fn fts5_queries_quote_every_word() {
        assert_eq!(fts5_query("  Привет  мир ").unwrap(), "\"Привет\" \"мир\"");
        assert_eq!(
            fts5_query("a\"b NEAR -x* (y)").unwrap(),
            "\"a\"\"b\" \"NEAR\" \"-x*\" \"(y)\""
        );
        assert_eq!(fts5_query(" * - \" "), None);
        assert_eq!(fts5_query(""), None);
    }

    #[test]
    fn timestamps_serialize_as_chrono_does() {
        let chrono_text = |t: DateTime<Utc>| serde_json::to_string(&t).unwrap();
        let ours = |t: DateTime<Utc>| serde_json::to_string(&Rfc3339(t)).unwrap();
        let mut samples: Vec<DateTime<Utc>> = [
            0,
            1,
            999,
            1_000,
            1_764_403_200_000,
            1_764_403_200_123,
            -1,
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // a year before it, chrono's own spelling
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000, // 10000-01-01
        ]
        .into_iter()
        .map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
        .collect();
        for nanos in [1, 10, 1_000, 120_000, 123_456_789, 999_999_999] {
            samples.push(DateTime::from_timestamp(1_764_403_200, nanos).unwrap());
        }
        // A leap second, which only a :59 can carry.
        samples.push(DateTime::from_timestamp(1_764_403_199, 1_500_000_000).unwrap());
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = x.rem_euclid(300_000_000_000) - 100_000_000_000;
            let nanos = (x >> 20).rem_euclid(1_000_000_000) as u32;
            samples.push(DateTime::from_timestamp(secs, nanos).unwrap());
            samples.push(DateTime::from_timestamp(secs, nanos / 1_000_000 * 1_000_000).unwrap());
        }
        for t in samples {
            assert_eq!(ours(t), chrono_text(t), "{t:?}");
        }
    }

    #[test]
    fn lock_keys_are_stable() {
        let id = uuid::Uuid::from_u128(0x0102_0304_0506_0708_1112_1314_1516_1718);
        assert_eq!(lock_key(id), 0x0102_0304_0506_0708 ^ 0x1112_1314_1516_1718);
    }

    #[test]
    fn patterns_escape_wildcards_and_fold_case() {
        assert_eq!(contains_pattern("Ab%_\\"), "%ab\\%\\_\\\\%");
        assert_eq!(contains_pattern("РОМАШКА"), "%ромашка%");
    }

    #[test]
    fn limits_have_a_default_and_a_cap() {
        assert_eq!(page_limit(0), i64::from(DEFAULT_LIMIT));
        assert_eq!(page_limit(7), 7);
        assert_eq!(page_limit(u32::MAX), i64::from(MAX_LIMIT));
    }

    #[test]
    fn millisecond_timestamps_round_trip() {
        let t = now();
        assert_eq!(ts(ms(t)).unwrap(), t);
        assert!(ts(i64::MAX).is_err());
    }
}
