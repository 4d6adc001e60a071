//! Telegram `Update`s (from the webhook or `getUpdates`) mapped to [`InboundUpdate`]s, and the
//! webhook's secret check.
//!
//! Handled kinds: `message` and `edited_message` (text, caption, photo, document, voice, audio,
//! video, sticker, location, contact), `callback_query` (a pressed inline button) and
//! `my_chat_member` in a private chat: the bot's new status `kicked` is the customer blocking
//! the bot ([`InboundUpdate::Blocked`]), `member` is the customer unblocking (or restarting)
//! it ([`InboundUpdate::Unblocked`]). Every other kind (channel posts, reactions, the bot's
//! membership in groups, other members' changes…) maps to nothing.
//!
//! Event ids, the hub's dedupe key, are built from ids Telegram never reuses instead of
//! `update_id`: after a week without updates Telegram restarts `update_id` from a random
//! number, so a new update could carry the id of an old one and be dropped as a duplicate.
//! - a message: `msg:<chat id>:<message id>` (message ids are unique and stable per chat);
//! - an edit: `edit:<chat id>:<message id>:<edit date>:<update id>` (two edits in one second
//!   stay distinct);
//! - a button press: `callback:<callback query id>`.
//!
//! Every redelivery of the same update carries the same ids, so it maps to the same event id.

use chrono::{DateTime, Utc};
use frankenstein::types::{CallbackQuery, MaybeInaccessibleMessage, Message, User};
use frankenstein::updates::{Update, UpdateContent};

use crate::provider::{
    AttachmentKind, ExternalUser, InboundAttachment, InboundMessage, InboundUpdate,
};
use crate::signing::constant_time_eq;

/// The header carrying the `secret_token` we gave `setWebhook`.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// The update kinds we ask Telegram for (`allowed_updates`) and map.
pub(crate) const HANDLED_KINDS: [&str; 4] = [
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
];

/// What Telegram says when the customer blocks the bot (the words of its 403 on a send), kept
/// as the conversation's reason so both ways of learning it read the same.
pub(crate) const BLOCKED_BY_USER: &str = "Forbidden: bot was blocked by the user";

/// The fields of a `Message` the mapping reads. Only these are handed to frankenstein's
/// types, so a field the Bot API adds later (or a new variant of one we never read, such as a
/// forward origin) cannot make a customer's message unreadable.
const MESSAGE_FIELDS: [&str; 17] = [
    "message_id",
    "date",
    "edit_date",
    "chat",
    "from",
    "sender_chat",
    "text",
    "caption",
    "photo",
    "document",
    "voice",
    "audio",
    "video",
    "sticker",
    "location",
    "contact",
    "message_thread_id",
];
const CALLBACK_FIELDS: [&str; 7] = [
    "id",
    "from",
    "message",
    "inline_message_id",
    "chat_instance",
    "data",
    "game_short_name",
];

/// Whether the webhook request's secret header equals the configured secret, compared in
/// constant time. No configured secret accepts nothing: without it anyone who learns the URL
/// could post updates.
pub(crate) fn secret_matches(configured: Option<&str>, presented: Option<&str>) -> bool {
    match (configured, presented) {
        (Some(configured), Some(presented)) => {
            constant_time_eq(configured.as_bytes(), presented.as_bytes())
        }
        _ => false,
    }
}

/// One update as Telegram sent it (a JSON object). `Ok(None)` for kinds we do not handle;
/// `Err` when a kind we handle does not have the shape of the Bot API.
pub(crate) fn map_update(update: &serde_json::Value) -> Result<Option<InboundUpdate>, String> {
    let Some(object) = update.as_object() else {
        return Err("an update must be a JSON object".into());
    };
    if !object.get("update_id").is_some_and(|id| id.is_u64()) {
        return Err("the update has no update_id".into());
    }
    if !HANDLED_KINDS.iter().any(|kind| object.contains_key(*kind)) {
        return Ok(None);
    }
    if let Some(change) = object.get("my_chat_member") {
        return map_my_chat_member(change);
    }
    let update: Update = serde_json::from_value(only_what_we_read(object))
        .map_err(|error| format!("not a Telegram update: {error}"))?;
    Ok(match update.content {
        UpdateContent::Message(message) => {
            Some(InboundUpdate::Message(map_message(&message, None)))
        }
        UpdateContent::EditedMessage(message) => Some(InboundUpdate::Message(map_message(
            &message,
            Some(update.update_id),
        ))),
        UpdateContent::CallbackQuery(query) => map_callback(&query).map(InboundUpdate::Message),
        _ => None,
    })
}

/// The bot's own membership changed (`ChatMemberUpdated`). Only a private chat is a customer's
/// conversation; there the customer is the only one who can change the bot's status.
fn map_my_chat_member(change: &serde_json::Value) -> Result<Option<InboundUpdate>, String> {
    let malformed = |what: &str| format!("my_chat_member without {what}");
    let chat = change.get("chat").ok_or_else(|| malformed("chat"))?;
    let chat_id = chat
        .get("id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| malformed("chat.id"))?;
    let status = change
        .pointer("/new_chat_member/status")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| malformed("new_chat_member.status"))?;
    if chat.get("type").and_then(serde_json::Value::as_str) != Some("private") {
        return Ok(None);
    }
    let conversation = chat_id.to_string();
    Ok(match status {
        "kicked" => Some(InboundUpdate::Blocked {
            conversation,
            reason: BLOCKED_BY_USER.into(),
        }),
        "member" => Some(InboundUpdate::Unblocked { conversation }),
        _ => None,
    })
}

/// The update with its message or callback query cut down to the fields the mapping reads.
fn only_what_we_read(update: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let keep = |value: &serde_json::Value, fields: &[&str]| match value.as_object() {
        Some(object) => serde_json::Value::Object(
            object
                .iter()
                .filter(|(key, _)| fields.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        None => value.clone(),
    };
    let mut trimmed = serde_json::Map::new();
    for (kind, value) in update {
        let value = match kind.as_str() {
            "message" | "edited_message" => keep(value, &MESSAGE_FIELDS),
            "callback_query" => {
                let mut query = keep(value, &CALLBACK_FIELDS);
                if let Some(message) = query.get_mut("message") {
                    *message = keep(message, &MESSAGE_FIELDS);
                }
                query
            }
            "update_id" => value.clone(),
            _ => continue,
        };
        trimmed.insert(kind.clone(), value);
    }
    serde_json::Value::Object(trimmed)
}

/// Telegram numbers messages per chat: the chat makes the id unique in the bot.
pub(crate) fn provider_message_id(chat: impl std::fmt::Display, message_id: i32) -> String {
    format!("{chat}:{message_id}")
}

/// A new message, or with `edit_update` (the update's id) the new version of an edited one.
fn map_message(message: &Message, edit_update: Option<u32>) -> InboundMessage {
    let chat = message.chat.id;
    let message_id = message.message_id.to_string();
    let provider_id = provider_message_id(chat, message.message_id);
    let (event_id, edit_of, sent_at) = match (edit_update, message.edit_date) {
        (Some(update_id), edit_date) => {
            let edit_date = edit_date.unwrap_or(message.date);
            (
                format!("edit:{chat}:{message_id}:{edit_date}:{update_id}"),
                Some(provider_id.clone()),
                unix_time(edit_date),
            )
        }
        (None, _) => (
            format!("msg:{chat}:{message_id}"),
            None,
            unix_time(message.date),
        ),
    };
    let mut sender = match &message.from {
        Some(user) => external_user(user),
        // Anonymous group admins and channels write as a chat.
        None => ExternalUser {
            id: message
                .sender_chat
                .as_ref()
                .map_or(chat, |sender| sender.id)
                .to_string(),
            name: message
                .sender_chat
                .as_ref()
                .and_then(|sender| sender.title.clone())
                .unwrap_or_default(),
            ..ExternalUser::default()
        },
    };
    let attachments = attachments(message);
    // A contact the customer shares of themselves tells us their phone number.
    if let Some(contact) = &message.contact
        && contact
            .user_id
            .is_some_and(|id| id.to_string() == sender.id)
    {
        sender.phone = Some(contact.phone_number.clone());
    }
    InboundMessage {
        event_id,
        conversation: chat.to_string(),
        provider_message_id: Some(provider_id),
        sender,
        text: message
            .text
            .clone()
            .or_else(|| message.caption.clone())
            .unwrap_or_default(),
        attachments,
        edit_of,
        callback_id: None,
        sent_at,
    }
}

/// A pressed inline button. Presses on inline-mode messages (no chat) and game buttons (no
/// data) are not conversations and map to nothing.
fn map_callback(query: &CallbackQuery) -> Option<InboundMessage> {
    let data = query.data.clone()?;
    let chat = match query.message.as_ref()? {
        MaybeInaccessibleMessage::Message(message) => message.chat.id,
        MaybeInaccessibleMessage::InaccessibleMessage(message) => message.chat.id,
    };
    Some(InboundMessage {
        event_id: format!("callback:{}", query.id),
        conversation: chat.to_string(),
        provider_message_id: None,
        sender: external_user(&query.from),
        text: data,
        attachments: Vec::new(),
        edit_of: None,
        callback_id: Some(query.id.clone()),
        sent_at: None,
    })
}

fn external_user(user: &User) -> ExternalUser {
    let full_name = match &user.last_name {
        Some(last) if !last.is_empty() => format!("{} {last}", user.first_name),
        _ => user.first_name.clone(),
    };
    let name = if !full_name.trim().is_empty() {
        full_name.trim().to_string()
    } else {
        user.username.clone().unwrap_or_else(|| user.id.to_string())
    };
    ExternalUser {
        id: user.id.to_string(),
        name,
        username: user.username.clone(),
        phone: None,
        email: None,
    }
}

fn attachments(message: &Message) -> Vec<InboundAttachment> {
    let mut found = Vec::new();
    let file = |kind, file_id: &str, file_name: Option<&String>, mime: Option<&str>, size| {
        InboundAttachment {
            kind,
            file_ref: Some(file_id.to_string()),
            file_name: file_name.cloned(),
            mime_type: mime.map(str::to_string),
            size,
        }
    };
    // Telegram sends every size it made of a photo; the largest is the original.
    if let Some(largest) = message.photo.as_ref().and_then(|sizes| {
        sizes.iter().max_by_key(|size| {
            (
                u64::from(size.width) * u64::from(size.height),
                size.file_size,
            )
        })
    }) {
        found.push(file(
            AttachmentKind::Image,
            &largest.file_id,
            None,
            Some("image/jpeg"),
            largest.file_size,
        ));
    }
    if let Some(document) = &message.document {
        found.push(file(
            AttachmentKind::Document,
            &document.file_id,
            document.file_name.as_ref(),
            document.mime_type.as_deref(),
            document.file_size,
        ));
    }
    if let Some(voice) = &message.voice {
        found.push(file(
            AttachmentKind::Voice,
            &voice.file_id,
            None,
            voice.mime_type.as_deref(),
            voice.file_size,
        ));
    }
    if let Some(audio) = &message.audio {
        found.push(file(
            AttachmentKind::Audio,
            &audio.file_id,
            audio.file_name.as_ref(),
            audio.mime_type.as_deref(),
            audio.file_size,
        ));
    }
    if let Some(video) = &message.video {
        found.push(file(
            AttachmentKind::Video,
            &video.file_id,
            video.file_name.as_ref(),
            video.mime_type.as_deref(),
            video.file_size,
        ));
    }
    if let Some(sticker) = &message.sticker {
        // Animated stickers are Lottie files, video stickers WebM, the others WebP.
        let mime = if sticker.is_animated {
            "application/x-tgsticker"
        } else if sticker.is_video {
            "video/webm"
        } else {
            "image/webp"
        };
        found.push(file(
            AttachmentKind::Sticker,
            &sticker.file_id,
            None,
            Some(mime),
            sticker.file_size,
        ));
    }
    if let Some(location) = &message.location {
        found.push(InboundAttachment {
            kind: AttachmentKind::Location {
                latitude: location.latitude,
                longitude: location.longitude,
            },
            file_ref: None,
            file_name: None,
            mime_type: None,
            size: None,
        });
    }
    if let Some(contact) = &message.contact {
        let name = match &contact.last_name {
            Some(last) if !last.is_empty() => format!("{} {last}", contact.first_name),
            _ => contact.first_name.clone(),
        };
        found.push(InboundAttachment {
            kind: AttachmentKind::Contact {
                name,
                phone: contact.phone_number.clone(),
            },
            file_ref: None,
            file_name: None,
            mime_type: None,
            size: None,
        });
    }
    found
}

fn unix_time(seconds: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn chat() -> serde_json::Value {
        json!({"id": 5001, "type": "private", "first_name": "Иван", "username": "ivan"})
    }

    fn from() -> serde_json::Value {
        json!({"id": 5001, "is_bot": false, "first_name": "Иван", "last_name": "Петров",
               "username": "ivan", "language_code": "ru"})
    }

    fn message(extra: serde_json::Value) -> serde_json::Value {
        let mut message = json!({"message_id": 17, "date": 1_700_000_000, "chat": chat(),
                                 "from": from()});
        for (key, value) in extra.as_object().unwrap() {
            message[key] = value.clone();
        }
        message
    }

    fn mapped(update: serde_json::Value) -> InboundMessage {
        match map_update(&update).unwrap() {
            Some(InboundUpdate::Message(message)) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn a_text_message() {
        let message =
            mapped(json!({"update_id": 9, "message": message(json!({"text": "Привет"}))}));
        assert_eq!(message.event_id, "msg:5001:17");
        assert_eq!(message.conversation, "5001");
        assert_eq!(message.provider_message_id.as_deref(), Some("5001:17"));
        assert_eq!(message.text, "Привет");
        assert_eq!(message.sender.name, "Иван Петров");
        assert_eq!(message.sender.username.as_deref(), Some("ivan"));
        assert_eq!(message.sender.id, "5001");
        assert_eq!(message.sent_at.unwrap().timestamp(), 1_700_000_000);
        assert!(message.edit_of.is_none() && message.callback_id.is_none());
    }

    #[test]
    fn the_largest_photo_size_with_its_caption() {
        let sizes = json!([
            {"file_id": "small", "file_unique_id": "u1", "width": 90, "height": 60, "file_size": 900},
            {"file_id": "big", "file_unique_id": "u3", "width": 1280, "height": 853, "file_size": 90000},
            {"file_id": "mid", "file_unique_id": "u2", "width": 320, "height": 213, "file_size": 9000}
        ]);
        let message = mapped(
            json!({"update_id": 9, "message": message(json!({"photo": sizes, "caption": "вот"}))}),
        );
        assert_eq!(message.text, "вот");
        assert_eq!(message.attachments.len(), 1);
        assert_eq!(message.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(message.attachments[0].file_ref.as_deref(), Some("big"));
        assert_eq!(message.attachments[0].size, Some(90000));
    }

    #[test]
    fn an_edit_has_its_own_event_id() {
        let edited = message(json!({"text": "исправлено", "edit_date": 1_700_000_100}));
        let message = mapped(json!({"update_id": 12, "edited_message": edited}));
        assert_eq!(message.event_id, "edit:5001:17:1700000100:12");
        assert_eq!(message.edit_of.as_deref(), Some("5001:17"));
        assert_eq!(message.sent_at.unwrap().timestamp(), 1_700_000_100);
    }

    #[test]
    fn a_shared_own_contact_gives_the_phone() {
        let contact =
            json!({"phone_number": "+79990001122", "first_name": "Иван", "user_id": 5001});
        let message =
            mapped(json!({"update_id": 9, "message": message(json!({"contact": contact}))}));
        assert_eq!(message.sender.phone.as_deref(), Some("+79990001122"));
        assert_eq!(
            message.attachments[0].kind,
            AttachmentKind::Contact {
                name: "Иван".into(),
                phone: "+79990001122".into()
            }
        );
    }

    #[test]
    fn a_button_press() {
        let update = json!({"update_id": 10, "callback_query": {
            "id": "4382bfdwdsb323b2d9", "from": from(), "chat_instance": "-42",
            "data": "order:42:cancel",
            "message": message(json!({"text": "Отменить заказ?", "from": {"id": 1, "is_bot": true, "first_name": "Bot"}}))
        }});
        let message = mapped(update);
        assert_eq!(message.event_id, "callback:4382bfdwdsb323b2d9");
        assert_eq!(message.callback_id.as_deref(), Some("4382bfdwdsb323b2d9"));
        assert_eq!(message.text, "order:42:cancel");
        assert_eq!(message.conversation, "5001");
        assert_eq!(message.sender.name, "Иван Петров");
    }

    #[test]
    fn fields_we_do_not_read_cannot_break_a_message() {
        let message = message(json!({
            "text": "переслано",
            "forward_origin": {"type": "a_kind_from_the_future", "date": 1},
            "entities": [{"type": "brand_new_entity", "offset": 0, "length": 3}],
            "some_field_added_in_bot_api_12": {"x": 1}
        }));
        let mapped = mapped(json!({"update_id": 9, "message": message}));
        assert_eq!(mapped.text, "переслано");
    }

    fn bot_status(chat_type: &str, old: &str, new: &str) -> serde_json::Value {
        let bot = json!({"id": 42, "is_bot": true, "first_name": "Bot"});
        let mut chat = chat();
        chat["type"] = json!(chat_type);
        let mut new_member = json!({"status": new, "user": bot});
        if new == "kicked" {
            new_member["until_date"] = json!(0);
        }
        json!({"update_id": 11, "my_chat_member": {
            "chat": chat, "from": from(), "date": 1_700_000_000,
            "old_chat_member": {"status": old, "user": bot},
            "new_chat_member": new_member}})
    }

    #[test]
    fn a_customer_blocking_and_unblocking_the_bot() {
        assert_eq!(
            map_update(&bot_status("private", "member", "kicked")),
            Ok(Some(InboundUpdate::Blocked {
                conversation: "5001".into(),
                reason: "Forbidden: bot was blocked by the user".into()
            }))
        );
        assert_eq!(
            map_update(&bot_status("private", "kicked", "member")),
            Ok(Some(InboundUpdate::Unblocked {
                conversation: "5001".into()
            }))
        );
        // The bot removed from a group is no customer's doing.
        assert_eq!(
            map_update(&bot_status("group", "member", "kicked")),
            Ok(None)
        );
        assert_eq!(
            map_update(&bot_status("private", "member", "left")),
            Ok(None)
        );
        let without_status = json!({"update_id": 11, "my_chat_member": {"chat": chat()}});
        assert!(map_update(&without_status).is_err());
    }

    #[test]
    fn kinds_we_do_not_handle_map_to_nothing() {
        let update = json!({"update_id": 11, "chat_member": {"whatever": true}});
        assert_eq!(map_update(&update), Ok(None));
        let inline = json!({"update_id": 12, "callback_query": {
            "id": "1", "from": from(), "chat_instance": "-1", "inline_message_id": "x", "data": "d"}});
        assert_eq!(map_update(&inline), Ok(None));
        assert!(map_update(&json!({"message": {}})).is_err());
        assert!(map_update(&json!({"update_id": 1, "message": {"text": "no chat"}})).is_err());
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches(Some("abc"), Some("abc")));
        assert!(!secret_matches(Some("abc"), Some("abd")));
        assert!(!secret_matches(Some("abc"), Some("abcd")));
        assert!(!secret_matches(Some("abc"), None));
        assert!(!secret_matches(None, Some("abc")));
        assert!(!secret_matches(None, None));
    }
}
