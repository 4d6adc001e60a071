//! Viber's callbacks: every POST signed with `X-Viber-Content-Signature` = hex
//! HMAC-SHA256(auth token, raw body), checked before the body is parsed.
//!
//! Mapping decisions, event by event:
//! - `webhook` (Viber checking the URL on `set_webhook`): answered, nothing ingested;
//! - `message`: one [`InboundMessage`] whose event id is the `message_token`; the conversation
//!   and the sender are the Viber user id. A pressed keyboard button arrives as an ordinary text
//!   message carrying the button's `ActionBody` (Viber does not mark it), so `callback_id` stays
//!   empty. `url` messages become their URL as text; `picture`, `video`, `file`, `sticker` an
//!   attachment whose `file_ref` is Viber's media URL; `contact` and `location` structured
//!   attachments;
//! - `conversation_started` (the customer opened the chat, before writing): an update only
//!   when it carries a `context` (the deep-link parameter, e.g. an ad or a QR code), which
//!   becomes the text of a message with the event's `message_token`; a bare "opened the chat"
//!   is not something to answer, so it is skipped;
//! - `delivered`, `seen`, `failed` (with `desc` as the reason): [`StatusUpdate`]s of the
//!   message with that `message_token`;
//! - `subscribed`, `unsubscribed`, `client_status` and events Viber adds later: acknowledged and
//!   skipped (a message after `unsubscribed` fails with status 6, which says the same).

use chrono::{DateTime, Utc};
use omnihub_core::model::DeliveryStatus;
use serde::Deserialize;

use crate::provider::{
    AttachmentKind, ExternalUser, InboundAttachment, InboundMessage, InboundUpdate, StatusUpdate,
    WebhookError, WebhookRequest,
};
use crate::signing::verify_hmac_sha256_hex;

/// Checks the content signature over the raw body with the auth token.
pub fn verify_signature(
    request: &WebhookRequest<'_>,
    auth_token: &str,
) -> Result<(), WebhookError> {
    let signature = request
        .header("x-viber-content-signature")
        .ok_or(WebhookError::Unauthorized)?;
    if verify_hmac_sha256_hex(auth_token.as_bytes(), request.body, signature) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized)
    }
}

/// The updates of a verified callback body.
pub fn parse(body: &[u8]) -> Result<Vec<InboundUpdate>, WebhookError> {
    let event: Event = serde_json::from_slice(body)
        .map_err(|err| WebhookError::Malformed(format!("not a Viber callback: {err}")))?;
    let token = || {
        event
            .message_token
            .as_ref()
            .map(ToString::to_string)
            .ok_or_else(|| {
                WebhookError::Malformed(format!("{} without message_token", event.event))
            })
    };
    let sent_at = event
        .timestamp
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    let update = match event.event.as_str() {
        "message" => {
            let sender = event
                .sender
                .as_ref()
                .ok_or_else(|| WebhookError::Malformed("message without sender".into()))?;
            let message = event
                .message
                .as_ref()
                .ok_or_else(|| WebhookError::Malformed("message without message".into()))?;
            message_update(token()?, sender, message, sent_at)
        }
        "conversation_started" => match (&event.user, event.context.as_deref()) {
            (Some(user), Some(context)) if !context.is_empty() => {
                Some(InboundUpdate::Message(InboundMessage {
                    event_id: token()?,
                    conversation: user.id.clone(),
                    provider_message_id: None,
                    sender: external_user(user),
                    text: context.to_string(),
                    attachments: Vec::new(),
                    edit_of: None,
                    callback_id: None,
                    sent_at,
                }))
            }
            _ => None,
        },
        "delivered" | "seen" | "failed" => {
            let status = match event.event.as_str() {
                "delivered" => DeliveryStatus::Delivered,
                "seen" => DeliveryStatus::Read,
                _ => DeliveryStatus::Failed,
            };
            Some(InboundUpdate::Status(StatusUpdate {
                provider_message_id: token()?,
                status,
                reason: event.desc.clone().filter(|desc| !desc.is_empty()),
            }))
        }
        "unsubscribed" => {
            let user = event
                .user_id
                .clone()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| WebhookError::Malformed("unsubscribed without user_id".into()))?;
            Some(InboundUpdate::Blocked {
                conversation: user,
                reason: "unsubscribed".into(),
            })
        }
        other => {
            tracing::debug!(event = other, "viber callback skipped");
            None
        }
    };
    Ok(update.into_iter().collect())
}

fn message_update(
    event_id: String,
    sender: &User,
    message: &Message,
    sent_at: Option<DateTime<Utc>>,
) -> Option<InboundUpdate> {
    let media = |kind: AttachmentKind| InboundAttachment {
        kind,
        file_ref: message.media.clone(),
        file_name: message.file_name.clone(),
        mime_type: None,
        size: message.size,
    };
    let mut text = message.text.clone().unwrap_or_default();
    let mut attachments = Vec::new();
    match message.kind.as_str() {
        "text" => {}
        "picture" => attachments.push(media(AttachmentKind::Image)),
        "video" => attachments.push(media(AttachmentKind::Video)),
        "file" => attachments.push(media(AttachmentKind::Document)),
        "sticker" => attachments.push(media(AttachmentKind::Sticker)),
        "url" => text = message.media.clone().unwrap_or_default(),
        "contact" => {
            let contact = message.contact.as_ref()?;
            attachments.push(InboundAttachment {
                kind: AttachmentKind::Contact {
                    name: contact.name.clone(),
                    phone: contact.phone_number.clone(),
                },
                file_ref: None,
                file_name: None,
                mime_type: None,
                size: None,
            });
        }
        "location" => {
            let location = message.location.as_ref()?;
            attachments.push(InboundAttachment {
                kind: AttachmentKind::Location {
                    latitude: location.lat,
                    longitude: location.lon,
                },
                file_ref: None,
                file_name: None,
                mime_type: None,
                size: None,
            });
        }
        other => {
            tracing::debug!(kind = other, "viber message skipped");
            return None;
        }
    }
    if text.is_empty() && attachments.is_empty() {
        return None;
    }
    Some(InboundUpdate::Message(InboundMessage {
        provider_message_id: Some(event_id.clone()),
        event_id,
        conversation: sender.id.clone(),
        sender: external_user(sender),
        text,
        attachments,
        edit_of: None,
        callback_id: None,
        sent_at,
    }))
}

fn external_user(user: &User) -> ExternalUser {
    ExternalUser {
        id: user.id.clone(),
        name: user
            .name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| user.id.clone()),
        username: None,
        phone: None,
        email: None,
    }
}

// The wire types: only what the mapping reads; Viber's other fields are ignored.

#[derive(Deserialize)]
struct Event {
    event: String,
    timestamp: Option<i64>,
    message_token: Option<serde_json::Number>,
    sender: Option<User>,
    user: Option<User>,
    message: Option<Message>,
    context: Option<String>,
    desc: Option<String>,
    /// `unsubscribed` (and the delivery callbacks) name the user by id alone.
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    media: Option<String>,
    file_name: Option<String>,
    size: Option<u64>,
    contact: Option<Contact>,
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone_number: String,
}

#[derive(Deserialize)]
struct Location {
    lat: f64,
    lon: f64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::signing::hmac_sha256_hex;

    #[test]
    fn signature_is_hex_hmac_of_the_raw_body() {
        let body = br#"{"event":"webhook","timestamp":1,"message_token":1}"#;
        let request = |signature: Option<String>| {
            WebhookRequest::new(
                "POST",
                "",
                signature.map(|s| ("X-Viber-Content-Signature".to_string(), s)),
                body,
            )
        };
        let good = hmac_sha256_hex(b"token", body);
        assert!(verify_signature(&request(Some(good.clone())), "token").is_ok());
        assert_eq!(
            verify_signature(&request(Some(good)), "other"),
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(
            verify_signature(&request(None), "token"),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn conversation_started_needs_a_context() {
        let mut event = json!({"event": "conversation_started", "timestamp": 1767225600000u64,
            "message_token": 4912661846655238145u64, "type": "open",
            "user": {"id": "01234567890A=", "name": "John McClane"}, "subscribed": false});
        assert_eq!(parse(event.to_string().as_bytes()).unwrap(), []);
        event["context"] = json!("promo-42");
        let updates = parse(event.to_string().as_bytes()).unwrap();
        let [InboundUpdate::Message(message)] = updates.as_slice() else {
            panic!("{updates:?}");
        };
        assert_eq!(message.event_id, "4912661846655238145");
        assert_eq!(message.text, "promo-42");
        assert_eq!(message.sender.name, "John McClane");
    }

    #[test]
    fn statuses_and_ignored_events() {
        let failed = json!({"event": "failed", "timestamp": 1, "message_token": 42,
            "user_id": "u", "desc": "failure description"});
        assert_eq!(
            parse(failed.to_string().as_bytes()).unwrap(),
            [InboundUpdate::Status(StatusUpdate {
                provider_message_id: "42".into(),
                status: DeliveryStatus::Failed,
                reason: Some("failure description".into()),
            })]
        );
        for event in ["subscribed", "client_status", "webhook"] {
            let body = json!({"event": event, "timestamp": 1, "message_token": 1,
                "user": {"id": "u"}, "user_id": "u"});
            assert_eq!(parse(body.to_string().as_bytes()).unwrap(), [], "{event}");
        }
        assert!(matches!(parse(b"{}"), Err(WebhookError::Malformed(_))));
        assert!(matches!(
            parse(br#"{"event":"seen","timestamp":1}"#),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn an_unsubscribe_blocks_the_users_conversation() {
        let body = serde_json::json!({"event": "unsubscribed", "timestamp": 1_767_225_600_000_i64,
            "chat_hostname": "SN-CHAT-01_", "user_id": "01234567890A=",
            "message_token": 4_912_661_846_655_238_145_u64});
        assert_eq!(
            parse(body.to_string().as_bytes()).unwrap(),
            [InboundUpdate::Blocked {
                conversation: "01234567890A=".into(),
                reason: "unsubscribed".into()
            }]
        );
        assert!(parse(br#"{"event":"unsubscribed","user_id":""}"#).is_err());
    }
}
