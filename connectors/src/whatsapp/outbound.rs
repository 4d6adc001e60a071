//! The bodies of `POST /{phone-number-id}/messages`, built from an [`OutboundMessage`] without
//! any IO, and WhatsApp's 24-hour customer-service window.
//!
//! How an omnihub message becomes WhatsApp messages:
//! - a template goes alone, as a `template` message whose body parameters are
//!   [`Template::parameters`]; it is the only kind allowed outside the window;
//! - each attachment becomes one media message (image, video, audio, sticker or document,
//!   chosen by MIME type) sending the id the upload returned; the text rides as the caption of
//!   the first attachment that takes one, when there are no buttons and it fits;
//! - otherwise the text goes as a `text` message, or, with buttons, as an `interactive` one:
//!   reply buttons for up to three choices, a list for up to ten. Buttons that open a URL have no
//!   reply-button equivalent, so their label and URL are appended to the text;
//! - `reply_to` becomes `context.message_id` of the first message.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::{Button, OutboundAttachment, OutboundMessage, SendError, Template};

/// WhatsApp's customer-service window: free-form messages only this long after the customer's
/// last message.
pub const REPLY_WINDOW: TimeDelta = TimeDelta::hours(24);
/// The prefix of the reason a free-form message outside the window is refused with; the console
/// recognises it and offers a template.
pub const OUTSIDE_WINDOW: &str = "outside_24h_window";

const MAX_REPLY_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_LIST_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_CHOICE_ID: usize = 200;
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_CAPTION: usize = 1024;

/// Refuses a free-form message when the customer has not written in the last 24 hours (or
/// never): WhatsApp would refuse it with error 131047 anyway, after a round trip.
pub fn check_window(message: &OutboundMessage, now: DateTime<Utc>) -> Result<(), SendError> {
    if message.template.is_some() {
        return Ok(());
    }
    match message.last_inbound_at {
        Some(last) if now - last <= REPLY_WINDOW => Ok(()),
        Some(last) => Err(SendError::Permanent {
            reason: format!(
                "{OUTSIDE_WINDOW}: the customer last wrote at {}, more than 24 hours ago; \
                 only a template message can be sent",
                last.format("%Y-%m-%d %H:%M UTC")
            ),
        }),
        None => Err(SendError::Permanent {
            reason: format!(
                "{OUTSIDE_WINDOW}: the customer has not written yet; only a template message \
                 can be sent"
            ),
        }),
    }
}

/// The WhatsApp media type an attachment is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Sticker,
    Document,
}

impl MediaKind {
    /// By MIME type, as WhatsApp accepts them: JPEG and PNG images, WebP stickers, MP4 and 3GPP
    /// video, audio of any kind; everything else goes as a document.
    pub fn of(attachment: &OutboundAttachment) -> MediaKind {
        let mime = attachment.mime_type.to_ascii_lowercase();
        match mime.as_str() {
            "image/jpeg" | "image/png" => MediaKind::Image,
            "image/webp" => MediaKind::Sticker,
            "video/mp4" | "video/3gpp" => MediaKind::Video,
            _ if mime.starts_with("audio/") => MediaKind::Audio,
            _ => MediaKind::Document,
        }
    }

    pub fn wire_name(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Sticker => "sticker",
            MediaKind::Document => "document",
        }
    }

    fn takes_caption(self) -> bool {
        matches!(
            self,
            MediaKind::Image | MediaKind::Video | MediaKind::Document
        )
    }
}

/// The body of a template message.
pub fn template_body(message: &OutboundMessage, template: &Template) -> Value {
    let mut body = json!({
        "name": template.name,
        "language": {"policy": "deterministic", "code": template.language},
    });
    if !template.parameters.is_empty() {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|text| json!({"type": "text", "text": text}))
            .collect();
        body["components"] = json!([{"type": "body", "parameters": parameters}]);
    }
    let mut envelope = envelope(message, "template");
    envelope["template"] = body;
    with_context(envelope, message.reply_to.as_deref())
}

/// The bodies of a free-form message, in sending order; `media_ids[i]` is the uploaded id of
/// `message.attachments[i]`.
pub fn free_form_bodies(
    message: &OutboundMessage,
    media_ids: &[String],
    list_button_label: &str,
) -> Result<Vec<Value>, SendError> {
    let mut bodies = Vec::new();
    let has_buttons = message.keyboard.iter().any(|row| !row.is_empty());
    let mut text_sent = message.text.is_empty();
    for (attachment, media_id) in message.attachments.iter().zip(media_ids) {
        let kind = MediaKind::of(attachment);
        let mut media = json!({"id": media_id});
        if kind == MediaKind::Document && !attachment.file_name.is_empty() {
            media["filename"] = json!(attachment.file_name);
        }
        if !text_sent
            && !has_buttons
            && kind.takes_caption()
            && message.text.chars().count() <= MAX_CAPTION
        {
            media["caption"] = json!(message.text);
            text_sent = true;
        }
        let mut body = envelope(message, kind.wire_name());
        body[kind.wire_name()] = media;
        bodies.push(body);
    }
    if !text_sent || has_buttons {
        bodies.push(text_or_interactive(message, list_button_label)?);
    }
    if let Some(first) = bodies.first_mut() {
        *first = with_context(first.take(), message.reply_to.as_deref());
    }
    Ok(bodies)
}

fn text_or_interactive(message: &OutboundMessage, list_label: &str) -> Result<Value, SendError> {
    let buttons: Vec<&Button> = message.keyboard.iter().flatten().collect();
    let (links, choices): (Vec<&Button>, Vec<&Button>) =
        buttons.into_iter().partition(|button| button.url.is_some());
    let mut text = message.text.clone();
    for link in &links {
        if let Some(url) = &link.url {
            text.push_str(&format!("\n\n{}: {url}", link.text));
        }
    }
    let text = text.trim_start().to_string();
    if choices.is_empty() {
        let mut body = envelope(message, "text");
        let preview = text.contains("https://") || text.contains("http://");
        body["text"] = json!({"body": text, "preview_url": preview});
        return Ok(body);
    }
    if text.is_empty() {
        return Err(permanent("a WhatsApp message with buttons needs text"));
    }
    if text.chars().count() > MAX_INTERACTIVE_BODY {
        return Err(permanent(&format!(
            "a WhatsApp message with buttons holds at most {MAX_INTERACTIVE_BODY} characters"
        )));
    }
    let ids = choices
        .iter()
        .map(|button| choice_id(button))
        .collect::<Result<Vec<_>, _>>()?;
    let interactive = if choices.len() <= MAX_REPLY_BUTTONS {
        let buttons: Vec<Value> = choices
            .iter()
            .zip(&ids)
            .map(|(button, id)| {
                json!({"type": "reply", "reply": {"id": id, "title": cut(&button.text, MAX_BUTTON_TITLE)}})
            })
            .collect();
        json!({"type": "button", "body": {"text": text}, "action": {"buttons": buttons}})
    } else if choices.len() <= MAX_LIST_ROWS {
        let rows: Vec<Value> = choices
            .iter()
            .zip(&ids)
            .map(|(button, id)| {
                let mut row = json!({"id": id, "title": cut(&button.text, MAX_ROW_TITLE)});
                if button.text.chars().count() > MAX_ROW_TITLE {
                    // The whole label stays readable under the shortened title.
                    row["description"] = json!(cut(&button.text, MAX_ROW_DESCRIPTION));
                }
                row
            })
            .collect();
        json!({"type": "list", "body": {"text": text},
               "action": {"button": cut(list_label, MAX_BUTTON_TITLE), "sections": [{"rows": rows}]}})
    } else {
        return Err(permanent(&format!(
            "WhatsApp shows at most {MAX_LIST_ROWS} choices under a message, this one has {}",
            choices.len()
        )));
    };
    let mut body = envelope(message, "interactive");
    body["interactive"] = interactive;
    Ok(body)
}

/// The id WhatsApp sends back when the choice is picked: the payload, or the label.
fn choice_id(button: &Button) -> Result<String, SendError> {
    let id = button
        .payload
        .clone()
        .unwrap_or_else(|| button.text.clone());
    if id.is_empty() || id.chars().count() > MAX_CHOICE_ID {
        return Err(permanent(&format!(
            "a WhatsApp button payload must be 1 to {MAX_CHOICE_ID} characters"
        )));
    }
    Ok(id)
}

fn envelope(message: &OutboundMessage, kind: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.conversation,
        "type": kind,
    })
}

fn with_context(mut body: Value, reply_to: Option<&str>) -> Value {
    if let Some(id) = reply_to.filter(|id| !id.is_empty()) {
        body["context"] = json!({"message_id": id});
    }
    body
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

fn permanent(reason: &str) -> SendError {
    SendError::Permanent {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use omnihub_core::MessageId;

    use super::*;

    fn message(text: &str) -> OutboundMessage {
        OutboundMessage::text(MessageId::new(), "79990001122", text, "key")
    }

    fn button(text: &str, payload: &str) -> Button {
        Button {
            text: text.into(),
            payload: Some(payload.into()),
            url: None,
        }
    }

    #[test]
    fn the_window_is_24_hours_from_the_last_inbound_message() {
        let now = Utc::now();
        let mut m = message("hi");
        assert!(
            check_window(&m, now)
                .unwrap_err()
                .to_string()
                .contains(OUTSIDE_WINDOW)
        );
        m.last_inbound_at = Some(now - TimeDelta::hours(23));
        assert!(check_window(&m, now).is_ok());
        m.last_inbound_at = Some(now - TimeDelta::hours(24) - TimeDelta::seconds(1));
        let SendError::Permanent { reason } = check_window(&m, now).unwrap_err() else {
            panic!("expected permanent");
        };
        assert!(reason.starts_with("outside_24h_window:"), "{reason}");
        m.template = Some(Template {
            name: "order_ready".into(),
            language: "ru".into(),
            parameters: vec![],
        });
        assert!(check_window(&m, now).is_ok());
    }

    #[test]
    fn text_with_reply_context() {
        let mut m = message("Добрый день");
        m.reply_to = Some("wamid.ABC".into());
        let bodies = free_form_bodies(&m, &[], "Options").unwrap();
        assert_eq!(
            bodies,
            [
                json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "79990001122", "type": "text",
                "text": {"body": "Добрый день", "preview_url": false},
                "context": {"message_id": "wamid.ABC"}})
            ]
        );
    }

    #[test]
    fn three_choices_are_reply_buttons_more_are_a_list() {
        let mut m = message("Choose");
        m.keyboard = vec![
            vec![
                button("Yes", "y"),
                button("A very long button label indeed", "n"),
            ],
            vec![button("Maybe", "m")],
        ];
        let body = &free_form_bodies(&m, &[], "Options").unwrap()[0];
        assert_eq!(body["type"], "interactive");
        assert_eq!(body["interactive"]["type"], "button");
        let buttons = body["interactive"]["action"]["buttons"].as_array().unwrap();
        assert_eq!(buttons.len(), 3);
        assert_eq!(buttons[1]["reply"]["id"], "n");
        assert_eq!(
            buttons[1]["reply"]["title"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            20
        );

        m.keyboard.push(vec![button("Later", "l")]);
        let body = &free_form_bodies(&m, &[], "Options").unwrap()[0];
        assert_eq!(body["interactive"]["type"], "list");
        assert_eq!(body["interactive"]["action"]["button"], "Options");
        let rows = body["interactive"]["action"]["sections"][0]["rows"]
            .as_array()
            .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1]["description"], "A very long button label indeed");

        m.keyboard = vec![(0..11).map(|i| button("x", &i.to_string())).collect()];
        assert!(
            !free_form_bodies(&m, &[], "Options")
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn url_buttons_become_lines_of_text() {
        let mut m = message("Track it");
        m.keyboard = vec![vec![Button {
            text: "Order".into(),
            payload: None,
            url: Some("https://shop.example/o/1".into()),
        }]];
        let body = &free_form_bodies(&m, &[], "Options").unwrap()[0];
        assert_eq!(body["type"], "text");
        assert_eq!(
            body["text"]["body"],
            "Track it\n\nOrder: https://shop.example/o/1"
        );
        assert_eq!(body["text"]["preview_url"], true);
    }

    #[test]
    fn attachments_carry_the_text_as_a_caption_when_they_can() {
        let file = |name: &str, mime: &str| OutboundAttachment {
            file_name: name.into(),
            mime_type: mime.into(),
            bytes: Arc::from(&b"x"[..]),
            public_url: None,
        };
        let mut m = message("Your invoice");
        m.reply_to = Some("wamid.Q".into());
        m.attachments = vec![
            file("a.ogg", "audio/ogg"),
            file("inv.pdf", "application/pdf"),
        ];
        let ids = ["1".to_string(), "2".to_string()];
        let bodies = free_form_bodies(&m, &ids, "Options").unwrap();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["audio"], json!({"id": "1"}));
        assert_eq!(bodies[0]["context"]["message_id"], "wamid.Q");
        assert_eq!(
            bodies[1]["document"],
            json!({"id": "2", "filename": "inv.pdf", "caption": "Your invoice"})
        );
        assert!(bodies[1].get("context").is_none());

        // With buttons the text goes last, as the interactive message.
        m.keyboard = vec![vec![button("Pay", "pay")]];
        let bodies = free_form_bodies(&m, &ids, "Options").unwrap();
        assert_eq!(bodies.len(), 3);
        assert!(bodies[1]["document"].get("caption").is_none());
        assert_eq!(bodies[2]["type"], "interactive");
    }

    #[test]
    fn templates_fill_the_body_parameters() {
        let mut m = message("shown in history only");
        let template = Template {
            name: "order_ready".into(),
            language: "ru".into(),
            parameters: vec!["42".into(), "завтра".into()],
        };
        m.template = Some(template.clone());
        let body = template_body(&m, &template);
        assert_eq!(body["type"], "template");
        assert_eq!(
            body["template"],
            json!({"name": "order_ready", "language": {"policy": "deterministic", "code": "ru"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "42"}, {"type": "text", "text": "завтра"}]}]})
        );
    }
}
