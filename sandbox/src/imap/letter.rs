//! The e-mail a customer's mail client writes (RFC 5322 with MIME, RFC 2045–2047): `Date`,
//! `From`, `To`, `Subject` (non-ASCII names and subjects as encoded words), `Message-ID`,
//! and for an answer `In-Reply-To` and `References`, so a mail client (and omnihub) threads
//! it. The body is UTF-8 `text/plain`, sent 8-bit, or base64 when a line is too long for
//! 8-bit transport.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset};

/// RFC 5322 §2.1.1: no line of a message may exceed 998 characters.
const MAX_LINE: usize = 998;
/// Bytes of UTF-8 per encoded word: 45 bytes are 60 base64 characters, which with
/// `=?UTF-8?B?` and `?=` stay within the 75 RFC 2047 allows.
const WORD_BYTES: usize = 45;

/// One message, as its sender's client composes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    pub from_name: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    /// Without angle brackets.
    pub message_id: String,
    /// The message this one answers and the thread's ids before it (root first), without
    /// angle brackets.
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub date: DateTime<FixedOffset>,
}

impl Letter {
    /// The message in wire form, lines ending in CRLF.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = String::new();
        let mut field = |name: &str, value: &str| {
            header.push_str(name);
            header.push_str(": ");
            header.push_str(value);
            header.push_str("\r\n");
        };
        field("Date", &self.date.to_rfc2822());
        field("From", &mailbox(&self.from_name, &self.from));
        field("To", &format!("<{}>", self.to));
        field("Subject", &unstructured(&self.subject));
        field("Message-ID", &format!("<{}>", self.message_id));
        if let Some(parent) = &self.in_reply_to {
            field("In-Reply-To", &format!("<{parent}>"));
            let references: Vec<String> =
                self.references.iter().map(|id| format!("<{id}>")).collect();
            if !references.is_empty() {
                field("References", &references.join("\r\n "));
            }
        }
        field("MIME-Version", "1.0");
        field("Content-Type", "text/plain; charset=utf-8");
        let text = self.text.replace("\r\n", "\n").replace('\n', "\r\n");
        let body = if text.split("\r\n").any(|line| line.len() > MAX_LINE) {
            field("Content-Transfer-Encoding", "base64");
            let encoded = BASE64.encode(text.as_bytes());
            encoded
                .as_bytes()
                .chunks(76)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect::<Vec<_>>()
                .join("\r\n")
        } else if text.is_ascii() {
            field("Content-Transfer-Encoding", "7bit");
            text
        } else {
            field("Content-Transfer-Encoding", "8bit");
            text
        };
        let mut out = header.into_bytes();
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body.as_bytes());
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// `Name <address>`: a plain ASCII name quoted, any other as encoded words.
fn mailbox(name: &str, address: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        format!("<{address}>")
    } else if name.is_ascii() && !name.chars().any(|c| c.is_ascii_control()) {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" <{address}>")
    } else {
        format!("{} <{address}>", encoded_words(name))
    }
}

/// An unstructured value (a subject): as is when ASCII, else encoded words.
fn unstructured(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    if text.is_ascii() {
        text
    } else {
        encoded_words(&text)
    }
}

/// RFC 2047 `B` encoded words, split between characters, folded onto lines of their own.
fn encoded_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|word| format!("=?UTF-8?B?{}?=", BASE64.encode(word.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_threaded_russian_letter() {
        let letter = Letter {
            from_name: "Мария Петрова".into(),
            from: "maria@example.ru".into(),
            to: "sales@romashka.test".into(),
            subject: "Доставка в Казань — сколько дней? Хочу заказать до праздников".into(),
            text: "Здравствуйте!\nПодскажите, пожалуйста.".into(),
            message_id: "2@example.ru".into(),
            in_reply_to: Some("1@example.ru".into()),
            references: vec!["1@example.ru".into()],
            date: DateTime::parse_from_rfc3339("2026-11-28T10:00:00+03:00").unwrap(),
        };
        let raw = String::from_utf8(letter.to_bytes()).unwrap();
        assert!(
            raw.starts_with("Date: Sat, 28 Nov 2026 10:00:00 +0300\r\n"),
            "{raw}"
        );
        assert!(raw.contains("\r\nFrom: =?UTF-8?B?"), "{raw}");
        assert!(raw.contains("\r\nIn-Reply-To: <1@example.ru>\r\nReferences: <1@example.ru>\r\n"));
        assert!(raw.contains("\r\n\r\nЗдравствуйте!\r\nПодскажите, пожалуйста.\r\n"));
        assert!(raw.lines().all(|line| line.len() <= MAX_LINE));
        // Every encoded word stays within RFC 2047's 75 characters.
        assert!(
            raw.split(['\r', '\n', ' '])
                .filter(|w| w.starts_with("=?"))
                .all(|w| w.len() <= 75)
        );
        assert_eq!(
            mailbox("John \"JC\" Carter", "j@x.com"),
            "\"John \\\"JC\\\" Carter\" <j@x.com>"
        );
    }
}
