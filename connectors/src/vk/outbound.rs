//! Building `messages.send`: the stable `random_id`, the inline keyboard, replies, and the
//! attachments uploaded beforehand (photos through `photos.getMessagesUploadServer` →
//! upload → `photos.saveMessagesPhoto`, other files through `docs.getMessagesUploadServer` →
//! upload → `docs.save`).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api::{CallError, VkApi, network_error, permanent, read_json, transient};
use crate::{Button, OutboundAttachment, OutboundMessage, SendError};

/// VK's `random_id` for an idempotency key: the first 31 bits of its SHA-256, so the same key
/// always gives the same id (VK then refuses to send it twice) and the id is a positive int32.
pub fn random_id(idempotency_key: &str) -> i32 {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let bytes = [digest[0], digest[1], digest[2], digest[3]];
    (u32::from_be_bytes(bytes) & 0x7fff_ffff) as i32
}

/// The `peer_id` of a conversation (omnihub keeps VK's peer id as the conversation id).
pub(crate) fn peer_id(conversation: &str) -> Result<i64, SendError> {
    conversation
        .trim()
        .parse()
        .map_err(|_| permanent(format!("not a VK peer id: {conversation:?}")))
}

/// The `messages.send` parameters, attachments already uploaded.
pub(crate) fn send_params(
    message: &OutboundMessage,
    peer_id: i64,
    attachments: &[String],
) -> Result<Vec<(&'static str, String)>, SendError> {
    let mut params = vec![
        ("peer_id", peer_id.to_string()),
        ("random_id", random_id(&message.idempotency_key).to_string()),
    ];
    if !message.text.is_empty() {
        params.push(("message", message.text.clone()));
    }
    if !attachments.is_empty() {
        params.push(("attachment", attachments.join(",")));
    }
    if message.text.is_empty() && attachments.is_empty() {
        return Err(permanent("a VK message needs a text or an attachment"));
    }
    if !message.keyboard.is_empty() {
        params.push(("keyboard", keyboard(&message.keyboard).to_string()));
    }
    if let Some(reply_to) = &message.reply_to {
        if let Some(cmid) = reply_to.strip_prefix('c') {
            // Group chats know messages only by their number in the conversation: reply by
            // `forward` with `is_reply`.
            let cmid: i64 = cmid
                .parse()
                .map_err(|_| permanent(format!("not a VK message id: {reply_to:?}")))?;
            let forward = json!({
                "peer_id": peer_id,
                "conversation_message_ids": [cmid],
                "is_reply": true,
            });
            params.push(("forward", forward.to_string()));
        } else {
            let id: i64 = reply_to
                .parse()
                .map_err(|_| permanent(format!("not a VK message id: {reply_to:?}")))?;
            params.push(("reply_to", id.to_string()));
        }
    }
    Ok(params)
}

/// An inline keyboard: a button with a URL opens it, one with a payload is a callback button
/// (its payload sent as a JSON string, since VK wants JSON there), any other sends its label as
/// the customer's text.
pub(crate) fn keyboard(rows: &[Vec<Button>]) -> Value {
    let buttons: Vec<Vec<Value>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|button| {
                    let action = match (&button.url, &button.payload) {
                        (Some(url), _) => json!({
                            "type": "open_link", "link": url, "label": button.text,
                        }),
                        (None, Some(payload)) => json!({
                            "type": "callback",
                            "label": button.text,
                            "payload": Value::String(payload.clone()).to_string(),
                        }),
                        (None, None) => json!({"type": "text", "label": button.text}),
                    };
                    json!({ "action": action })
                })
                .collect()
        })
        .collect();
    // `one_time` is required by the schema even though inline keyboards ignore it.
    json!({"inline": true, "one_time": false, "buttons": buttons})
}

/// Uploads one file and returns its `attachment` reference (`photo<owner>_<id>` or
/// `doc<owner>_<id>`).
pub(crate) async fn upload(
    api: &VkApi,
    peer_id: i64,
    attachment: &OutboundAttachment,
) -> Result<String, SendError> {
    let is_photo = matches!(
        attachment.mime_type.as_str(),
        "image/jpeg" | "image/png" | "image/gif"
    );
    let (server_method, field) = if is_photo {
        ("photos.getMessagesUploadServer", "photo")
    } else {
        ("docs.getMessagesUploadServer", "file")
    };
    let mut server_params = vec![("peer_id", peer_id.to_string())];
    if !is_photo {
        server_params.push(("type", "doc".to_string()));
    }
    let server = api
        .call(server_method, &server_params)
        .await
        .map_err(CallError::into_send_error)?;
    let upload_url = server
        .get("upload_url")
        .and_then(Value::as_str)
        .ok_or_else(|| transient("VK gave no upload_url"))?;
    let part = reqwest::multipart::Part::bytes(attachment.bytes.to_vec())
        .file_name(attachment.file_name.clone())
        .mime_str(&attachment.mime_type)
        .map_err(|err| permanent(format!("bad MIME type {:?}: {err}", attachment.mime_type)))?;
    let form = reqwest::multipart::Form::new().part(field, part);
    let response = api
        .client
        .post(upload_url)
        .multipart(form)
        .send()
        .await
        .map_err(network_error)?;
    let uploaded = read_json(response).await?;
    if let Some(error) = uploaded.get("error").and_then(Value::as_str) {
        return Err(permanent(format!("VK refused the upload: {error}")));
    }
    if is_photo {
        let params = [
            ("photo", text_field(&uploaded, "photo")?),
            ("server", scalar_field(&uploaded, "server")?),
            ("hash", text_field(&uploaded, "hash")?),
        ];
        let saved = api
            .call("photos.saveMessagesPhoto", &params)
            .await
            .map_err(CallError::into_send_error)?;
        let photo = saved
            .as_array()
            .and_then(|photos| photos.first())
            .ok_or_else(|| transient("photos.saveMessagesPhoto returned no photo"))?;
        media_ref("photo", photo)
    } else {
        let params = [
            ("file", text_field(&uploaded, "file")?),
            ("title", attachment.file_name.clone()),
        ];
        let saved = api
            .call("docs.save", &params)
            .await
            .map_err(CallError::into_send_error)?;
        let kind = saved.get("type").and_then(Value::as_str).unwrap_or("doc");
        let doc = saved
            .get(kind)
            .ok_or_else(|| transient("docs.save returned no document"))?;
        media_ref("doc", doc)
    }
}

fn media_ref(prefix: &str, object: &Value) -> Result<String, SendError> {
    let owner = object.get("owner_id").and_then(Value::as_i64);
    let id = object.get("id").and_then(Value::as_i64);
    match (owner, id) {
        (Some(owner), Some(id)) => Ok(format!("{prefix}{owner}_{id}")),
        _ => Err(transient(format!(
            "VK saved a {prefix} without owner_id and id"
        ))),
    }
}

fn text_field(value: &Value, key: &str) -> Result<String, SendError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| transient(format!("the upload answer has no {key}")))
}

fn scalar_field(value: &Value, key: &str) -> Result<String, SendError> {
    match value.get(key) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(transient(format!("the upload answer has no {key}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use omnihub_core::MessageId;

    #[test]
    fn random_id_is_stable_positive_and_key_dependent() {
        let a = random_id("key-1");
        assert_eq!(a, random_id("key-1"));
        assert_ne!(a, random_id("key-2"));
        for key in ["", "a", "b", "длинный ключ", "key-3"] {
            assert!(random_id(key) >= 0);
        }
    }

    #[test]
    fn params_carry_keyboard_and_replies() {
        let mut message = OutboundMessage::text(MessageId::new(), "1111", "Hello", "k");
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
            Button {
                text: "Hi".into(),
                payload: None,
                url: None,
            },
        ]];
        message.reply_to = Some("77".into());
        let params = send_params(&message, 1111, &[]).unwrap();
        let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("reply_to").as_deref(), Some("77"));
        let keyboard: Value = serde_json::from_str(&get("keyboard").unwrap()).unwrap();
        assert_eq!(keyboard["buttons"][0][0]["action"]["payload"], "\"yes\"");
        assert_eq!(keyboard["buttons"][0][1]["action"]["type"], "open_link");
        assert_eq!(keyboard["buttons"][0][2]["action"]["type"], "text");

        message.reply_to = Some("c9".into());
        let params = send_params(&message, 2000000001, &[]).unwrap();
        let forward = params.iter().find(|(n, _)| *n == "forward").unwrap();
        let forward: Value = serde_json::from_str(&forward.1).unwrap();
        assert_eq!(forward["conversation_message_ids"][0], 9);

        let empty = OutboundMessage::text(MessageId::new(), "1", "", "k");
        assert!(send_params(&empty, 1, &[]).is_err());
        assert!(peer_id("chat:1").is_err());
    }
}
