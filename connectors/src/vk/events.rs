//! Mapping VK events (the same objects arrive by Callback API and by Bots Long Poll) to
//! omnihub's inbound updates.
//!
//! - `message_new`: a customer's message; a text button's `payload` replaces the text (the
//!   button's label is only what the customer saw).
//! - `message_edit`: the customer edited a message; its own event.
//! - `message_event`: a callback button was pressed; `callback_id` is
//!   `<event_id>:<user_id>:<peer_id>` because `messages.sendMessageEventAnswer` needs all three.
//! - `message_deny`: the customer forbade the community to write to them (blocked it).
//! - `message_reply` (our own outgoing messages), messages with `out = 1`, and every other
//!   type are ignored.
//!
//! The dedupe key is the event's own `event_id`, which VK sends with every event and repeats on
//! redelivery.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::provider::{
    AttachmentKind, ExternalUser, InboundAttachment, InboundMessage, InboundUpdate,
};

/// The update one event carries, if omnihub cares about it.
pub(crate) fn map_event(event: &Value) -> Result<Option<InboundUpdate>, String> {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the event has no type")?;
    let object = event.get("object").unwrap_or(&Value::Null);
    let event_id = event.get("event_id").and_then(Value::as_str);
    let message = match kind {
        "message_new" => {
            let message = object
                .get("message")
                .ok_or("message_new without a message")?;
            map_message(message, event_id, false)?
        }
        "message_edit" => map_message(object, event_id, true)?,
        "message_event" => Some(map_button_press(object, event_id)?),
        "message_deny" => {
            let user = int(object, "user_id").ok_or("message_deny without user_id")?;
            return Ok(Some(InboundUpdate::Blocked {
                conversation: user.to_string(),
                reason: "message_deny".into(),
            }));
        }
        _ => None,
    };
    Ok(message.map(InboundUpdate::Message))
}

fn map_message(
    message: &Value,
    event_id: Option<&str>,
    edited: bool,
) -> Result<Option<InboundMessage>, String> {
    if message.get("out").and_then(Value::as_i64) == Some(1) {
        return Ok(None);
    }
    let peer_id = int(message, "peer_id").ok_or("a message without peer_id")?;
    let from_id = int(message, "from_id").unwrap_or(peer_id);
    let provider_id = message_ref(message).ok_or("a message without id")?;
    let sent_at = int(message, "date").and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0));
    let event_id = match event_id {
        Some(id) if !id.is_empty() => id.to_string(),
        // VK sends an event_id with every event; should one ever lack it, the message's own
        // identity (and the edit's time) is still stable across redeliveries.
        _ if edited => format!(
            "edit:{peer_id}:{provider_id}:{}",
            int(message, "update_time")
                .or(int(message, "date"))
                .unwrap_or(0)
        ),
        _ => format!("message:{peer_id}:{provider_id}"),
    };
    let text = match message.get("payload").and_then(Value::as_str) {
        Some(payload) if !payload.is_empty() => decode_payload(payload),
        _ => str_field(message, "text").to_string(),
    };
    let mut attachments: Vec<InboundAttachment> = message
        .get("attachments")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(map_attachment).collect())
        .unwrap_or_default();
    if let Some(coordinates) = message.get("geo").and_then(|geo| geo.get("coordinates")) {
        let latitude = coordinates.get("latitude").and_then(Value::as_f64);
        let longitude = coordinates.get("longitude").and_then(Value::as_f64);
        if let (Some(latitude), Some(longitude)) = (latitude, longitude) {
            attachments.push(structured(AttachmentKind::Location {
                latitude,
                longitude,
            }));
        }
    }
    Ok(Some(InboundMessage {
        event_id,
        conversation: peer_id.to_string(),
        provider_message_id: Some(provider_id.clone()),
        sender: user(from_id),
        text,
        attachments,
        edit_of: edited.then_some(provider_id),
        callback_id: None,
        sent_at,
    }))
}

fn map_button_press(object: &Value, event_id: Option<&str>) -> Result<InboundMessage, String> {
    let user_id = int(object, "user_id").ok_or("message_event without user_id")?;
    let peer_id = int(object, "peer_id").ok_or("message_event without peer_id")?;
    let press_id = object
        .get("event_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or("message_event without event_id")?;
    // The schema types the payload as a string; VK's clients send the button's JSON object.
    let text = match object.get("payload") {
        Some(Value::String(payload)) => decode_payload(payload),
        Some(Value::Null) | None => String::new(),
        Some(other) => decode_value(other),
    };
    Ok(InboundMessage {
        event_id: event_id
            .filter(|id| !id.is_empty())
            .map_or_else(|| format!("press:{press_id}"), str::to_string),
        conversation: peer_id.to_string(),
        provider_message_id: None,
        sender: user(user_id),
        text,
        attachments: Vec::new(),
        edit_of: None,
        callback_id: Some(format!("{press_id}:{user_id}:{peer_id}")),
        sent_at: None,
    })
}

/// `<event_id>:<user_id>:<peer_id>` back into its parts.
pub(crate) fn split_callback_id(callback_id: &str) -> Option<(&str, i64, i64)> {
    let mut parts = callback_id.rsplitn(3, ':');
    let peer_id = parts.next()?.parse().ok()?;
    let user_id = parts.next()?.parse().ok()?;
    let event_id = parts.next().filter(|id| !id.is_empty())?;
    Some((event_id, user_id, peer_id))
}

/// The message's id for replies: `id` when VK gave one, else `c<conversation_message_id>` (in
/// group chats a community sees only the latter).
fn message_ref(message: &Value) -> Option<String> {
    match int(message, "id") {
        Some(id) if id > 0 => Some(id.to_string()),
        _ => int(message, "conversation_message_id").map(|cmid| format!("c{cmid}")),
    }
}

/// omnihub sends button payloads as JSON strings (VK wants JSON); other payloads (VK's own
/// `{"command":"start"}`) arrive as their JSON text.
fn decode_payload(payload: &str) -> String {
    match serde_json::from_str::<Value>(payload) {
        Ok(value) => decode_value(&value),
        Err(_) => payload.to_string(),
    }
}

fn decode_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn map_attachment(attachment: &Value) -> Option<InboundAttachment> {
    let kind = attachment.get("type")?.as_str()?;
    let body = attachment.get(kind)?;
    Some(match kind {
        "photo" => InboundAttachment {
            kind: AttachmentKind::Image,
            file_ref: largest(body.get("sizes")),
            file_name: None,
            mime_type: Some("image/jpeg".into()),
            size: None,
        },
        "doc" => InboundAttachment {
            kind: AttachmentKind::Document,
            file_ref: body.get("url").and_then(Value::as_str).map(str::to_string),
            file_name: body
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string),
            mime_type: None,
            size: body.get("size").and_then(Value::as_u64),
        },
        "audio_message" => {
            let (file_ref, mime) = match body.get("link_ogg").and_then(Value::as_str) {
                Some(ogg) => (Some(ogg.to_string()), "audio/ogg"),
                None => (
                    body.get("link_mp3")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    "audio/mpeg",
                ),
            };
            InboundAttachment {
                kind: AttachmentKind::Voice,
                file_ref,
                file_name: None,
                mime_type: Some(mime.into()),
                size: None,
            }
        }
        "sticker" => InboundAttachment {
            kind: AttachmentKind::Sticker,
            file_ref: largest(body.get("images")),
            file_name: None,
            mime_type: Some("image/png".into()),
            size: None,
        },
        "audio" => InboundAttachment {
            kind: AttachmentKind::Audio,
            file_ref: body.get("url").and_then(Value::as_str).map(str::to_string),
            file_name: None,
            mime_type: Some("audio/mpeg".into()),
            size: None,
        },
        // VK gives no direct file for videos, only a player page.
        "video" => structured(AttachmentKind::Video),
        _ => return None,
    })
}

/// The URL of the largest image in a `sizes`/`images` list.
fn largest(images: Option<&Value>) -> Option<String> {
    images?
        .as_array()?
        .iter()
        .filter_map(|image| {
            let url = image.get("url")?.as_str()?;
            let area = int(image, "width").unwrap_or(0) * int(image, "height").unwrap_or(0);
            Some((area, url))
        })
        .max_by_key(|(area, _)| *area)
        .map(|(_, url)| url.to_string())
}

fn structured(kind: AttachmentKind) -> InboundAttachment {
    InboundAttachment {
        kind,
        file_ref: None,
        file_name: None,
        mime_type: None,
        size: None,
    }
}

/// VK events carry only ids; `id<N>` is how VK itself names a profile without a short name.
fn user(id: i64) -> ExternalUser {
    ExternalUser {
        id: id.to_string(),
        name: format!("id{id}"),
        ..ExternalUser::default()
    }
}

fn int(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
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

    #[test]
    fn a_new_message_with_attachments_and_geo() {
        let event = json!({"type": "message_new", "event_id": "abc", "object": {"message": {
            "id": 12, "date": 1767225600, "peer_id": 1111, "from_id": 1111, "text": "Hi",
            "attachments": [
                {"type": "photo", "photo": {"sizes": [
                    {"url": "https://x/s.jpg", "width": 10, "height": 10},
                    {"url": "https://x/l.jpg", "width": 100, "height": 80}]}},
                {"type": "doc", "doc": {"url": "https://x/d", "title": "a.pdf", "size": 5}},
                {"type": "audio_message", "audio_message": {"link_ogg": "https://x/v.ogg"}},
                {"type": "sticker", "sticker": {"images": [{"url": "https://x/st.png", "width": 64, "height": 64}]}}
            ],
            "geo": {"coordinates": {"latitude": 55.75, "longitude": 37.61}}}}});
        let got = message(map_event(&event).unwrap());
        assert_eq!(got.event_id, "abc");
        assert_eq!(got.conversation, "1111");
        assert_eq!(got.provider_message_id.as_deref(), Some("12"));
        assert_eq!(got.text, "Hi");
        assert_eq!(got.sender.name, "id1111");
        assert_eq!(got.sent_at.unwrap().timestamp(), 1767225600);
        let kinds: Vec<_> = got.attachments.iter().map(|a| a.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                AttachmentKind::Image,
                AttachmentKind::Document,
                AttachmentKind::Voice,
                AttachmentKind::Sticker,
                AttachmentKind::Location {
                    latitude: 55.75,
                    longitude: 37.61
                }
            ]
        );
        assert_eq!(
            got.attachments[0].file_ref.as_deref(),
            Some("https://x/l.jpg")
        );
        assert_eq!(got.attachments[1].file_name.as_deref(), Some("a.pdf"));
    }

    #[test]
    fn button_payloads_and_presses() {
        let text_button = json!({"type": "message_new", "event_id": "e1", "object": {"message": {
            "id": 3, "peer_id": 5, "from_id": 5, "text": "Buy", "payload": "\"buy:42\""}}});
        assert_eq!(message(map_event(&text_button).unwrap()).text, "buy:42");
        let start = json!({"type": "message_new", "event_id": "e2", "object": {"message": {
            "id": 4, "peer_id": 5, "from_id": 5, "text": "Start", "payload": "{\"command\":\"start\"}"}}});
        assert_eq!(
            message(map_event(&start).unwrap()).text,
            r#"{"command":"start"}"#
        );
        let press = json!({"type": "message_event", "event_id": "e3", "object": {
            "user_id": 5, "peer_id": 2000000001, "event_id": "3f4a", "payload": "\"yes\""}});
        let got = message(map_event(&press).unwrap());
        assert_eq!(got.text, "yes");
        assert_eq!(got.callback_id.as_deref(), Some("3f4a:5:2000000001"));
        assert_eq!(got.event_id, "e3");
        assert_eq!(
            split_callback_id("3f4a:5:2000000001"),
            Some(("3f4a", 5, 2000000001))
        );
        assert_eq!(split_callback_id("nonsense"), None);
    }

    #[test]
    fn edits_own_messages_and_other_types() {
        let edit = json!({"type": "message_edit", "event_id": "e4", "object": {
            "id": 0, "conversation_message_id": 9, "peer_id": 2000000001, "from_id": 7, "text": "fixed"}});
        let got = message(map_event(&edit).unwrap());
        assert_eq!(got.edit_of.as_deref(), Some("c9"));
        for ignored in [
            json!({"type": "message_reply", "event_id": "e5", "object": {"id": 1, "peer_id": 1, "out": 1}}),
            json!({"type": "message_new", "event_id": "e6", "object": {"message": {"id": 1, "peer_id": 1, "out": 1}}}),
            json!({"type": "wall_reply_new", "event_id": "e7", "object": {}}),
        ] {
            assert_eq!(map_event(&ignored).unwrap(), None, "{ignored}");
        }
        assert!(map_event(&json!({"object": {}})).is_err());
    }
}
