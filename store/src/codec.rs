//! How domain values map to stored columns, independent of the engine: timestamps as unix
//! milliseconds, enums as their snake_case names, rights as integer bit sets, search patterns.

use chrono::{DateTime, Utc};
use omnihub_core::Role;
use omnihub_core::model::{
    ChannelKind, ClientStatus, ConversationStatus, DeliveryStatus, Direction, Provider,
};

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
