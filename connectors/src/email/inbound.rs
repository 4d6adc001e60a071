//! A raw message fetched from the mailbox, turned into an [`InboundMessage`].
//!
//! - `event_id` and `provider_message_id`: the `Message-ID` without angle brackets (stable
//!   across a changed UIDVALIDITY, so re-fetched mail dedupes), or `<uidvalidity>:<uid>` for a
//!   message that has none.
//! - `conversation`: the thread root, see [`thread_root`].
//! - `sender`: the first `From` address (lower case) as id and e-mail, its display name (or the
//!   address) as name.
//! - `text`: the `text/plain` body parts, or the HTML body flattened to safe text.
//! - `attachments`: every attachment with `file_ref = uid:<uidvalidity>:<uid>:<part index>`;
//!   a message with an HTML body also lists `message.html` (`text/html`, `file_ref =
//!   html:<uidvalidity>:<uid>`), whose download is the sanitized HTML, so a viewer can show the
//!   formatted mail without ever touching the raw HTML.
//! - `sent_at`: the `Date` header.

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::cursor::FileRef;
use super::html::html_to_text;
use crate::provider::{AttachmentKind, ExternalUser, InboundAttachment, InboundMessage};

/// The name under which an HTML body is offered for download.
pub const HTML_BODY_NAME: &str = "message.html";

/// Parses a raw message as fetched by UID from the folder with this UIDVALIDITY.
pub(crate) fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

pub(crate) fn to_inbound(message: &Message<'_>, uid_validity: u32, uid: u32) -> InboundMessage {
    let own_id = message.message_id().map(str::to_owned);
    let event_id = own_id
        .clone()
        .unwrap_or_else(|| format!("{uid_validity}:{uid}"));
    let conversation = thread_root(message).unwrap_or_else(|| event_id.clone());
    InboundMessage {
        event_id: event_id.clone(),
        conversation,
        provider_message_id: Some(event_id),
        sender: sender(message),
        text: body_text(message),
        attachments: attachments(message, uid_validity, uid),
        edit_of: None,
        callback_id: None,
        sent_at: sent_at(message),
    }
}

/// The thread a message belongs to: the first `References` entry (the root, by RFC 5322's
/// rule that each reply copies its parent's list and appends the parent), else the first
/// `In-Reply-To`, else the message's own `Message-ID`: a message that answers nothing starts a
/// thread of its own.
pub(crate) fn thread_root(message: &Message<'_>) -> Option<String> {
    first_id(message.references())
        .or_else(|| first_id(message.in_reply_to()))
        .or_else(|| message.message_id().map(str::to_owned))
}

/// The message ids of a header, in order.
pub(crate) fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    ids(value).into_iter().find(|id| !id.is_empty())
}

fn sender(message: &Message<'_>) -> ExternalUser {
    let from = message.from().and_then(|from| from.first());
    let email = from
        .and_then(|addr| addr.address())
        .map(str::to_ascii_lowercase);
    let name = from
        .and_then(|addr| addr.name())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .or_else(|| email.clone())
        .unwrap_or_default();
    ExternalUser {
        id: email.clone().unwrap_or_default(),
        name,
        username: None,
        phone: None,
        email,
    }
}

fn body_text(message: &Message<'_>) -> String {
    let plain: Vec<&str> = message
        .text_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(text.as_ref()),
            _ => None,
        })
        .collect();
    if !plain.is_empty() {
        return plain.join("\n").trim_end().to_owned();
    }
    match html_body(message) {
        Some(html) => html_to_text(html),
        None => String::new(),
    }
}

/// The first HTML body part, when the message has a real one (not text mail-parser converted).
pub(crate) fn html_body<'a>(message: &'a Message<'_>) -> Option<&'a str> {
    message
        .html_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.as_ref()),
            _ => None,
        })
}

fn attachments(message: &Message<'_>, uid_validity: u32, uid: u32) -> Vec<InboundAttachment> {
    let mut listed: Vec<InboundAttachment> = message
        .attachments
        .iter()
        .filter_map(|id| Some((*id, message.parts.get(*id as usize)?)))
        .map(|(part_id, part)| {
            let mime_type = part.content_type().map(|ct| match ct.subtype() {
                Some(subtype) => format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            });
            InboundAttachment {
                kind: kind_of(mime_type.as_deref()),
                file_ref: Some(
                    FileRef::Part {
                        uid_validity,
                        uid,
                        part: part_id,
                    }
                    .to_string(),
                ),
                file_name: part.attachment_name().map(str::to_owned),
                mime_type,
                size: u64::try_from(part.len()).ok(),
            }
        })
        .collect();
    if let Some(html) = html_body(message) {
        listed.push(InboundAttachment {
            kind: AttachmentKind::Document,
            file_ref: Some(FileRef::Html { uid_validity, uid }.to_string()),
            file_name: Some(HTML_BODY_NAME.to_owned()),
            mime_type: Some("text/html".to_owned()),
            size: u64::try_from(html.len()).ok(),
        });
    }
    listed
}

fn kind_of(mime_type: Option<&str>) -> AttachmentKind {
    match mime_type.and_then(|mime| mime.split('/').next()) {
        Some("image") => AttachmentKind::Image,
        Some("video") => AttachmentKind::Video,
        Some("audio") => AttachmentKind::Audio,
        _ => AttachmentKind::Document,
    }
}

fn sent_at(message: &Message<'_>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(message.date()?.to_timestamp(), 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn inbound(raw: &str) -> InboundMessage {
        to_inbound(&parse(raw.as_bytes()).unwrap(), 9, 4)
    }

    #[test]
    fn a_reply_belongs_to_the_first_reference() {
        let message = inbound(
            "From: \"Ivan Petrov\" <Ivan@Customer.test>\r\nTo: shop@shop.test\r\n\
             Subject: Re: order\r\nMessage-ID: <c2@customer.test>\r\n\
             In-Reply-To: <s1@shop.test>\r\nReferences: <c1@customer.test> <s1@shop.test>\r\n\
             Date: Fri, 27 Nov 2026 10:00:00 +0100\r\n\r\nthanks\r\n",
        );
        assert_eq!(message.event_id, "c2@customer.test");
        assert_eq!(
            message.provider_message_id.as_deref(),
            Some("c2@customer.test")
        );
        assert_eq!(message.conversation, "c1@customer.test");
        assert_eq!(message.sender.id, "ivan@customer.test");
        assert_eq!(message.sender.name, "Ivan Petrov");
        assert_eq!(message.text, "thanks");
        assert_eq!(
            message.sent_at.unwrap().to_rfc3339(),
            "2026-11-27T09:00:00+00:00"
        );
    }

    #[test]
    fn in_reply_to_then_own_id_then_uid() {
        let only_parent = inbound(
            "From: a@customer.test\r\nMessage-ID: <c2@x>\r\nIn-Reply-To: <c1@x>\r\n\r\nhi\r\n",
        );
        assert_eq!(only_parent.conversation, "c1@x");
        let first = inbound("From: a@customer.test\r\nMessage-ID: <c1@x>\r\n\r\nhi\r\n");
        assert_eq!(first.conversation, "c1@x");
        let bare = inbound("From: a@customer.test\r\nSubject: no id\r\n\r\nhi\r\n");
        assert_eq!(bare.event_id, "9:4");
        assert_eq!(bare.conversation, "9:4");
        assert_eq!(bare.sender.name, "a@customer.test");
    }

    #[test]
    fn html_only_mail_becomes_safe_text_and_a_sanitized_body() {
        let message = inbound(
            "From: a@customer.test\r\nMessage-ID: <h@x>\r\nContent-Type: text/html\r\n\r\n\
             <p>Where is <b>my order</b>?</p><script>alert(1)</script>\
             <a href=\"javascript:steal()\">track</a>\r\n",
        );
        assert!(message.text.contains("Where is"), "{}", message.text);
        assert!(message.text.contains("my order"), "{}", message.text);
        assert!(!message.text.contains("alert"), "{}", message.text);
        assert_eq!(message.attachments.len(), 1);
        let html = &message.attachments[0];
        assert_eq!(html.file_ref.as_deref(), Some("html:9:4"));
        assert_eq!(html.mime_type.as_deref(), Some("text/html"));
    }
}
