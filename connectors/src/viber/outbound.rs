//! The bodies of `POST /pa/send_message`, built from an [`OutboundMessage`] without any IO.
//!
//! - Viber takes media by URL, never by upload: each attachment goes with its signed, expiring
//!   public link ([`OutboundAttachment::public_url`], served by omnihub's HTTP layer at
//!   `/media/…`, see [`crate::media_link`]), which Viber fetches. An attachment without one is
//!   refused permanently ("media needs a public URL").
//! - JPEG, PNG and GIF images go as `picture` (the text as its description when it fits in
//!   120 characters and it is the only attachment), MP4 video as `video`, everything else as
//!   `file` with its name and size. The text otherwise goes as a `text` message.
//! - Buttons become a Viber keyboard on the last message: `reply` buttons send their payload
//!   (or label) back as the customer's text, URL buttons `open-url`; up to six buttons a row,
//!   sharing the row's six columns.
//! - Viber has no quoting and no templates: `reply_to` is not sent, and a template message is
//!   sent as its text.

use serde_json::{Value, json};

use crate::{Button, OutboundAttachment, OutboundMessage, SendError};

/// Viber's limit on a sender name.
pub const MAX_SENDER_NAME: usize = 28;
const MAX_PICTURE_DESCRIPTION: usize = 120;
const COLUMNS: usize = 6;
/// Viber's limit on a keyboard.
const MAX_BUTTONS: usize = 24;

/// Who the messages come from, and how media reach Viber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderSettings {
    pub name: String,
    pub avatar: Option<String>,
    pub min_api_version: u32,
}

/// The bodies of one message, in sending order (never empty).
pub fn bodies(message: &OutboundMessage, sender: &SenderSettings) -> Result<Vec<Value>, SendError> {
    let mut bodies = Vec::new();
    let mut text_sent = message.text.is_empty();
    let single = message.attachments.len() == 1;
    for attachment in &message.attachments {
        let url = media_url(attachment)?;
        let mut body = envelope(message, sender);
        match attachment.mime_type.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/png" | "image/gif" => {
                body["type"] = json!("picture");
                body["media"] = json!(url);
                let fits = message.text.chars().count() <= MAX_PICTURE_DESCRIPTION;
                body["text"] = if !text_sent && single && fits {
                    text_sent = true;
                    json!(message.text)
                } else {
                    json!("")
                };
            }
            "video/mp4" => {
                body["type"] = json!("video");
                body["media"] = json!(url);
                body["size"] = json!(attachment.bytes.len());
            }
            _ => {
                body["type"] = json!("file");
                body["media"] = json!(url);
                body["size"] = json!(attachment.bytes.len());
                body["file_name"] = json!(file_name(attachment));
            }
        }
        bodies.push(body);
    }
    if !text_sent {
        let mut body = envelope(message, sender);
        body["type"] = json!("text");
        body["text"] = json!(message.text);
        // The text goes before the media it did not fit under.
        bodies.insert(0, body);
    }
    if bodies.is_empty() {
        return Err(SendError::Permanent {
            reason: "nothing to send: no text and no attachment".into(),
        });
    }
    if let Some(keyboard) = keyboard(&message.keyboard)?
        && let Some(last) = bodies.last_mut()
    {
        last["keyboard"] = keyboard;
    }
    Ok(bodies)
}

fn envelope(message: &OutboundMessage, sender: &SenderSettings) -> Value {
    let mut from = json!({"name": sender.name});
    if let Some(avatar) = &sender.avatar {
        from["avatar"] = json!(avatar);
    }
    json!({
        "receiver": message.conversation,
        "min_api_version": sender.min_api_version,
        "sender": from,
        // Comes back in the customer's next message; ties it to what we sent.
        "tracking_data": message.message_id.to_string(),
    })
}

fn media_url(attachment: &OutboundAttachment) -> Result<String, SendError> {
    attachment
        .public_url
        .clone()
        .ok_or_else(|| SendError::Permanent {
            reason: "media needs a public URL: Viber fetches attachments by URL, and this \
                     server mints no media links"
                .into(),
        })
}

fn file_name(attachment: &OutboundAttachment) -> String {
    if attachment.file_name.is_empty() {
        "file".to_string()
    } else {
        attachment.file_name.clone()
    }
}

fn keyboard(rows: &[Vec<Button>]) -> Result<Option<Value>, SendError> {
    let count: usize = rows.iter().map(Vec::len).sum();
    if count == 0 {
        return Ok(None);
    }
    if count > MAX_BUTTONS {
        return Err(SendError::Permanent {
            reason: format!(
                "a Viber keyboard holds at most {MAX_BUTTONS} buttons, this one has {count}"
            ),
        });
    }
    let mut buttons = Vec::new();
    for row in rows.iter().filter(|row| !row.is_empty()) {
        for chunk in row.chunks(COLUMNS) {
            let columns = COLUMNS / chunk.len();
            for button in chunk {
                let (action, body) = match &button.url {
                    Some(url) => ("open-url", url.clone()),
                    None => (
                        "reply",
                        button
                            .payload
                            .clone()
                            .unwrap_or_else(|| button.text.clone()),
                    ),
                };
                buttons.push(json!({"Columns": columns, "Rows": 1, "ActionType": action,
                    "ActionBody": body, "Text": button.text}));
            }
        }
    }
    Ok(Some(
        json!({"Type": "keyboard", "DefaultHeight": false, "Buttons": buttons}),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use omnihub_core::MessageId;

    use super::*;

    fn sender() -> SenderSettings {
        SenderSettings {
            name: "Shop Bot".into(),
            avatar: None,
            min_api_version: 1,
        }
    }

    fn attachment(name: &str, mime: &str) -> OutboundAttachment {
        OutboundAttachment {
            file_name: name.into(),
            mime_type: mime.into(),
            bytes: Arc::from(&b"12345"[..]),
            public_url: Some(format!(
                "https://omnihub.example/media/c/a/{name}?exp=1&sig=s"
            )),
        }
    }

    #[test]
    fn text_with_a_keyboard() {
        let id = MessageId::new();
        let mut m = OutboundMessage::text(id, "01234567890A=", "Hello", "k");
        m.keyboard = vec![
            vec![
                Button {
                    text: "Yes".into(),
                    payload: Some("y".into()),
                    url: None,
                },
                Button {
                    text: "No".into(),
                    payload: None,
                    url: None,
                },
            ],
            vec![Button {
                text: "Site".into(),
                payload: None,
                url: Some("https://shop.example".into()),
            }],
        ];
        let bodies = bodies(&m, &sender()).unwrap();
        assert_eq!(
            bodies,
            [json!({"receiver": "01234567890A=", "min_api_version": 1,
                "sender": {"name": "Shop Bot"}, "tracking_data": id.to_string(),
                "type": "text", "text": "Hello",
                "keyboard": {"Type": "keyboard", "DefaultHeight": false, "Buttons": [
                    {"Columns": 3, "Rows": 1, "ActionType": "reply", "ActionBody": "y", "Text": "Yes"},
                    {"Columns": 3, "Rows": 1, "ActionType": "reply", "ActionBody": "No", "Text": "No"},
                    {"Columns": 6, "Rows": 1, "ActionType": "open-url",
                     "ActionBody": "https://shop.example", "Text": "Site"}]}})]
        );
    }

    #[test]
    fn media_needs_a_public_url() {
        let mut m = OutboundMessage::text(MessageId::new(), "u", "", "k");
        m.attachments = vec![attachment("a.png", "image/png")];
        m.attachments[0].public_url = None;
        let SendError::Permanent { reason } = bodies(&m, &sender()).unwrap_err() else {
            panic!("expected permanent");
        };
        assert!(reason.starts_with("media needs a public URL"), "{reason}");
    }

    #[test]
    fn pictures_take_a_short_caption_files_their_name_and_size() {
        let id = MessageId::new();
        let mut m = OutboundMessage::text(id, "u", "Look", "k");
        m.attachments = vec![attachment("photo 1.png", "image/png")];
        let one = bodies(&m, &sender()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0]["type"], "picture");
        assert_eq!(one[0]["text"], "Look");
        assert_eq!(
            one[0]["media"],
            "https://omnihub.example/media/c/a/photo 1.png?exp=1&sig=s"
        );

        m.attachments.push(attachment("doc.pdf", "application/pdf"));
        let two = bodies(&m, &sender()).unwrap();
        assert_eq!(two.len(), 3);
        assert_eq!(two[0]["type"], "text");
        assert_eq!(two[1]["text"], "");
        assert_eq!(two[2]["type"], "file");
        assert_eq!(two[2]["size"], 5);
        assert_eq!(two[2]["file_name"], "doc.pdf");
    }
}
