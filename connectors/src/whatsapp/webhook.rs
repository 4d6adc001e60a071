//! WhatsApp's webhook: the GET verification handshake and the signed POSTs of messages and
//! statuses (`object: whatsapp_business_account`, `entry[].changes[].value`).
//!
//! Mapping decisions:
//! - each message's `id` (the wamid) is its event id, so Meta's redeliveries dedupe;
//! - the conversation and the sender are the customer's `wa_id` (`from`), named by the
//!   `contacts[].profile.name` of the same `wa_id`;
//! - a pressed reply button or list row arrives with the choice's `id` (our payload) as the
//!   text and the message's wamid as `callback_id`; a template's quick-reply `button` likewise
//!   with its payload;
//! - reactions, orders, system notices and `unsupported` messages are skipped (logged at debug):
//!   they are not something an operator answers;
//! - statuses `sent`, `delivered`, `read` and `failed` (with the `errors[].title`s as the
//!   reason) become [`StatusUpdate`]s; other statuses (`deleted`, `warning`) are skipped;
//! - changes for another phone number of the same business account are skipped: Meta sends the
//!   whole app's traffic to every callback, and those belong to another channel.

use chrono::{DateTime, Utc};
use omnihub_core::model::DeliveryStatus;
use serde::Deserialize;

use crate::provider::{
    AttachmentKind, ExternalUser, InboundAttachment, InboundMessage, InboundUpdate, StatusUpdate,
    WebhookError, WebhookReply, WebhookRequest,
};
use crate::signing::{constant_time_eq, verify_hmac_sha256_hex};

/// Answers the dashboard's `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=N` with
/// `N`, only when the token is ours.
pub fn handshake(
    request: &WebhookRequest<'_>,
    verify_token: &str,
) -> Result<WebhookReply, WebhookError> {
    let mode = request.query_param("hub.mode");
    let token = request.query_param("hub.verify_token").unwrap_or_default();
    if mode.as_deref() != Some("subscribe")
        || verify_token.is_empty()
        || !constant_time_eq(token.as_bytes(), verify_token.as_bytes())
    {
        return Err(WebhookError::Unauthorized);
    }
    let challenge = request
        .query_param("hub.challenge")
        .filter(|challenge| !challenge.is_empty())
        .ok_or_else(|| WebhookError::Malformed("hub.challenge is missing".into()))?;
    Ok(WebhookReply::Handshake { body: challenge })
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` over the raw body with the app secret.
pub fn verify_signature(
    request: &WebhookRequest<'_>,
    app_secret: &str,
) -> Result<(), WebhookError> {
    let signature = request
        .header("x-hub-signature-256")
        .and_then(|value| value.trim().strip_prefix("sha256="))
        .ok_or(WebhookError::Unauthorized)?;
    if verify_hmac_sha256_hex(app_secret.as_bytes(), request.body, signature) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized)
    }
}

/// The updates of a verified POST body addressed to `phone_number_id`.
pub fn parse(body: &[u8], phone_number_id: &str) -> Result<Vec<InboundUpdate>, WebhookError> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|err| WebhookError::Malformed(format!("not a WhatsApp webhook: {err}")))?;
    if payload.object != "whatsapp_business_account" {
        return Err(WebhookError::Malformed(format!(
            "object {:?} is not whatsapp_business_account",
            payload.object
        )));
    }
    let mut updates = Vec::new();
    for change in payload.entry.into_iter().flat_map(|entry| entry.changes) {
        let value = change.value;
        let number = value.metadata.as_ref().map(|m| m.phone_number_id.as_str());
        if change.field != "messages" || number != Some(phone_number_id) {
            tracing::debug!(field = %change.field, "whatsapp webhook: change skipped");
            continue;
        }
        for message in &value.messages {
            match inbound_message(message, &value.contacts) {
                Some(inbound) => updates.push(InboundUpdate::Message(inbound)),
                None => tracing::debug!(kind = %message.kind, "whatsapp webhook: message skipped"),
            }
        }
        updates.extend(
            value
                .statuses
                .iter()
                .filter_map(status_update)
                .map(InboundUpdate::Status),
        );
    }
    Ok(updates)
}

fn inbound_message(message: &Message, contacts: &[Contact]) -> Option<InboundMessage> {
    let name = contacts
        .iter()
        .find(|contact| contact.wa_id == message.from)
        .or(contacts.first().filter(|_| contacts.len() == 1))
        .and_then(|contact| contact.profile.as_ref())
        .map(|profile| profile.name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| message.from.clone());
    let mut inbound = InboundMessage {
        event_id: message.id.clone(),
        conversation: message.from.clone(),
        provider_message_id: Some(message.id.clone()),
        sender: ExternalUser {
            id: message.from.clone(),
            name,
            username: None,
            phone: Some(format!("+{}", message.from)),
            email: None,
        },
        text: String::new(),
        attachments: Vec::new(),
        edit_of: None,
        callback_id: None,
        sent_at: message
            .timestamp
            .parse::<i64>()
            .ok()
            .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0)),
    };
    let media = |kind: AttachmentKind, media: &Option<Media>| {
        media.as_ref().map(|media| InboundAttachment {
            kind,
            file_ref: Some(media.id.clone()),
            file_name: media.filename.clone(),
            mime_type: media.mime_type.clone(),
            size: None,
        })
    };
    match message.kind.as_str() {
        "text" => inbound.text = message.text.as_ref()?.body.clone(),
        "image" => inbound
            .attachments
            .extend(media(AttachmentKind::Image, &message.image)),
        "video" => inbound
            .attachments
            .extend(media(AttachmentKind::Video, &message.video)),
        "document" => inbound
            .attachments
            .extend(media(AttachmentKind::Document, &message.document)),
        "sticker" => inbound
            .attachments
            .extend(media(AttachmentKind::Sticker, &message.sticker)),
        "audio" | "voice" => {
            let audio = message.audio.as_ref().or(message.voice.as_ref());
            let kind = if message.kind == "voice" || audio.is_some_and(|a| a.voice) {
                AttachmentKind::Voice
            } else {
                AttachmentKind::Audio
            };
            inbound.attachments.extend(media(kind, &audio.cloned()));
        }
        "location" => {
            let location = message.location.as_ref()?;
            inbound
                .attachments
                .push(structured(AttachmentKind::Location {
                    latitude: location.latitude,
                    longitude: location.longitude,
                }));
        }
        "contacts" => {
            for contact in &message.contacts {
                let phone = contact
                    .phones
                    .first()
                    .map(|phone| phone.phone.clone())
                    .unwrap_or_default();
                inbound
                    .attachments
                    .push(structured(AttachmentKind::Contact {
                        name: contact.name.formatted_name.clone(),
                        phone,
                    }));
            }
        }
        "interactive" => {
            let interactive = message.interactive.as_ref()?;
            let reply = interactive
                .button_reply
                .as_ref()
                .or(interactive.list_reply.as_ref())?;
            inbound.text = reply.id.clone();
            inbound.callback_id = Some(message.id.clone());
        }
        "button" => {
            let button = message.button.as_ref()?;
            inbound.text = button
                .payload
                .clone()
                .unwrap_or_else(|| button.text.clone());
            inbound.callback_id = Some(message.id.clone());
        }
        _ => return None,
    }
    if let Some(caption) = [&message.image, &message.video, &message.document]
        .into_iter()
        .flatten()
        .find_map(|media| media.caption.clone())
    {
        inbound.text = caption;
    }
    if inbound.text.is_empty() && inbound.attachments.is_empty() {
        return None;
    }
    Some(inbound)
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

fn status_update(status: &Status) -> Option<StatusUpdate> {
    let mapped = match status.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        other => {
            tracing::debug!(status = other, "whatsapp webhook: status skipped");
            return None;
        }
    };
    let reasons: Vec<String> = status
        .errors
        .iter()
        .map(|error| {
            let title = error
                .title
                .clone()
                .or(error.message.clone())
                .unwrap_or_default();
            match error.code {
                Some(code) => format!("{title} (code {code})"),
                None => title,
            }
        })
        .filter(|reason| !reason.is_empty())
        .collect();
    Some(StatusUpdate {
        provider_message_id: status.id.clone(),
        status: mapped,
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
    })
}

// The wire types: only what the mapping reads; unknown fields are ignored, as Meta adds them.

#[derive(Deserialize)]
struct Payload {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    value: ChangeValue,
}

#[derive(Deserialize)]
struct ChangeValue {
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: String,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Message {
    id: String,
    from: String,
    #[serde(default)]
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    text: Option<Text>,
    image: Option<Media>,
    video: Option<Media>,
    audio: Option<Media>,
    voice: Option<Media>,
    document: Option<Media>,
    sticker: Option<Media>,
    location: Option<Location>,
    #[serde(default)]
    contacts: Vec<SharedContact>,
    interactive: Option<Interactive>,
    button: Option<TemplateButton>,
}

#[derive(Deserialize)]
struct Text {
    body: String,
}

#[derive(Clone, Deserialize)]
struct Media {
    id: String,
    mime_type: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    #[serde(default)]
    voice: bool,
}

#[derive(Deserialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Deserialize)]
struct SharedContact {
    name: SharedContactName,
    #[serde(default)]
    phones: Vec<SharedPhone>,
}

#[derive(Deserialize)]
struct SharedContactName {
    #[serde(default)]
    formatted_name: String,
}

#[derive(Deserialize)]
struct SharedPhone {
    #[serde(default)]
    phone: String,
}

#[derive(Deserialize)]
struct Interactive {
    button_reply: Option<Choice>,
    list_reply: Option<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    id: String,
}

#[derive(Deserialize)]
struct TemplateButton {
    #[serde(default)]
    text: String,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::signing::hmac_sha256_hex;

    fn post<'a>(body: &'a [u8], signature: Option<String>) -> WebhookRequest<'a> {
        WebhookRequest::new(
            "POST",
            "",
            signature.map(|s| ("X-Hub-Signature-256".to_string(), s)),
            body,
        )
    }

    #[test]
    fn signatures_are_checked_on_the_raw_bytes() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = format!("sha256={}", hmac_sha256_hex(b"app-secret", body));
        assert!(verify_signature(&post(body, Some(good.clone())), "app-secret").is_ok());
        assert_eq!(
            verify_signature(&post(body, Some(good.replace("sha256=", ""))), "app-secret"),
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(
            verify_signature(&post(b"{}", Some(good)), "app-secret"),
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(
            verify_signature(&post(body, None), "app-secret"),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn handshake_needs_our_token() {
        let get = |query: &'static str| WebhookRequest::new("GET", query, [], b"");
        assert_eq!(
            handshake(
                &get("hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1158201444"),
                "tok"
            ),
            Ok(WebhookReply::Handshake {
                body: "1158201444".into()
            })
        );
        assert_eq!(
            handshake(
                &get("hub.mode=subscribe&hub.verify_token=tik&hub.challenge=1"),
                "tok"
            ),
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(
            handshake(
                &get("hub.mode=unsubscribe&hub.verify_token=tok&hub.challenge=1"),
                "tok"
            ),
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(
            handshake(
                &get("hub.mode=subscribe&hub.verify_token=&hub.challenge=1"),
                ""
            ),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn other_numbers_and_unknown_kinds_are_skipped() {
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [
                {"field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "1", "phone_number_id": "OTHER"},
                    "messages": [{"from": "1", "id": "wamid.other", "timestamp": "1", "type": "text",
                        "text": {"body": "not ours"}}]}},
                {"field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "1", "phone_number_id": "OURS"},
                    "messages": [{"from": "1", "id": "wamid.r", "timestamp": "1", "type": "reaction",
                        "reaction": {"message_id": "wamid.x", "emoji": "👍"}}],
                    "statuses": [{"id": "wamid.s", "status": "deleted", "timestamp": "1",
                        "recipient_id": "1"}]}}]}]});
        let updates = parse(body.to_string().as_bytes(), "OURS").unwrap();
        assert_eq!(updates, []);
        assert!(matches!(
            parse(br#"{"object":"page","entry":[]}"#, "OURS"),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"[", "OURS"),
            Err(WebhookError::Malformed(_))
        ));
    }
}
