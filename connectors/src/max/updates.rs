//! Mapping MAX `Update`s (the same objects arrive by webhook and by `GET /updates`) to
//! omnihub's inbound updates.
//!
//! MAX updates carry no id of their own, so the dedupe key is derived from what identifies the
//! event and what a redelivery repeats:
//!
//! | update | `event_id` |
//! |---|---|
//! | `message_created` | `message:<body.mid>` |
//! | `message_edited` | `edit:<body.mid>:<update timestamp>` (each edit is its own event) |
//! | `message_callback` | `callback:<callback.callback_id>` |
//! | `bot_started` | `start:<chat_id>:<update timestamp>` |
//!
//! `bot_started` (the customer pressed "Start", maybe through a deep link) becomes a message
//! whose text is `/start`, or `/start <payload>` for a deep link: it opens the conversation, so
//! the operator sees the customer arrive, and a bot can read the link's payload. Messages
//! written by bots (our own included) and every other update type are ignored.
//!
//! Conversations are `chat:<chat_id>` (dialogs have a chat id too) or, when MAX names only a
//! user, `user:<user_id>`; [`Recipient`] turns them back into `chat_id`/`user_id`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::provider::{
    AttachmentKind, ExternalUser, InboundAttachment, InboundMessage, InboundUpdate,
};

/// Where a message goes: the `chat_id` or `user_id` query parameter of `POST /messages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    Chat(i64),
    User(i64),
}

impl Recipient {
    pub fn parse(conversation: &str) -> Option<Recipient> {
        let (kind, id) = conversation.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "chat" => Some(Recipient::Chat(id)),
            "user" => Some(Recipient::User(id)),
            _ => None,
        }
    }

    pub fn conversation(self) -> String {
        match self {
            Recipient::Chat(id) => format!("chat:{id}"),
            Recipient::User(id) => format!("user:{id}"),
        }
    }
}

/// The update one `Update` object carries, if omnihub cares about it.
pub(crate) fn map_update(update: &Value) -> Result<Option<InboundUpdate>, String> {
    let kind = update
        .get("update_type")
        .and_then(Value::as_str)
        .ok_or("the update has no update_type")?;
    let timestamp = int(update, "timestamp").unwrap_or(0);
    let message = match kind {
        "message_created" => {
            let message = update
                .get("message")
                .ok_or("message_created without a message")?;
            map_message(message, None)?
        }
        "message_edited" => {
            let message = update
                .get("message")
                .ok_or("message_edited without a message")?;
            map_message(message, Some(timestamp))?
        }
        "message_callback" => Some(map_callback(update)?),
        "bot_started" => Some(map_start(update, timestamp)?),
        "bot_stopped" => {
            let chat_id = int(update, "chat_id").ok_or("bot_stopped without chat_id")?;
            return Ok(Some(InboundUpdate::Blocked {
                conversation: Recipient::Chat(chat_id).conversation(),
                reason: "bot_stopped".into(),
            }));
        }
        _ => None,
    };
    Ok(message.map(InboundUpdate::Message))
}

fn map_message(message: &Value, edited_at: Option<i64>) -> Result<Option<InboundMessage>, String> {
    let sender = message.get("sender").filter(|s| !s.is_null());
    if sender
        .and_then(|s| s.get("is_bot"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Ok(None);
    }
    let body = message.get("body").ok_or("a message without body")?;
    let mid = body
        .get("mid")
        .and_then(Value::as_str)
        .filter(|mid| !mid.is_empty())
        .ok_or("a message without body.mid")?
        .to_string();
    let sender = sender.map(user).unwrap_or_default();
    let conversation = conversation(message.get("recipient"), &sender)?;
    let attachments = body
        .get("attachments")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(map_attachment).collect())
        .unwrap_or_default();
    Ok(Some(InboundMessage {
        event_id: match edited_at {
            Some(at) => format!("edit:{mid}:{at}"),
            None => format!("message:{mid}"),
        },
        conversation,
        provider_message_id: Some(mid.clone()),
        sender,
        text: body
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        attachments,
        edit_of: edited_at.map(|_| mid),
        callback_id: None,
        sent_at: int(message, "timestamp").and_then(DateTime::<Utc>::from_timestamp_millis),
    }))
}

fn map_callback(update: &Value) -> Result<InboundMessage, String> {
    let callback = update
        .get("callback")
        .ok_or("message_callback without callback")?;
    let callback_id = callback
        .get("callback_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or("a callback without callback_id")?
        .to_string();
    let sender = callback.get("user").map(user).unwrap_or_default();
    let message = update.get("message").filter(|m| !m.is_null());
    let conversation = conversation(message.and_then(|m| m.get("recipient")), &sender)?;
    Ok(InboundMessage {
        event_id: format!("callback:{callback_id}"),
        conversation,
        provider_message_id: None,
        sender,
        text: callback
            .get("payload")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        attachments: Vec::new(),
        edit_of: None,
        callback_id: Some(callback_id),
        sent_at: int(callback, "timestamp").and_then(DateTime::<Utc>::from_timestamp_millis),
    })
}

fn map_start(update: &Value, timestamp: i64) -> Result<InboundMessage, String> {
    let chat_id = int(update, "chat_id").ok_or("bot_started without chat_id")?;
    let sender = update.get("user").map(user).unwrap_or_default();
    let text = match update.get("payload").and_then(Value::as_str) {
        Some(payload) if !payload.is_empty() => format!("/start {payload}"),
        _ => "/start".to_string(),
    };
    Ok(InboundMessage {
        event_id: format!("start:{chat_id}:{timestamp}"),
        conversation: Recipient::Chat(chat_id).conversation(),
        provider_message_id: None,
        sender,
        text,
        attachments: Vec::new(),
        edit_of: None,
        callback_id: None,
        sent_at: DateTime::<Utc>::from_timestamp_millis(timestamp),
    })
}

fn conversation(recipient: Option<&Value>, sender: &ExternalUser) -> Result<String, String> {
    if let Some(chat_id) = recipient.and_then(|r| int(r, "chat_id")) {
        return Ok(Recipient::Chat(chat_id).conversation());
    }
    // A recipient without a chat is a dialog with the one who wrote.
    let user_id: i64 = sender
        .id
        .parse()
        .map_err(|_| "a message with neither a chat nor a sender")?;
    Ok(Recipient::User(user_id).conversation())
}

fn user(user: &Value) -> ExternalUser {
    let id = int(user, "user_id")
        .map(|id| id.to_string())
        .unwrap_or_default();
    let first = user.get("first_name").and_then(Value::as_str).unwrap_or("");
    let last = user.get("last_name").and_then(Value::as_str).unwrap_or("");
    let username = user
        .get("username")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    let name = format!("{first} {last}").trim().to_string();
    ExternalUser {
        name: if name.is_empty() {
            username.clone().unwrap_or_else(|| id.clone())
        } else {
            name
        },
        id,
        username,
        ..ExternalUser::default()
    }
}

fn map_attachment(attachment: &Value) -> Option<InboundAttachment> {
    let kind = attachment.get("type")?.as_str()?;
    let payload = attachment.get("payload").unwrap_or(&Value::Null);
    let url = payload
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_string);
    let file = |kind, mime: Option<&str>| InboundAttachment {
        kind,
        file_ref: url.clone(),
        file_name: None,
        mime_type: mime.map(str::to_string),
        size: None,
    };
    Some(match kind {
        "image" => file(AttachmentKind::Image, Some("image/jpeg")),
        "video" => file(AttachmentKind::Video, None),
        "audio" => file(AttachmentKind::Audio, None),
        "sticker" => file(AttachmentKind::Sticker, None),
        "file" => InboundAttachment {
            file_name: attachment
                .get("filename")
                .and_then(Value::as_str)
                .map(str::to_string),
            size: attachment.get("size").and_then(Value::as_u64),
            ..file(AttachmentKind::Document, None)
        },
        "location" => InboundAttachment {
            kind: AttachmentKind::Location {
                latitude: attachment.get("latitude")?.as_f64()?,
                longitude: attachment.get("longitude")?.as_f64()?,
            },
            file_ref: None,
            file_name: None,
            mime_type: None,
            size: None,
        },
        "contact" => {
            let vcf = payload
                .get("vcf_info")
                .and_then(Value::as_str)
                .unwrap_or("");
            let max_user = payload.get("max_info").filter(|u| !u.is_null()).map(user);
            let name = vcard_field(vcf, "FN")
                .or_else(|| max_user.as_ref().map(|u| u.name.clone()))
                .unwrap_or_default();
            InboundAttachment {
                kind: AttachmentKind::Contact {
                    name,
                    phone: vcard_field(vcf, "TEL").unwrap_or_default(),
                },
                file_ref: None,
                file_name: None,
                mime_type: None,
                size: None,
            }
        }
        _ => return None,
    })
}

/// A vCard property's value (`TEL;TYPE=cell:+7…` → `+7…`).
fn vcard_field(vcf: &str, name: &str) -> Option<String> {
    vcf.lines().find_map(|line| {
        let (key, value) = line.trim_end_matches('\r').split_once(':')?;
        let key = key.split(';').next()?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn int(value: &Value, key: &str) -> Option<i64> {
    value.get(key)?.as_i64()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn message(update: Option<InboundUpdate>) -> InboundMessage {
        match update {
            Some(InboundUpdate::Message(message)) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn created(body: Value) -> Value {
        json!({"update_type": "message_created", "timestamp": 1767225600000i64, "message": {
            "sender": {"user_id": 7, "first_name": "Иван", "last_name": "Петров", "is_bot": false},
            "recipient": {"chat_id": 42, "chat_type": "dialog"},
            "timestamp": 1767225600000i64, "body": body}})
    }

    #[test]
    fn a_created_message_with_attachments() {
        let update = created(
            json!({"mid": "mid.1", "seq": 1, "text": "Привет", "attachments": [
                {"type": "image", "payload": {"photo_id": 1, "token": "t", "url": "https://x/i.jpg"}},
                {"type": "file", "payload": {"url": "https://x/f", "token": "t"}, "filename": "a.pdf", "size": 3},
                {"type": "location", "latitude": 55.7, "longitude": 37.6},
                {"type": "contact", "payload": {"vcf_info": "BEGIN:VCARD\r\nFN:Анна\r\nTEL;TYPE=cell:+79990000000\r\nEND:VCARD"}}
            ]}),
        );
        let got = message(map_update(&update).unwrap());
        assert_eq!(got.event_id, "message:mid.1");
        assert_eq!(got.conversation, "chat:42");
        assert_eq!(got.sender.name, "Иван Петров");
        assert_eq!(got.sent_at.unwrap().timestamp(), 1767225600);
        assert_eq!(
            got.attachments[0].file_ref.as_deref(),
            Some("https://x/i.jpg")
        );
        assert_eq!(got.attachments[1].file_name.as_deref(), Some("a.pdf"));
        assert_eq!(
            got.attachments[3].kind,
            AttachmentKind::Contact {
                name: "Анна".into(),
                phone: "+79990000000".into()
            }
        );
    }

    #[test]
    fn edits_callbacks_starts_and_bots() {
        let mut edit = created(json!({"mid": "mid.1", "seq": 1, "text": "fixed"}));
        edit["update_type"] = json!("message_edited");
        edit["timestamp"] = json!(1767225700000i64);
        let got = message(map_update(&edit).unwrap());
        assert_eq!(got.event_id, "edit:mid.1:1767225700000");
        assert_eq!(got.edit_of.as_deref(), Some("mid.1"));

        let press = json!({"update_type": "message_callback", "timestamp": 1, "callback": {
            "timestamp": 1, "callback_id": "cb.9", "payload": "yes",
            "user": {"user_id": 7, "first_name": "Ivan", "is_bot": false}}, "message": null});
        let got = message(map_update(&press).unwrap());
        assert_eq!(
            (got.callback_id.as_deref(), got.text.as_str()),
            (Some("cb.9"), "yes")
        );
        assert_eq!(got.conversation, "user:7");

        let start = json!({"update_type": "bot_started", "timestamp": 5, "chat_id": 42,
            "user": {"user_id": 7, "first_name": "Ivan", "is_bot": false}, "payload": "promo"});
        let got = message(map_update(&start).unwrap());
        assert_eq!(
            (got.text.as_str(), got.event_id.as_str()),
            ("/start promo", "start:42:5")
        );

        let mut from_bot = created(json!({"mid": "mid.2", "seq": 2, "text": "echo"}));
        from_bot["message"]["sender"]["is_bot"] = json!(true);
        assert_eq!(map_update(&from_bot).unwrap(), None);
        let other = json!({"update_type": "dialog_muted", "timestamp": 1});
        assert_eq!(map_update(&other).unwrap(), None);
    }

    #[test]
    fn recipients_round_trip() {
        for conversation in ["chat:-100", "user:7"] {
            assert_eq!(
                Recipient::parse(conversation).unwrap().conversation(),
                conversation
            );
        }
        assert_eq!(Recipient::parse("42"), None);
        assert_eq!(Recipient::parse("group:1"), None);
    }
}
