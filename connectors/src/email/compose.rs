//! The reply a mailbox channel sends: addressed, threaded and titled from the message it
//! answers, as a mail client would do it.
//!
//! - `Message-ID`: derived from the channel's address and the send's idempotency key, so a
//!   retried send is the same message and the recipient's client shows it once.
//! - `In-Reply-To`: the answered message; `References`: its `References` (or its `In-Reply-To`)
//!   plus its own id, so the first entry stays the thread root that names the conversation.
//! - `Subject`: `Re: ` and the answered subject without its own `Re:` prefixes.
//! - Body: `text/plain` and an escaped `text/html` alternative; attachments as MIME parts.
//!   Buttons and templates have no e-mail form: the text alone is sent.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use mail_parser::Message as ParsedMessage;
use sha2::{Digest, Sha256};

use super::html::text_to_html;
use super::inbound::ids;
use crate::{OutboundMessage, SendError};

/// A `References` header keeps the root and the most recent ids up to this many (RFC 5322
/// allows trimming the middle of a long thread).
const MAX_REFERENCES: usize = 20;

/// The message a reply answers, as much of it as the reply needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parent {
    pub message_id: String,
    /// Its own `References` (or `In-Reply-To`), without angle brackets.
    pub references: Vec<String>,
    pub subject: String,
    /// Who gets the reply: its `Reply-To`, else its `From`; its `To` when it was our own mail.
    pub recipient: Mailbox,
}

impl Parent {
    /// Reads the answered message's header; `None` when it lacks a `Message-ID` or anyone to
    /// answer.
    pub fn from_header(message: &ParsedMessage<'_>, own_address: &str) -> Option<Parent> {
        let message_id = message.message_id()?.to_owned();
        let mut references = ids(message.references());
        if references.is_empty() {
            references = ids(message.in_reply_to());
        }
        let first_of = |address: Option<&mail_parser::Address<'_>>| {
            let addr = address?.first()?;
            let email: lettre::Address = addr.address()?.parse().ok()?;
            Some(Mailbox::new(addr.name().map(str::to_owned), email))
        };
        let mut recipient = first_of(message.reply_to()).or_else(|| first_of(message.from()))?;
        if recipient
            .email
            .to_string()
            .eq_ignore_ascii_case(own_address)
        {
            recipient = first_of(message.to())?;
        }
        Some(Parent {
            message_id,
            references,
            subject: message.subject().unwrap_or_default().to_owned(),
            recipient,
        })
    }
}

/// The `Message-ID` (without angle brackets) of the send with this idempotency key from this
/// address: the same key always gives the same id.
pub(crate) fn message_id_for(idempotency_key: &str, own_address: &str) -> String {
    let digest = Sha256::digest(format!("{own_address}\n{idempotency_key}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let domain = own_address
        .rsplit_once('@')
        .map_or("omnihub.invalid", |(_, domain)| domain);
    format!("omnihub.{hex}@{domain}")
}

/// `Re: ` and the subject without the `Re:` prefixes it already carries.
pub(crate) fn reply_subject(subject: &str) -> String {
    let mut base = subject.trim();
    while let Some(prefix) = base.get(..3) {
        if prefix.eq_ignore_ascii_case("re:") {
            base = base[3..].trim_start();
        } else {
            break;
        }
    }
    format!("Re: {base}").trim_end().to_owned()
}

/// The reply's `References`: the parent's list plus the parent, without repeats, the root kept
/// when the list is trimmed.
pub(crate) fn references(parent: &Parent) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    for id in parent
        .references
        .iter()
        .chain(std::iter::once(&parent.message_id))
    {
        if !list.contains(id) {
            list.push(id.clone());
        }
    }
    if list.len() > MAX_REFERENCES {
        let tail = list.split_off(list.len() - (MAX_REFERENCES - 1));
        list.truncate(1);
        list.extend(tail);
    }
    list
}

/// The complete reply.
pub(crate) fn reply(
    from: &Mailbox,
    parent: &Parent,
    message: &OutboundMessage,
    message_id: &str,
) -> Result<Message, SendError> {
    let bracketed = |id: &str| format!("<{id}>");
    let references = references(parent)
        .iter()
        .map(|id| bracketed(id))
        .collect::<Vec<_>>()
        .join(" ");
    let body = MultiPart::alternative_plain_html(message.text.clone(), text_to_html(&message.text));
    let body = if message.attachments.is_empty() {
        body
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for attachment in &message.attachments {
            mixed = mixed.singlepart(attachment_part(attachment)?);
        }
        mixed
    };
    Message::builder()
        .from(from.clone())
        .to(parent.recipient.clone())
        .subject(reply_subject(&parent.subject))
        .message_id(Some(bracketed(message_id)))
        .in_reply_to(bracketed(&parent.message_id))
        .references(references)
        .multipart(body)
        .map_err(|error| SendError::Permanent {
            reason: format!("could not build the e-mail: {error}"),
        })
}

fn attachment_part(attachment: &crate::OutboundAttachment) -> Result<SinglePart, SendError> {
    let content_type =
        ContentType::parse(&attachment.mime_type).map_err(|_| SendError::Permanent {
            reason: format!(
                "attachment {:?} has an invalid MIME type {:?}",
                attachment.file_name, attachment.mime_type
            ),
        })?;
    // Base64 always: lettre would send ASCII-only bytes as 7bit text, turning LF into CRLF.
    let body = Body::new_with_encoding(attachment.bytes.to_vec(), ContentTransferEncoding::Base64)
        .map_err(|_| SendError::Permanent {
            reason: format!("attachment {:?} could not be encoded", attachment.file_name),
        })?;
    Ok(Attachment::new(attachment.file_name.clone()).body(body, content_type))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gives_the_same_id() {
        let first = message_id_for("send-1", "shop@shop.test");
        assert_eq!(first, message_id_for("send-1", "shop@shop.test"));
        assert_ne!(first, message_id_for("send-2", "shop@shop.test"));
        assert_ne!(first, message_id_for("send-1", "other@shop.test"));
        assert!(first.ends_with("@shop.test"), "{first}");
    }

    #[test]
    fn subjects_get_one_re() {
        assert_eq!(reply_subject("Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("RE: re:Order 42"), "Re: Order 42");
        assert_eq!(reply_subject(""), "Re:");
        assert_eq!(reply_subject("Résumé"), "Re: Résumé");
    }

    #[test]
    fn references_keep_the_root_first() {
        let parent = Parent {
            message_id: "p@x".into(),
            references: (0..30).map(|i| format!("r{i}@x")).collect(),
            subject: String::new(),
            recipient: "a@b.c".parse().unwrap(),
        };
        let list = references(&parent);
        assert_eq!(list.len(), MAX_REFERENCES);
        assert_eq!(list[0], "r0@x");
        assert_eq!(list.last().unwrap(), "p@x");
        assert_eq!(list[list.len() - 2], "r29@x");
    }

    #[test]
    fn replies_to_reply_to_and_never_to_ourselves() {
        let parse = |raw: &'static str| {
            mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap()
        };
        let with_reply_to = parse(
            "From: a@customer.test\r\nReply-To: Help <help@customer.test>\r\n\
             Message-ID: <m@x>\r\nIn-Reply-To: <r@x>\r\nSubject: Hi\r\n\r\n.\r\n",
        );
        let parent = Parent::from_header(&with_reply_to, "shop@shop.test").unwrap();
        assert_eq!(parent.recipient.email.to_string(), "help@customer.test");
        assert_eq!(parent.references, ["r@x"]);
        let ours =
            parse("From: shop@shop.test\r\nTo: a@customer.test\r\nMessage-ID: <m@x>\r\n\r\n.\r\n");
        let parent = Parent::from_header(&ours, "shop@shop.test").unwrap();
        assert_eq!(parent.recipient.email.to_string(), "a@customer.test");
    }
}
