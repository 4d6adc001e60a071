//! The webhook bodies Meta sends, shaped after the examples of Meta's OpenAPI
//! (`/whatsapp/webhooks`): a scripted customer's messages and the statuses of what the business
//! sent, each wrapped in `object` / `entry[]` / `changes[]` / `value`.

use serde_json::{Value, json};

/// The customer the fake plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The WhatsApp id (the phone number in international form without `+`).
    pub wa_id: String,
    /// The profile name WhatsApp shows.
    pub name: String,
}

impl Customer {
    pub fn new(wa_id: impl Into<String>, name: impl Into<String>) -> Customer {
        Customer {
            wa_id: wa_id.into(),
            name: name.into(),
        }
    }
}

/// What the customer sends.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomerMessage {
    Text(String),
    Image {
        caption: Option<String>,
        mime_type: String,
        bytes: Vec<u8>,
    },
    Video {
        caption: Option<String>,
        bytes: Vec<u8>,
    },
    /// `voice` for a recorded voice note (Meta marks it `voice: true`).
    Audio {
        voice: bool,
        bytes: Vec<u8>,
    },
    Document {
        file_name: String,
        caption: Option<String>,
        mime_type: String,
        bytes: Vec<u8>,
    },
    Sticker {
        bytes: Vec<u8>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: String,
        address: String,
    },
    Contact {
        formatted_name: String,
        phone: String,
    },
    /// A press on one of the business's reply buttons.
    ButtonReply {
        id: String,
        title: String,
    },
    /// A pick from the business's list.
    ListReply {
        id: String,
        title: String,
    },
    /// A press on a template's quick-reply button.
    TemplateButton {
        text: String,
        payload: String,
    },
}

impl CustomerMessage {
    /// The media the message carries, as (MIME type, bytes), for the fake to store.
    pub fn media(&self) -> Option<(String, Vec<u8>)> {
        match self {
            CustomerMessage::Image {
                mime_type, bytes, ..
            }
            | CustomerMessage::Document {
                mime_type, bytes, ..
            } => Some((mime_type.clone(), bytes.clone())),
            CustomerMessage::Video { bytes, .. } => Some(("video/mp4".into(), bytes.clone())),
            CustomerMessage::Audio { bytes, .. } => {
                Some(("audio/ogg; codecs=opus".into(), bytes.clone()))
            }
            CustomerMessage::Sticker { bytes } => Some(("image/webp".into(), bytes.clone())),
            _ => None,
        }
    }
}

/// Where a webhook comes from: the business account and its number.
#[derive(Clone, Debug)]
pub struct Business {
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
}

/// `messages[0]` of a webhook for `message`, whose media (if any) has `media_id`.
pub fn message(
    wamid: &str,
    customer: &Customer,
    message: &CustomerMessage,
    media_id: Option<&str>,
    timestamp: i64,
) -> Value {
    let mut body = json!({"from": customer.wa_id, "id": wamid, "timestamp": timestamp.to_string()});
    let media = |mime: &str, sha: &[u8]| json!({"mime_type": mime, "sha256": sha256_base64(sha), "id": media_id.unwrap_or_default()});
    let (kind, content) = match message {
        CustomerMessage::Text(text) => ("text", json!({"body": text})),
        CustomerMessage::Image {
            caption,
            mime_type,
            bytes,
        } => {
            let mut image = media(mime_type, bytes);
            if let Some(caption) = caption {
                image["caption"] = json!(caption);
            }
            ("image", image)
        }
        CustomerMessage::Video { caption, bytes } => {
            let mut video = media("video/mp4", bytes);
            if let Some(caption) = caption {
                video["caption"] = json!(caption);
            }
            ("video", video)
        }
        CustomerMessage::Audio { voice, bytes } => {
            let mut audio = media("audio/ogg; codecs=opus", bytes);
            audio["voice"] = json!(voice);
            ("audio", audio)
        }
        CustomerMessage::Document {
            file_name,
            caption,
            mime_type,
            bytes,
        } => {
            let mut document = media(mime_type, bytes);
            document["filename"] = json!(file_name);
            if let Some(caption) = caption {
                document["caption"] = json!(caption);
            }
            ("document", document)
        }
        CustomerMessage::Sticker { bytes } => {
            let mut sticker = media("image/webp", bytes);
            sticker["animated"] = json!(false);
            ("sticker", sticker)
        }
        CustomerMessage::Location {
            latitude,
            longitude,
            name,
            address,
        } => (
            "location",
            json!({"latitude": latitude, "longitude": longitude, "name": name, "address": address}),
        ),
        CustomerMessage::Contact {
            formatted_name,
            phone,
        } => {
            body["contacts"] = json!([{"name": {"formatted_name": formatted_name,
                "first_name": formatted_name}, "phones": [{"phone": phone, "type": "MOBILE"}]}]);
            body["type"] = json!("contacts");
            return body;
        }
        CustomerMessage::ButtonReply { id, title } => (
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": id, "title": title}}),
        ),
        CustomerMessage::ListReply { id, title } => (
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": id, "title": title}}),
        ),
        CustomerMessage::TemplateButton { text, payload } => {
            ("button", json!({"text": text, "payload": payload}))
        }
    };
    body["type"] = json!(kind);
    body[kind] = content;
    body
}

/// A webhook body carrying one customer message.
pub fn message_webhook(business: &Business, customer: &Customer, message: Value) -> Value {
    wrap(
        business,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(business),
            "contacts": [{"profile": {"name": customer.name}, "wa_id": customer.wa_id}],
            "messages": [message],
        }),
    )
}

/// A webhook body carrying one status of a message the business sent to `recipient`.
pub fn status_webhook(
    business: &Business,
    wamid: &str,
    recipient: &str,
    status: &str,
    error: Option<(i64, &str)>,
    timestamp: i64,
) -> Value {
    let mut entry = json!({"id": wamid, "status": status, "timestamp": timestamp.to_string(),
        "recipient_id": recipient});
    if status != "failed" && status != "read" {
        entry["conversation"] = json!({"id": format!("conv-{recipient}"),
            "origin": {"type": "service"}});
        entry["pricing"] = json!({"billable": true, "pricing_model": "PMP",
            "category": "service", "type": "regular"});
    }
    if let Some((code, title)) = error {
        entry["errors"] = json!([status_error(code, title, title)]);
    }
    wrap(
        business,
        json!({"messaging_product": "whatsapp", "metadata": metadata(business), "statuses": [entry]}),
    )
}

/// One `errors[]` entry of a status (Meta's `StatusError`).
pub fn status_error(code: i64, title: &str, details: &str) -> Value {
    json!({"code": code, "title": title, "message": title, "error_data": {"details": details},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"})
}

/// The error Meta reports, in a `failed` status, for a marketing template to a customer who
/// chose to stop receiving marketing messages from the business (code 131050).
pub fn marketing_opt_out_error() -> Value {
    status_error(
        MARKETING_OPT_OUT,
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing \
         messages on WhatsApp from your business.",
        "The recipient has opted out of marketing messages from this business.",
    )
}

/// Meta's code for a marketing message to a customer who opted out of them.
pub const MARKETING_OPT_OUT: i64 = 131050;

/// A `failed` status with these `errors[]` entries.
pub fn failed_status_webhook(
    business: &Business,
    wamid: &str,
    recipient: &str,
    errors: Vec<Value>,
    timestamp: i64,
) -> Value {
    let entry = json!({"id": wamid, "status": "failed", "timestamp": timestamp.to_string(),
        "recipient_id": recipient, "errors": errors});
    wrap(
        business,
        json!({"messaging_product": "whatsapp", "metadata": metadata(business), "statuses": [entry]}),
    )
}

fn metadata(business: &Business) -> Value {
    json!({"display_phone_number": business.display_phone_number,
        "phone_number_id": business.phone_number_id})
}

fn wrap(business: &Business, value: Value) -> Value {
    json!({"object": "whatsapp_business_account",
        "entry": [{"id": business.waba_id, "changes": [{"value": value, "field": "messages"}]}]})
}

/// Meta gives media hashes as base64 SHA-256.
pub fn sha256_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}
