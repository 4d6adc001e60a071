//! What one [`OutboundMessage`] becomes on Telegram: the plan of Bot API calls (text split at
//! Telegram's 4096-character limit, files as photos or documents, the text as the first file's
//! caption when it fits in 1024 characters) and the pieces every call shares (chat id, inline
//! keyboard, reply parameters).

use frankenstein::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, ReplyMarkup, ReplyParameters,
};

use crate::{Button, OutboundAttachment, OutboundMessage, SendError};

/// Telegram's limit on a message's text, in characters.
pub(crate) const MAX_TEXT: usize = 4096;
/// Telegram's limit on a caption, in characters.
pub(crate) const MAX_CAPTION: usize = 1024;
/// `callback_data` is 1–64 bytes.
pub(crate) const MAX_CALLBACK_DATA: usize = 64;
/// Photos may be at most 10 MB; larger images go as documents.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
/// The Bot API accepts uploads of at most 50 MB.
pub(crate) const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// One Bot API call of a send.
#[derive(Debug)]
pub(crate) enum Part<'a> {
    Text(String),
    File {
        attachment: &'a OutboundAttachment,
        as_photo: bool,
        caption: Option<String>,
    },
}

/// One call with what it carries besides its content.
#[derive(Debug)]
pub(crate) struct PlannedPart<'a> {
    pub part: Part<'a>,
    /// Quote the message answered: on the first part only.
    pub reply_to: Option<i32>,
    /// The buttons: on the part that carries the (end of the) text, else on the last part.
    pub keyboard: Option<InlineKeyboardMarkup>,
}

/// The calls that send `message`, in order. Fails before anything is sent when Telegram would
/// refuse the message anyway (empty, a file too large, a button it cannot carry).
pub(crate) fn plan(message: &OutboundMessage) -> Result<Vec<PlannedPart<'_>>, SendError> {
    let keyboard = keyboard(&message.keyboard)?;
    for attachment in &message.attachments {
        if attachment.bytes.len() > MAX_UPLOAD_BYTES {
            return Err(SendError::Permanent {
                reason: format!(
                    "{} is larger than the 50 MB Telegram accepts from bots",
                    attachment.file_name
                ),
            });
        }
    }
    let text = message.text.trim_end();
    let caption_fits = !text.is_empty() && text.chars().count() <= MAX_CAPTION;
    let mut parts = Vec::new();
    let mut text_part = None;
    let text_is_caption = caption_fits && !message.attachments.is_empty();
    if !(text.is_empty() || text_is_caption) {
        for chunk in split_text(text, MAX_TEXT) {
            parts.push(Part::Text(chunk));
        }
        text_part = Some(parts.len() - 1);
    }
    for (index, attachment) in message.attachments.iter().enumerate() {
        let caption = (index == 0 && caption_fits).then(|| text.to_string());
        if caption.is_some() {
            text_part = Some(parts.len());
        }
        parts.push(Part::File {
            attachment,
            as_photo: is_photo(attachment),
            caption,
        });
    }
    if parts.is_empty() {
        return Err(SendError::Permanent {
            reason: "the message has neither text nor files".into(),
        });
    }
    let keyboard_part = text_part.unwrap_or(parts.len() - 1);
    // `<chat>:<message id>` as omnihub knows Telegram's ids, or a bare message id.
    let reply_to = message
        .reply_to
        .as_deref()
        .map(|id| id.rsplit(':').next().unwrap_or(id))
        .and_then(|id| id.parse::<i32>().ok());
    let mut keyboard = keyboard;
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| PlannedPart {
            part,
            reply_to: reply_to.filter(|_| index == 0),
            keyboard: if index == keyboard_part {
                keyboard.take()
            } else {
                None
            },
        })
        .collect())
}

/// The chat a conversation id names: a numeric chat id, or a public `@username`.
pub(crate) fn chat_id(conversation: &str) -> Result<ChatId, SendError> {
    if let Ok(id) = conversation.parse::<i64>() {
        return Ok(ChatId::Integer(id));
    }
    if conversation.len() > 1 && conversation.starts_with('@') {
        return Ok(ChatId::String(conversation.to_string()));
    }
    Err(SendError::Permanent {
        reason: format!("{conversation:?} is not a Telegram chat id"),
    })
}

/// Quote the answered message, and send anyway if it was deleted meanwhile.
pub(crate) fn reply_parameters(message_id: i32) -> ReplyParameters {
    ReplyParameters::builder()
        .message_id(message_id)
        .allow_sending_without_reply(true)
        .build()
}

pub(crate) fn reply_markup(keyboard: InlineKeyboardMarkup) -> ReplyMarkup {
    ReplyMarkup::InlineKeyboardMarkup(keyboard)
}

/// An inline keyboard: a button with a URL opens it, one with a payload sends it back as
/// `callback_data`, one with neither sends its own label back. Telegram carries at most 64
/// bytes of callback data, so a longer payload is refused here rather than truncated (a cut
/// payload would come back meaning something else).
fn keyboard(rows: &[Vec<Button>]) -> Result<Option<InlineKeyboardMarkup>, SendError> {
    let rows: Vec<Vec<InlineKeyboardButton>> = rows
        .iter()
        .filter(|row| !row.is_empty())
        .map(|row| row.iter().map(button).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        InlineKeyboardMarkup::builder()
            .inline_keyboard(rows)
            .build(),
    ))
}

fn button(button: &Button) -> Result<InlineKeyboardButton, SendError> {
    let builder = InlineKeyboardButton::builder().text(button.text.clone());
    if let Some(url) = &button.url {
        return Ok(builder.url(url.clone()).build());
    }
    let data = button.payload.as_deref().unwrap_or(&button.text);
    if data.is_empty() || data.len() > MAX_CALLBACK_DATA {
        return Err(SendError::Permanent {
            reason: format!(
                "the payload of button {:?} must be 1 to {MAX_CALLBACK_DATA} bytes for Telegram",
                button.text
            ),
        });
    }
    Ok(builder.callback_data(data.to_string()).build())
}

/// Telegram shows JPEG, PNG and WebP as photos (recompressed); anything else, or anything
/// larger than a photo may be, goes as a document and arrives byte for byte.
fn is_photo(attachment: &OutboundAttachment) -> bool {
    matches!(
        attachment.mime_type.to_ascii_lowercase().as_str(),
        "image/jpeg" | "image/jpg" | "image/png" | "image/webp"
    ) && attachment.bytes.len() <= MAX_PHOTO_BYTES
}

/// Splits `text` into pieces of at most `limit` characters, at the last line break (else
/// space) of each piece when there is one, so words stay whole.
fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > limit {
        let hard_end = rest
            .char_indices()
            .nth(limit)
            .map_or(rest.len(), |(index, _)| index);
        let window = &rest[..hard_end];
        let end = window
            .rfind('\n')
            .or_else(|| window.rfind(' '))
            .filter(|&index| index > 0)
            .map_or(hard_end, |index| index + 1);
        pieces.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use omnihub_core::MessageId;
    use std::sync::Arc;

    fn message(text: &str) -> OutboundMessage {
        OutboundMessage::text(MessageId::new(), "5001", text, "key")
    }

    fn attachment(name: &str, mime: &str, size: usize) -> OutboundAttachment {
        OutboundAttachment {
            file_name: name.into(),
            mime_type: mime.into(),
            bytes: Arc::from(vec![0u8; size]),
            public_url: None,
        }
    }

    #[test]
    fn long_text_is_split_at_line_breaks_within_the_limit() {
        let text = format!("{}\n{}", "а".repeat(3000), "б".repeat(3000));
        let pieces = split_text(&text, MAX_TEXT);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_TEXT));
        let unbroken = "x".repeat(9000);
        let pieces = split_text(&unbroken, MAX_TEXT);
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [4096, 4096, 808]
        );
    }

    #[test]
    fn a_short_text_becomes_the_first_files_caption_with_the_keyboard() {
        let mut message = message("Ваш чек");
        message.attachments = vec![
            attachment("receipt.png", "image/png", 10),
            attachment("act.pdf", "application/pdf", 10),
        ];
        message.keyboard = vec![vec![Button {
            text: "OK".into(),
            payload: Some("ok".into()),
            url: None,
        }]];
        message.reply_to = Some("5001:17".into());
        let parts = plan(&message).unwrap();
        assert_eq!(parts.len(), 2);
        assert!(matches!(
            &parts[0].part,
            Part::File { as_photo: true, caption: Some(c), .. } if c == "Ваш чек"
        ));
        assert!(parts[0].keyboard.is_some() && parts[0].reply_to == Some(17));
        assert!(matches!(
            &parts[1].part,
            Part::File {
                as_photo: false,
                caption: None,
                ..
            }
        ));
        assert!(parts[1].keyboard.is_none() && parts[1].reply_to.is_none());
    }

    #[test]
    fn a_text_too_long_for_a_caption_goes_first() {
        let mut message = message(&"x".repeat(2000));
        message.attachments = vec![attachment("a.gif", "image/gif", 10)];
        let parts = plan(&message).unwrap();
        assert!(matches!(&parts[0].part, Part::Text(t) if t.len() == 2000));
        assert!(matches!(
            &parts[1].part,
            Part::File {
                as_photo: false,
                caption: None,
                ..
            }
        ));
    }

    #[test]
    fn refused_before_sending() {
        assert!(plan(&message("  ")).is_err());
        let mut long_payload = message("x");
        long_payload.keyboard = vec![vec![Button {
            text: "b".into(),
            payload: Some("p".repeat(65)),
            url: None,
        }]];
        assert!(plan(&long_payload).is_err());
        let mut too_big = message("x");
        too_big.attachments = vec![attachment(
            "big.bin",
            "application/zip",
            MAX_UPLOAD_BYTES + 1,
        )];
        assert!(plan(&too_big).is_err());
        assert!(chat_id("not a chat").is_err());
        assert_eq!(chat_id("-100123").unwrap(), ChatId::Integer(-100123));
        assert_eq!(chat_id("@shop").unwrap(), ChatId::String("@shop".into()));
    }

    #[test]
    fn url_buttons_and_label_payloads() {
        let markup = keyboard(&[vec![
            Button {
                text: "Сайт".into(),
                payload: None,
                url: Some("https://example.com".into()),
            },
            Button {
                text: "Да".into(),
                payload: None,
                url: None,
            },
        ]])
        .unwrap()
        .unwrap();
        let json = serde_json::to_value(&markup).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"inline_keyboard": [[
                {"text": "Сайт", "url": "https://example.com"},
                {"text": "Да", "callback_data": "Да"}
            ]]})
        );
    }
}
