//! SEARCH criteria (RFC 3501 §6.4.4): parsed from a command's arguments into a [`Key`] tree
//! and matched against stored messages. Strings match as case-insensitive substrings of the
//! raw header values or text (encoded words are not decoded). The `SENT*` date keys are not
//! offered and are refused as such.

use chrono::NaiveDate;

use super::message::{contains_ignoring_case, fields, split, value};
use super::store::StoredMessage;
use super::syntax::{Args, SequenceSet, SyntaxError, Token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    All,
    /// Message sequence numbers.
    Sequence(SequenceSet),
    Uid(SequenceSet),
    Header(String, Vec<u8>),
    Body(Vec<u8>),
    Text(Vec<u8>),
    /// A flag or keyword is set (`true`) or not.
    Flag(String, bool),
    Larger(u32),
    Smaller(u32),
    Before(NaiveDate),
    On(NaiveDate),
    Since(NaiveDate),
    /// `NEW` and `RECENT`: no message is recent here (the sandbox keeps no `\Recent`).
    Nothing,
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
}

/// One message as a search sees it.
pub(crate) struct Candidate<'a> {
    pub sequence: u32,
    pub message: &'a StoredMessage,
    /// The mailbox's largest sequence number and UID, for `*`.
    pub last_sequence: u32,
    pub last_uid: u32,
}

/// Reads every remaining argument as search keys (all must match). `CHARSET` is taken first
/// when present; UTF-8 and US-ASCII are known.
pub(crate) fn parse(args: &mut Args) -> Result<Key, SearchError> {
    if matches!(args.peek(), Some(Token::Atom(atom)) if atom.eq_ignore_ascii_case("CHARSET")) {
        args.next();
        let charset = args.text("charset").map_err(SearchError::Syntax)?;
        if !(charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")) {
            return Err(SearchError::BadCharset);
        }
    }
    let mut keys = Vec::new();
    while !args.is_empty() {
        keys.push(key(args)?);
    }
    if keys.is_empty() {
        return Err(SearchError::Syntax("search criteria expected".into()));
    }
    Ok(Key::And(keys))
}

/// Why criteria were refused: bad syntax (`BAD`) or an unknown charset (`NO [BADCHARSET]`).
#[derive(Debug)]
pub(crate) enum SearchError {
    Syntax(SyntaxError),
    BadCharset,
}

impl From<SyntaxError> for SearchError {
    fn from(error: SyntaxError) -> Self {
        SearchError::Syntax(error)
    }
}

fn key(args: &mut Args) -> Result<Key, SearchError> {
    let atom = match args.next() {
        Some(Token::Open) => {
            let mut keys = Vec::new();
            loop {
                match args.peek() {
                    Some(Token::Close) => {
                        args.next();
                        break;
                    }
                    None => return Err(SearchError::Syntax("unclosed (".into())),
                    Some(_) => keys.push(key(args)?),
                }
            }
            if keys.is_empty() {
                return Err(SearchError::Syntax("empty ()".into()));
            }
            return Ok(Key::And(keys));
        }
        Some(Token::Atom(atom)) => atom,
        _ => return Err(SearchError::Syntax("search key expected".into())),
    };
    let flag = |name: &str, set: bool| Ok(Key::Flag(name.to_owned(), set));
    let date = |args: &mut Args| -> Result<NaiveDate, SearchError> {
        let text = args.text("date")?;
        NaiveDate::parse_from_str(&text, "%d-%b-%Y")
            .map_err(|_| SearchError::Syntax(format!("{text:?} is not a date like 1-Feb-1994")))
    };
    let header = |name: &str, args: &mut Args| -> Result<Key, SearchError> {
        Ok(Key::Header(name.to_owned(), args.astring("search string")?))
    };
    match atom.to_ascii_uppercase().as_str() {
        "ALL" | "OLD" => Ok(Key::All),
        "NEW" | "RECENT" => Ok(Key::Nothing),
        "ANSWERED" => flag("\\Answered", true),
        "UNANSWERED" => flag("\\Answered", false),
        "DELETED" => flag("\\Deleted", true),
        "UNDELETED" => flag("\\Deleted", false),
        "DRAFT" => flag("\\Draft", true),
        "UNDRAFT" => flag("\\Draft", false),
        "FLAGGED" => flag("\\Flagged", true),
        "UNFLAGGED" => flag("\\Flagged", false),
        "SEEN" => flag("\\Seen", true),
        "UNSEEN" => flag("\\Seen", false),
        "KEYWORD" => Ok(Key::Flag(args.atom("keyword")?, true)),
        "UNKEYWORD" => Ok(Key::Flag(args.atom("keyword")?, false)),
        "BCC" => header("Bcc", args),
        "CC" => header("Cc", args),
        "FROM" => header("From", args),
        "SUBJECT" => header("Subject", args),
        "TO" => header("To", args),
        "HEADER" => {
            let name = args.text("header field name")?;
            header(&name, args)
        }
        "BODY" => Ok(Key::Body(args.astring("search string")?)),
        "TEXT" => Ok(Key::Text(args.astring("search string")?)),
        "LARGER" => Ok(Key::Larger(args.number("size")?)),
        "SMALLER" => Ok(Key::Smaller(args.number("size")?)),
        "BEFORE" => Ok(Key::Before(date(args)?)),
        "ON" => Ok(Key::On(date(args)?)),
        "SINCE" => Ok(Key::Since(date(args)?)),
        "UID" => {
            let set = args.atom("UID set")?;
            SequenceSet::parse(&set)
                .map(Key::Uid)
                .ok_or_else(|| SearchError::Syntax(format!("{set:?} is not a UID set")))
        }
        "NOT" => Ok(Key::Not(Box::new(key(args)?))),
        "OR" => {
            let first = key(args)?;
            let second = key(args)?;
            Ok(Key::Or(Box::new(first), Box::new(second)))
        }
        "SENTBEFORE" | "SENTON" | "SENTSINCE" => Err(SearchError::Syntax(format!(
            "{atom} is not supported by this server"
        ))),
        _ => SequenceSet::parse(&atom)
            .map(Key::Sequence)
            .ok_or_else(|| SearchError::Syntax(format!("unknown search key {atom:?}"))),
    }
}

impl Key {
    pub fn matches(&self, candidate: &Candidate<'_>) -> bool {
        let message = candidate.message;
        match self {
            Key::All => true,
            Key::Nothing => false,
            Key::Sequence(set) => set.contains(candidate.sequence, candidate.last_sequence),
            Key::Uid(set) => set.contains(message.uid, candidate.last_uid),
            Key::Header(name, needle) => fields(&message.raw)
                .iter()
                .filter(|(field, _)| field.eq_ignore_ascii_case(name))
                .any(|(_, lines)| contains_ignoring_case(value(lines).as_bytes(), needle)),
            Key::Body(needle) => contains_ignoring_case(split(&message.raw).1, needle),
            Key::Text(needle) => contains_ignoring_case(&message.raw, needle),
            Key::Flag(flag, set) => {
                message.flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) == *set
            }
            Key::Larger(size) => message.raw.len() > *size as usize,
            Key::Smaller(size) => message.raw.len() < *size as usize,
            Key::Before(day) => message.internal_date.date_naive() < *day,
            Key::On(day) => message.internal_date.date_naive() == *day,
            Key::Since(day) => message.internal_date.date_naive() >= *day,
            Key::Not(key) => !key.matches(candidate),
            Key::Or(a, b) => a.matches(candidate) || b.matches(candidate),
            Key::And(keys) => keys.iter().all(|key| key.matches(candidate)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::syntax::{Piece, tokenize};
    use super::*;

    fn criteria(text: &str) -> Result<Key, SearchError> {
        let tokens = tokenize(&[Piece::Text(text.as_bytes().to_vec())]).unwrap();
        parse(&mut Args::new(tokens))
    }

    fn stored(uid: u32, raw: &str, seen: bool) -> StoredMessage {
        StoredMessage {
            uid,
            flags: if seen {
                BTreeSet::from(["\\Seen".to_owned()])
            } else {
                BTreeSet::new()
            },
            internal_date: chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00+03:00")
                .unwrap(),
            raw: raw.as_bytes().into(),
        }
    }

    #[test]
    fn matches_threads_like_the_mailbox_channel_asks() {
        let root = stored(3, "Message-ID: <root@x>\r\nSubject: Q\r\n\r\nhi", true);
        let reply = stored(
            5,
            "Message-ID: <r2@x>\r\nIn-Reply-To: <root@x>\r\nReferences:\r\n <root@x>\r\n\r\nok",
            false,
        );
        let other = stored(6, "Message-ID: <other@x>\r\n\r\nno", false);
        let key = criteria(
            "OR OR HEADER Message-ID \"<root@x>\" HEADER References \"<root@x>\" \
             HEADER In-Reply-To \"<root@x>\"",
        )
        .unwrap();
        let matched: Vec<u32> = [&root, &reply, &other]
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                key.matches(&Candidate {
                    sequence: *i as u32 + 1,
                    message: m,
                    last_sequence: 3,
                    last_uid: 6,
                })
            })
            .map(|(_, m)| m.uid)
            .collect();
        assert_eq!(matched, [3, 5]);

        let candidate = |m| Candidate {
            sequence: 1,
            message: m,
            last_sequence: 3,
            last_uid: 6,
        };
        let key = criteria("UID 7:*").unwrap();
        assert!(key.matches(&candidate(&other)) && !key.matches(&candidate(&reply)));
        let key = criteria("CHARSET UTF-8 (UNSEEN BODY \"OK\") NOT SEEN").unwrap();
        assert!(key.matches(&candidate(&reply)) && !key.matches(&candidate(&root)));
        assert!(
            criteria("SINCE 28-Nov-2026")
                .unwrap()
                .matches(&candidate(&root))
        );
    }

    #[test]
    fn refuses_bad_criteria() {
        assert!(matches!(
            criteria("CHARSET KOI8-R ALL"),
            Err(SearchError::BadCharset)
        ));
        for bad in [
            "",
            "FROB",
            "HEADER Subject",
            "OR ALL",
            "(ALL",
            "SINCE yesterday",
            "UID x",
        ] {
            assert!(
                matches!(criteria(bad), Err(SearchError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
