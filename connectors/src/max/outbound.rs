//! Building `NewMessageBody`: text, uploaded attachments, the inline keyboard and the reply
//! link.
//!
//! Attachments are uploaded first: `POST /uploads?type=image|video|audio|file` gives an upload
//! URL (and, for video and audio, the token), the file goes there as multipart field `data`,
//! and the upload's answer (`{"photos": …}` for images, `{"token": …}` otherwise) becomes the
//! attachment's payload.

use reqwest::Method;
use serde_json::{Value, json};

use super::api::{MaxApi, network_error, permanent, read_answer, transient};
use crate::{Button, OutboundAttachment, OutboundMessage, SendError};

/// `NewMessageBody.text` is at most this many characters. A longer text is refused rather than
/// split: MAX has no idempotency key, so a retried half-sent split would repeat its first part.
pub const MAX_TEXT: usize = 4000;

/// A button's visible text is 1–128 characters.
const MAX_BUTTON_TEXT: usize = 128;

/// The JSON body of `POST /messages`, attachments already uploaded.
pub(crate) fn message_body(
    message: &OutboundMessage,
    uploaded: Vec<Value>,
) -> Result<Value, SendError> {
    check(message)?;
    let mut attachments = uploaded;
    if !message.keyboard.is_empty() {
        attachments.push(json!({
            "type": "inline_keyboard",
            "payload": {"buttons": keyboard(&message.keyboard)},
        }));
    }
    let mut body = json!({});
    if !message.text.is_empty() {
        body["text"] = json!(message.text);
    }
    if !attachments.is_empty() {
        body["attachments"] = Value::Array(attachments);
    }
    if let Some(mid) = &message.reply_to {
        body["link"] = json!({"type": "reply", "mid": mid});
    }
    Ok(body)
}

/// Refuses what MAX would refuse, before anything is uploaded.
pub(crate) fn check(message: &OutboundMessage) -> Result<(), SendError> {
    if message.text.chars().count() > MAX_TEXT {
        return Err(permanent(format!(
            "MAX messages are at most {MAX_TEXT} characters"
        )));
    }
    if message.text.is_empty() && message.attachments.is_empty() && message.keyboard.is_empty() {
        return Err(permanent("a MAX message needs a text or an attachment"));
    }
    Ok(())
}

/// A button with a URL is a `link` button, one with a payload a `callback` button, any other a
/// `message` button (pressing it sends its text as the customer's message).
fn keyboard(rows: &[Vec<Button>]) -> Value {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|button| {
                    let text: String = button.text.chars().take(MAX_BUTTON_TEXT).collect();
                    match (&button.url, &button.payload) {
                        (Some(url), _) => json!({"type": "link", "text": text, "url": url}),
                        (None, Some(payload)) => {
                            json!({"type": "callback", "text": text, "payload": payload})
                        }
                        (None, None) => json!({"type": "message", "text": text}),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .into()
}

/// MAX's upload type for a file.
fn upload_type(mime_type: &str) -> &'static str {
    match mime_type.split('/').next() {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "file",
    }
}

/// Uploads one file and returns the `AttachmentRequest` that sends it.
pub(crate) async fn upload(
    api: &MaxApi,
    attachment: &OutboundAttachment,
) -> Result<Value, SendError> {
    let kind = upload_type(&attachment.mime_type);
    let endpoint = api
        .call(
            Method::POST,
            "uploads",
            &[("type", kind.to_string())],
            None,
            None,
        )
        .await
        .map_err(super::api::CallError::into_send_error)?;
    let url = endpoint
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| transient("MAX gave no upload url"))?;
    let part = reqwest::multipart::Part::bytes(attachment.bytes.to_vec())
        .file_name(attachment.file_name.clone())
        .mime_str(&attachment.mime_type)
        .map_err(|err| permanent(format!("bad MIME type {:?}: {err}", attachment.mime_type)))?;
    let response = api
        .client
        .post(url)
        .multipart(reqwest::multipart::Form::new().part("data", part))
        .send()
        .await
        .map_err(network_error)?;
    let uploaded = read_answer(response)
        .await
        .map_err(super::api::CallError::into_send_error)?;
    let payload = if kind == "image" && uploaded.get("photos").is_some() {
        json!({"photos": uploaded["photos"]})
    } else {
        // Video and audio tokens come with the upload URL; files get theirs from the upload.
        let token = uploaded
            .get("token")
            .or_else(|| endpoint.get("token"))
            .and_then(Value::as_str)
            .ok_or_else(|| transient("the upload answered no token"))?;
        json!({"token": token})
    };
    Ok(json!({"type": kind, "payload": payload}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use omnihub_core::MessageId;

    #[test]
    fn body_with_keyboard_and_reply() {
        let mut message = OutboundMessage::text(MessageId::new(), "chat:1", "Hello", "k");
        message.keyboard = vec![vec![
            Button {
                text: "Yes".into(),
                payload: Some("yes".into()),
                url: None,
            },
            Button {
                text: "Site".into(),
                payload: None,
                url: Some("https://example.com".into()),
            },
        ]];
        message.reply_to = Some("mid.5".into());
        let body = message_body(&message, Vec::new()).unwrap();
        assert_eq!(body["link"], json!({"type": "reply", "mid": "mid.5"}));
        let buttons = &body["attachments"][0]["payload"]["buttons"][0];
        assert_eq!(buttons[0]["type"], "callback");
        assert_eq!(buttons[1]["type"], "link");
    }

    #[test]
    fn long_and_empty_texts_are_refused() {
        let long = OutboundMessage::text(MessageId::new(), "chat:1", "я".repeat(4001), "k");
        assert!(!message_body(&long, Vec::new()).unwrap_err().is_transient());
        let fits = OutboundMessage::text(MessageId::new(), "chat:1", "я".repeat(4000), "k");
        assert!(message_body(&fits, Vec::new()).is_ok());
        let empty = OutboundMessage::text(MessageId::new(), "chat:1", "", "k");
        assert!(message_body(&empty, Vec::new()).is_err());
        assert_eq!(upload_type("image/png"), "image");
        assert_eq!(upload_type("application/pdf"), "file");
    }
}
