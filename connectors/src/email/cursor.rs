//! Where a mailbox's long poll continues, and how attachments are addressed: both are written
//! in IMAP's own terms, a folder's UIDVALIDITY plus a message UID, which stay valid across
//! reconnects and restarts for as long as the UIDVALIDITY does.

use std::fmt;

/// The poll cursor: `imap:<uidvalidity>:<last seen uid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub uid_validity: u32,
    pub last_uid: u32,
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Cursor> {
        let rest = text.strip_prefix("imap:")?;
        let (uid_validity, last_uid) = rest.split_once(':')?;
        Some(Cursor {
            uid_validity: uid_validity.parse().ok()?,
            last_uid: last_uid.parse().ok()?,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "imap:{}:{}", self.uid_validity, self.last_uid)
    }
}

/// What a `file_ref` of this channel points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileRef {
    /// `uid:<uidvalidity>:<uid>:<part>`: the decoded bytes of one MIME part.
    Part {
        uid_validity: u32,
        uid: u32,
        part: u32,
    },
    /// `html:<uidvalidity>:<uid>`: the message's HTML body, sanitized.
    Html { uid_validity: u32, uid: u32 },
}

impl FileRef {
    pub fn parse(text: &str) -> Option<FileRef> {
        let mut fields = text.split(':');
        let kind = fields.next()?;
        let uid_validity = fields.next()?.parse().ok()?;
        let uid = fields.next()?.parse().ok()?;
        let file_ref = match kind {
            "uid" => FileRef::Part {
                uid_validity,
                uid,
                part: fields.next()?.parse().ok()?,
            },
            "html" => FileRef::Html { uid_validity, uid },
            _ => return None,
        };
        fields.next().is_none().then_some(file_ref)
    }

    pub fn uid_validity(&self) -> u32 {
        match self {
            FileRef::Part { uid_validity, .. } | FileRef::Html { uid_validity, .. } => {
                *uid_validity
            }
        }
    }

    pub fn uid(&self) -> u32 {
        match self {
            FileRef::Part { uid, .. } | FileRef::Html { uid, .. } => *uid,
        }
    }
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileRef::Part {
                uid_validity,
                uid,
                part,
            } => write!(f, "uid:{uid_validity}:{uid}:{part}"),
            FileRef::Html { uid_validity, uid } => write!(f, "html:{uid_validity}:{uid}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cursor = Cursor {
            uid_validity: 1_700_000_000,
            last_uid: 42,
        };
        assert_eq!(cursor.to_string(), "imap:1700000000:42");
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        for file_ref in [
            FileRef::Part {
                uid_validity: 7,
                uid: 3,
                part: 2,
            },
            FileRef::Html {
                uid_validity: 7,
                uid: 3,
            },
        ] {
            assert_eq!(FileRef::parse(&file_ref.to_string()), Some(file_ref));
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "imap:", "imap:1", "imap:x:1", "1:2", "imap:1:-2"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
        for bad in [
            "uid:1:2",
            "uid:1:2:3:4",
            "html:1",
            "file:1:2:3",
            "uid:a:2:3",
        ] {
            assert_eq!(FileRef::parse(bad), None, "{bad}");
        }
    }
}
