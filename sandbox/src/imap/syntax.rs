//! IMAP command syntax (RFC 3501 §9): a command arrives as lines and the literals between them,
//! which [`tokenize`] turns into atoms, strings and parentheses; [`Args`] takes them apart the
//! way each command's grammar says, and [`SequenceSet`] reads message sets such as `1:*`.
//! Everything here is pure, so the grammar is tested without a socket.

use std::collections::VecDeque;

/// One part of a command as read from the socket: a line (without its CRLF), or the bytes of
/// a literal announced at the end of the line before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(Vec<u8>),
    Literal(Vec<u8>),
}

/// A command's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An atom, a number, a flag, a sequence set, or a fetch item such as
    /// `BODY.PEEK[HEADER.FIELDS (FROM)]<0.100>` (brackets and what they hold belong to it).
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    Open,
    Close,
}

/// The length a line announces for the literal that follows it: `{n}` at its end, and whether
/// it is the non-synchronizing `{n+}` form.
pub(crate) fn literal_length(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let (digits, plus) = match digits.strip_suffix(b"+") {
        Some(digits) => (digits, true),
        None => (digits, false),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((length, plus))
}

/// A syntax error, in words for the `BAD` answer.
pub(crate) type SyntaxError = String;

/// Splits a command into tokens.
pub(crate) fn tokenize(pieces: &[Piece]) -> Result<Vec<Token>, SyntaxError> {
    let mut tokens = Vec::new();
    let mut pieces = pieces.iter().peekable();
    while let Some(piece) = pieces.next() {
        let Piece::Text(text) = piece else {
            return Err("a literal nobody announced".into());
        };
        let mut text = &text[..];
        // A line that announces a literal ends with `{n}`: the literal is the next piece.
        let announces = literal_length(text).is_some();
        if announces {
            let open = text.iter().rposition(|&b| b == b'{').unwrap_or(0);
            text = &text[..open];
        }
        tokenize_text(text, &mut tokens)?;
        if announces {
            match pieces.next() {
                Some(Piece::Literal(bytes)) => tokens.push(Token::Str(bytes.clone())),
                _ => return Err("a literal is missing".into()),
            }
        }
    }
    Ok(tokens)
}

fn tokenize_text(text: &[u8], tokens: &mut Vec<Token>) -> Result<(), SyntaxError> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b' ' => i += 1,
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'"' => {
                let mut value = Vec::new();
                i += 1;
                loop {
                    match text.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match text.get(i + 1) {
                            Some(&c @ (b'"' | b'\\')) => {
                                value.push(c);
                                i += 2;
                            }
                            _ => return Err("only \\\" and \\\\ may be escaped".into()),
                        },
                        Some(&c) if c < 0x20 || c == 0x7f => {
                            return Err("control character in a quoted string".into());
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(value));
            }
            b'{' => return Err("a literal must end its line".into()),
            _ => {
                let start = i;
                let mut depth = 0usize;
                while i < text.len() {
                    let c = text[i];
                    match c {
                        b'[' => depth += 1,
                        b']' if depth > 0 => depth -= 1,
                        b' ' | b'(' | b')' if depth == 0 => break,
                        b'"' | b'{' if depth == 0 => break,
                        _ if c < 0x20 || c == 0x7f => {
                            return Err("control character in a command".into());
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if depth > 0 {
                    return Err("unbalanced [".into());
                }
                let atom = std::str::from_utf8(&text[start..i])
                    .map_err(|_| "an atom that is not UTF-8".to_owned())?;
                tokens.push(Token::Atom(atom.to_owned()));
            }
        }
    }
    Ok(())
}

/// A command's arguments, taken from the front.
#[derive(Debug)]
pub(crate) struct Args {
    tokens: VecDeque<Token>,
}

impl Args {
    pub fn new(tokens: Vec<Token>) -> Args {
        Args {
            tokens: tokens.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn peek(&self) -> Option<&Token> {
        self.tokens.front()
    }

    pub fn next(&mut self) -> Option<Token> {
        self.tokens.pop_front()
    }

    /// Nothing may follow.
    pub fn end(&self) -> Result<(), SyntaxError> {
        if self.tokens.is_empty() {
            Ok(())
        } else {
            Err("unexpected extra arguments".into())
        }
    }

    /// An atom (any case kept).
    pub fn atom(&mut self, what: &str) -> Result<String, SyntaxError> {
        match self.next() {
            Some(Token::Atom(atom)) => Ok(atom),
            _ => Err(format!("{what} expected")),
        }
    }

    /// An astring: an atom, a quoted string or a literal, as bytes.
    pub fn astring(&mut self, what: &str) -> Result<Vec<u8>, SyntaxError> {
        match self.next() {
            Some(Token::Atom(atom)) => Ok(atom.into_bytes()),
            Some(Token::Str(bytes)) => Ok(bytes),
            _ => Err(format!("{what} expected")),
        }
    }

    /// An astring that must be UTF-8 text.
    pub fn text(&mut self, what: &str) -> Result<String, SyntaxError> {
        String::from_utf8(self.astring(what)?).map_err(|_| format!("{what} is not UTF-8"))
    }

    /// A number (RFC 3501 `number`: digits, 32 bits).
    pub fn number(&mut self, what: &str) -> Result<u32, SyntaxError> {
        let atom = self.atom(what)?;
        parse_number(&atom).ok_or_else(|| format!("{what} must be a number, got {atom:?}"))
    }

    /// A parenthesized list of atoms.
    pub fn atom_list(&mut self, what: &str) -> Result<Vec<String>, SyntaxError> {
        if self.next() != Some(Token::Open) {
            return Err(format!("{what}: ( expected"));
        }
        let mut atoms = Vec::new();
        loop {
            match self.next() {
                Some(Token::Close) => return Ok(atoms),
                Some(Token::Atom(atom)) => atoms.push(atom),
                _ => return Err(format!("{what}: atoms and ) expected")),
            }
        }
    }
}

pub(crate) fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// One end of a range: a number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Number(u32),
    Star,
}

/// A message set (RFC 3501 `sequence-set`): sequence numbers or UIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SequenceSet {
    ranges: Vec<(Bound, Bound)>,
}

impl SequenceSet {
    pub fn parse(text: &str) -> Option<SequenceSet> {
        let bound = |part: &str| match part {
            "*" => Some(Bound::Star),
            number => parse_number(number).filter(|n| *n > 0).map(Bound::Number),
        };
        let ranges = text
            .split(',')
            .map(|range| match range.split_once(':') {
                Some((from, to)) => Some((bound(from)?, bound(to)?)),
                None => {
                    let single = bound(range)?;
                    Some((single, single))
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SequenceSet { ranges })
    }

    /// Whether `n` is in the set, `*` standing for `largest`. A range is the same either way
    /// round (`5:2` is `2:5`), and `n:*` holds `largest` even when `largest` is below `n`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let value = |bound: Bound| match bound {
            Bound::Number(n) => n,
            Bound::Star => largest,
        };
        self.ranges.iter().any(|&(from, to)| {
            let (a, b) = (value(from), value(to));
            (a.min(b)..=a.max(b)).contains(&n)
        })
    }

    /// The largest number named outright (not through `*`).
    pub fn largest_named(&self) -> u32 {
        self.ranges
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .filter_map(|bound| match bound {
                Bound::Number(n) => Some(n),
                Bound::Star => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Writes `bytes` as an IMAP string: quoted when that is possible, else a literal.
pub(crate) fn string(bytes: &[u8]) -> Vec<u8> {
    let quotable = bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b >= 0x80);
    if quotable {
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
        out
    } else {
        literal(bytes)
    }
}

/// `{n}` CRLF and the bytes.
pub(crate) fn literal(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}}}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(line: &str) -> Piece {
        Piece::Text(line.as_bytes().to_vec())
    }

    #[test]
    fn finds_literal_announcements() {
        assert_eq!(literal_length(b"A1 LOGIN {5}"), Some((5, false)));
        assert_eq!(literal_length(b"A1 APPEND INBOX {12+}"), Some((12, true)));
        assert_eq!(literal_length(b"A1 LOGIN {}"), None);
        assert_eq!(literal_length(b"A1 LOGIN {x}"), None);
        assert_eq!(literal_length(b"A1 NOOP"), None);
    }

    #[test]
    fn tokenizes_strings_literals_and_fetch_items() {
        let pieces = [
            text("A1 LOGIN \"sh\\\"op\" {3}"),
            Piece::Literal(b"p w".to_vec()),
            text(""),
        ];
        assert_eq!(
            tokenize(&pieces).unwrap(),
            [
                Token::Atom("A1".into()),
                Token::Atom("LOGIN".into()),
                Token::Str(b"sh\"op".to_vec()),
                Token::Str(b"p w".to_vec()),
            ]
        );
        assert_eq!(
            tokenize(&[text(
                "A2 UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)"
            )])
            .unwrap(),
            [
                Token::Atom("A2".into()),
                Token::Atom("UID".into()),
                Token::Atom("FETCH".into()),
                Token::Atom("1:*".into()),
                Token::Open,
                Token::Atom("UID".into()),
                Token::Atom("BODY.PEEK[HEADER.FIELDS (From To)]<0.10>".into()),
                Token::Close,
            ]
        );
        for bad in [
            "A1 LOGIN \"open",
            "A1 X \"a\\b\"",
            "A1 BODY[HEADER",
            "A1 {3} x",
        ] {
            assert!(tokenize(&[text(bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn sequence_sets() {
        let set = SequenceSet::parse("1,3:4,9:*").unwrap();
        assert!(set.contains(1, 12) && set.contains(4, 12) && set.contains(12, 12));
        assert!(!set.contains(2, 12) && !set.contains(8, 12));
        // `n:*` holds the largest number even when it is below n.
        let set = SequenceSet::parse("7:*").unwrap();
        assert!(set.contains(5, 5) && !set.contains(4, 5));
        assert_eq!(set.largest_named(), 7);
        for bad in ["", "0", "1:", ":2", "a", "1,,2", "-1"] {
            assert_eq!(SequenceSet::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn writes_strings() {
        assert_eq!(string(b"a \"b\""), b"\"a \\\"b\\\"\"");
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
    }
}
