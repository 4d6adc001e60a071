//! The parts of a stored RFC 5322 message that IMAP names: its header (with the blank line
//! that ends it), its text (everything after), and its header fields by name.

/// The header, blank line included, and the text after it. A message without a blank line is
/// all header.
pub(crate) fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => raw.split_at(end + 4),
        None => (raw, &[]),
    }
}

/// The header's fields, each as its raw lines (continuations and CRLFs included), with its
/// name.
pub(crate) fn fields(raw: &[u8]) -> Vec<(String, &[u8])> {
    let (header, _) = split(raw);
    let mut fields: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let end = header[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(header.len(), |at| start + at + 2);
        let line = &header[start..end];
        if line == b"\r\n" {
            break;
        }
        match line.first() {
            Some(b' ' | b'\t') => {
                if let Some((_, range)) = fields.last_mut() {
                    range.end = end;
                }
            }
            _ => {
                let name = line
                    .iter()
                    .position(|&b| b == b':')
                    .map(|colon| String::from_utf8_lossy(&line[..colon]).trim().to_owned())
                    .unwrap_or_default();
                fields.push((name, start..end));
            }
        }
        start = end;
    }
    fields
        .into_iter()
        .map(|(name, range)| (name, &header[range]))
        .collect()
}

/// The unfolded value of a field's lines: after the colon, line breaks removed.
pub(crate) fn value(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let after = text.split_once(':').map_or("", |(_, value)| value);
    after.replace("\r\n", "").trim().to_owned()
}

/// Case-insensitive substring search, as SEARCH matches (RFC 3501 §6.4.4).
pub(crate) fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let haystack = String::from_utf8_lossy(haystack).to_lowercase();
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    haystack.contains(&needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: a@b.c\r\nSubject: long\r\n  folded\r\nTo: d@e.f\r\n\r\nBody\r\n";

    #[test]
    fn splits_and_reads_fields() {
        let (header, text) = split(MAIL);
        assert!(header.ends_with(b"d@e.f\r\n\r\n"));
        assert_eq!(text, b"Body\r\n");
        let fields = fields(MAIL);
        let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["From", "Subject", "To"]);
        assert_eq!(fields[1].1, b"Subject: long\r\n  folded\r\n");
        assert_eq!(value(fields[1].1), "long  folded");
        assert_eq!(split(b"X: y"), (&b"X: y"[..], &b""[..]));
    }

    #[test]
    fn matches_without_case() {
        assert!(contains_ignoring_case(
            "Привет, МИР".as_bytes(),
            "мир".as_bytes()
        ));
        assert!(!contains_ignoring_case(b"abc", b"abd"));
    }
}
