//! FETCH data items (RFC 3501 §6.4.5) and their answers (§7.4.2): `UID`, `FLAGS`,
//! `INTERNALDATE`, `RFC822.SIZE`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`, and `BODY[…]` /
//! `BODY.PEEK[…]` with the sections `""`, `HEADER`, `TEXT`, `HEADER.FIELDS (…)` and
//! `HEADER.FIELDS.NOT (…)`, each optionally partial (`<origin.length>`); the macros `FAST`
//! and `FLAGS`. Structure items (`ENVELOPE`, `BODYSTRUCTURE`, MIME part numbers) are not
//! offered, and are refused by name rather than answered wrongly.

use std::collections::BTreeSet;

use super::message::{fields, split};
use super::store::StoredMessage;
use super::syntax::{Args, SyntaxError, Token, literal, parse_number};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Section {
    Whole,
    Header,
    Text,
    /// `HEADER.FIELDS` (`not: false`) or `HEADER.FIELDS.NOT`, with the names as asked.
    Fields {
        names: Vec<String>,
        not: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Uid,
    Flags,
    InternalDate,
    Size,
    /// `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`: answered under the same name.
    Rfc822(Section),
    Body {
        section: Section,
        peek: bool,
        /// `<origin.length>`.
        partial: Option<(u32, u32)>,
    },
}

impl Item {
    /// Whether fetching the item sets `\Seen` (RFC 3501 §6.4.5).
    pub fn sets_seen(&self) -> bool {
        match self {
            Item::Body { peek, .. } => !peek,
            Item::Rfc822(section) => *section != Section::Header,
            _ => false,
        }
    }
}

/// The items of a FETCH: one item, a macro, or a parenthesized list.
pub(crate) fn parse(args: &mut Args) -> Result<Vec<Item>, SyntaxError> {
    let items = match args.next() {
        Some(Token::Open) => {
            let mut items = Vec::new();
            loop {
                match args.next() {
                    Some(Token::Close) => break,
                    Some(Token::Atom(atom)) => items.push(item(&atom)?),
                    _ => return Err("fetch items and ) expected".into()),
                }
            }
            if items.is_empty() {
                return Err("empty fetch item list".into());
            }
            items
        }
        Some(Token::Atom(atom)) => match atom.to_ascii_uppercase().as_str() {
            "FAST" => vec![Item::Flags, Item::InternalDate, Item::Size],
            "ALL" | "FULL" => {
                return Err(format!(
                    "{atom} needs ENVELOPE, which this server does not offer"
                ));
            }
            _ => vec![item(&atom)?],
        },
        _ => return Err("fetch items expected".into()),
    };
    args.end()?;
    Ok(items)
}

fn item(atom: &str) -> Result<Item, SyntaxError> {
    let upper = atom.to_ascii_uppercase();
    let simple = match upper.as_str() {
        "UID" => Some(Item::Uid),
        "FLAGS" => Some(Item::Flags),
        "INTERNALDATE" => Some(Item::InternalDate),
        "RFC822.SIZE" => Some(Item::Size),
        "RFC822" => Some(Item::Rfc822(Section::Whole)),
        "RFC822.HEADER" => Some(Item::Rfc822(Section::Header)),
        "RFC822.TEXT" => Some(Item::Rfc822(Section::Text)),
        "ENVELOPE" | "BODYSTRUCTURE" | "BODY" => {
            return Err(format!("{atom} is not offered by this server"));
        }
        _ => None,
    };
    if let Some(item) = simple {
        return Ok(item);
    }
    let (peek, rest) = if let Some(rest) = upper.strip_prefix("BODY.PEEK[") {
        (true, &atom[atom.len() - rest.len()..])
    } else if let Some(rest) = upper.strip_prefix("BODY[") {
        (false, &atom[atom.len() - rest.len()..])
    } else {
        return Err(format!("unknown fetch item {atom:?}"));
    };
    let close = rest
        .rfind(']')
        .ok_or_else(|| format!("{atom:?}: ] expected"))?;
    let section = section(&rest[..close])?;
    let partial = match &rest[close + 1..] {
        "" => None,
        tail => {
            let range = tail
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .and_then(|t| t.split_once('.'))
                .and_then(|(origin, length)| Some((parse_number(origin)?, parse_number(length)?)))
                .filter(|(_, length)| *length > 0);
            Some(range.ok_or_else(|| format!("{atom:?}: bad partial range"))?)
        }
    };
    Ok(Item::Body {
        section,
        peek,
        partial,
    })
}

fn section(text: &str) -> Result<Section, SyntaxError> {
    let upper = text.to_ascii_uppercase();
    let field_list = |list: &str, not: bool| -> Result<Section, SyntaxError> {
        let names: Vec<String> = list
            .trim()
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("{text:?}: a list of field names expected"))?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if names.is_empty() || names.iter().any(|n| n.contains(['"', '(', ')', ':'])) {
            return Err(format!("{text:?}: bad field names"));
        }
        Ok(Section::Fields { names, not })
    };
    match upper.as_str() {
        "" => Ok(Section::Whole),
        "HEADER" => Ok(Section::Header),
        "TEXT" => Ok(Section::Text),
        _ if upper.starts_with("HEADER.FIELDS.NOT ") => field_list(&text[17..], true),
        _ if upper.starts_with("HEADER.FIELDS ") => field_list(&text[13..], false),
        _ => Err(format!(
            "section {text:?} is not offered by this server (only \"\", HEADER, TEXT and \
             HEADER.FIELDS)"
        )),
    }
}

/// The bytes of a section of a message.
fn section_bytes(raw: &[u8], section: &Section) -> Vec<u8> {
    match section {
        Section::Whole => raw.to_vec(),
        Section::Header => split(raw).0.to_vec(),
        Section::Text => split(raw).1.to_vec(),
        Section::Fields { names, not } => {
            let mut out = Vec::new();
            for (name, lines) in fields(raw) {
                let listed = names.iter().any(|n| n.eq_ignore_ascii_case(&name));
                if listed != *not {
                    out.extend_from_slice(lines);
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

fn section_name(section: &Section) -> String {
    match section {
        Section::Whole => String::new(),
        Section::Header => "HEADER".into(),
        Section::Text => "TEXT".into(),
        Section::Fields { names, not } => format!(
            "HEADER.FIELDS{} ({})",
            if *not { ".NOT" } else { "" },
            names.join(" ")
        ),
    }
}

/// `(\Seen \Answered)`.
pub(crate) fn flag_list(flags: &BTreeSet<String>) -> String {
    format!(
        "({})",
        flags
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The parenthesized data of one message's FETCH answer (after `* n FETCH `).
pub(crate) fn answer(message: &StoredMessage, items: &[Item]) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(items.len());
    for item in items {
        let part = match item {
            Item::Uid => format!("UID {}", message.uid).into_bytes(),
            Item::Flags => format!("FLAGS {}", flag_list(&message.flags)).into_bytes(),
            Item::InternalDate => format!(
                "INTERNALDATE \"{}\"",
                message.internal_date.format("%e-%b-%Y %H:%M:%S %z")
            )
            .into_bytes(),
            Item::Size => format!("RFC822.SIZE {}", message.raw.len()).into_bytes(),
            Item::Rfc822(section) => {
                let name = match section {
                    Section::Header => "RFC822.HEADER",
                    Section::Text => "RFC822.TEXT",
                    _ => "RFC822",
                };
                let mut part = format!("{name} ").into_bytes();
                part.extend(literal(&section_bytes(&message.raw, section)));
                part
            }
            Item::Body {
                section, partial, ..
            } => {
                let bytes = section_bytes(&message.raw, section);
                let (origin, bytes) = match partial {
                    Some((origin, length)) => {
                        let start = (*origin as usize).min(bytes.len());
                        let end = start.saturating_add(*length as usize).min(bytes.len());
                        (format!("<{origin}>"), bytes[start..end].to_vec())
                    }
                    None => (String::new(), bytes),
                };
                let mut part = format!("BODY[{}]{origin} ", section_name(section)).into_bytes();
                part.extend(literal(&bytes));
                part
            }
        };
        parts.push(part);
    }
    let mut out = b"(".to_vec();
    out.extend(parts.join(&b' '));
    out.push(b')');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::syntax::{Piece, tokenize};
    use super::*;

    fn items(text: &str) -> Result<Vec<Item>, SyntaxError> {
        let tokens = tokenize(&[Piece::Text(text.as_bytes().to_vec())]).unwrap();
        parse(&mut Args::new(tokens))
    }

    #[test]
    fn parses_what_the_mailbox_channel_asks() {
        assert_eq!(
            items("(UID BODY.PEEK[])").unwrap(),
            [
                Item::Uid,
                Item::Body {
                    section: Section::Whole,
                    peek: true,
                    partial: None
                }
            ]
        );
        assert_eq!(items("(UID RFC822.SIZE)").unwrap(), [Item::Uid, Item::Size]);
        assert_eq!(
            items("BODY[HEADER.FIELDS (From Subject)]<0.20>").unwrap(),
            [Item::Body {
                section: Section::Fields {
                    names: vec!["From".into(), "Subject".into()],
                    not: false
                },
                peek: false,
                partial: Some((0, 20))
            }]
        );
        for bad in [
            "()",
            "(UID",
            "ENVELOPE",
            "BODY[1.2]",
            "BODY[]<5>",
            "ALL",
            "X",
        ] {
            assert!(items(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_with_exact_literals() {
        let message = StoredMessage {
            uid: 7,
            flags: BTreeSet::from(["\\Seen".to_owned()]),
            internal_date: chrono::DateTime::parse_from_rfc3339("2026-11-08T09:05:00+03:00")
                .unwrap(),
            raw: b"From: a@b.c\r\nTo: d@e.f\r\n\r\nHi\r\n"[..].into(),
        };
        let answer =
            |text: &str| String::from_utf8(answer(&message, &items(text).unwrap())).unwrap();
        assert_eq!(
            answer("(UID FLAGS RFC822.SIZE INTERNALDATE)"),
            "(UID 7 FLAGS (\\Seen) RFC822.SIZE 30 INTERNALDATE \" 8-Nov-2026 09:05:00 +0300\")"
        );
        assert_eq!(
            answer("BODY.PEEK[HEADER.FIELDS (to)]"),
            "(BODY[HEADER.FIELDS (to)] {13}\r\nTo: d@e.f\r\n\r\n)"
        );
        assert_eq!(answer("BODY[TEXT]<1.3>"), "(BODY[TEXT]<1> {3}\r\ni\r\n)");
        assert_eq!(answer("RFC822.TEXT"), "(RFC822.TEXT {4}\r\nHi\r\n)");
    }
}
