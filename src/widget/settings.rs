//! A widget's settings, as its owner edits them and as they are kept in the channel's
//! `settings` document: the origins allowed to use it, its appearance and greeting in Russian
//! and English, the pre-chat and offline forms, and links to the client's messengers.
//! Validation is strict (unknown fields, bad colours, non-HTTPS origins and links to other
//! hosts than the messenger's own are refused) because what is stored here is served to
//! every visitor's browser.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ApiResult};
use crate::i18n::Msg;

/// Most origins one widget may list.
pub const MAX_ORIGINS: usize = 50;
const MAX_GREETING_CHARS: usize = 500;
const MAX_TITLE_CHARS: usize = 100;
const MAX_URL_CHARS: usize = 300;

/// Everything an owner sets on a widget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    /// Origins (`https://shop.example`, with a port when not the default) whose pages may use
    /// the widget. Browsers send the page's origin; every other is refused, and CORS is
    /// answered only for these. `http://localhost` (any port) is allowed for development.
    pub origins: Vec<String>,
    #[serde(default)]
    pub appearance: Appearance,
    #[serde(default)]
    pub prechat: PrechatForm,
    #[serde(default)]
    pub offline: OfflineForm,
    #[serde(default)]
    pub messengers: Messengers,
    #[serde(default)]
    pub attachments: AttachmentRules,
}

/// Colours, corner and texts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Appearance {
    /// `#rrggbb`: the button, the header and the visitor's bubbles.
    pub accent_color: String,
    /// `#rrggbb`: text on the accent colour.
    pub text_color: String,
    pub position: Position,
    /// The chat window's title.
    pub title: Localized,
    /// The first line a visitor reads, before anyone writes.
    pub greeting: Localized,
}

impl Default for Appearance {
    fn default() -> Self {
        Appearance {
            accent_color: "#2563eb".into(),
            text_color: "#ffffff".into(),
            position: Position::BottomRight,
            title: Localized {
                ru: "Чат с нами".into(),
                en: "Chat with us".into(),
            },
            greeting: Localized {
                ru: "Здравствуйте! Чем можем помочь?".into(),
                en: "Hello! How can we help?".into(),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    BottomRight,
    BottomLeft,
}

/// A text in both languages the widget speaks; it picks the visitor's browser language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    pub ru: String,
    pub en: String,
}

/// Questions asked before the first message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PrechatForm {
    pub enabled: bool,
    pub fields: Vec<PrechatField>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrechatField {
    pub field: FieldKind,
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Name,
    Email,
    Phone,
}

/// What the widget shows when no operator is online: a form whose answer lands in the inbox
/// like any message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineForm {
    pub enabled: bool,
    pub message: Localized,
}

impl Default for OfflineForm {
    fn default() -> Self {
        OfflineForm {
            enabled: true,
            message: Localized {
                ru: "Сейчас никого нет на месте. Оставьте сообщение и контакты — мы ответим."
                    .into(),
                en: "Nobody is available right now. Leave a message and your contacts, and we will get back to you."
                    .into(),
            },
        }
    }
}

/// Links to the client's accounts in other messengers, offered as alternatives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Messengers {
    /// `https://t.me/…`
    pub telegram: Option<String>,
    /// `https://wa.me/…`
    pub whatsapp: Option<String>,
    /// `https://vk.com/…` or `https://vk.me/…`
    pub vk: Option<String>,
    /// `https://max.ru/…`
    pub max: Option<String>,
}

/// Files visitors may attach: how large and of which types (judged by their content, not by
/// what the browser declares). Operators' files reach visitors whatever these say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentRules {
    pub enabled: bool,
    /// The largest file, in bytes (1 byte – 100 MiB); the server's `[media] max_upload_bytes`
    /// caps it too.
    pub max_bytes: u64,
    /// MIME types taken (`image/png`), or whole families (`image/*`). Pages, scripts and
    /// programs are never taken, whatever is listed.
    pub types: Vec<String>,
}

/// The largest `attachments.max_bytes` an owner may set.
pub const MAX_ATTACHMENT_BYTES: u64 = 100 * 1024 * 1024;
const MAX_ATTACHMENT_TYPES: usize = 50;

impl Default for AttachmentRules {
    fn default() -> Self {
        AttachmentRules {
            enabled: true,
            max_bytes: 10 * 1024 * 1024,
            types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

fn invalid(msg: Msg) -> ApiError {
    ApiError::Validation(msg)
}

/// `scheme://host[:port]` of an origin, lower-cased and without a default port; `None` when
/// the text is not an origin (a path, a query, user info, another scheme).
pub fn normalize_origin(raw: &str) -> Option<String> {
    let url = reqwest::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || !matches!(url.path(), "" | "/")
    {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

fn color(field: &'static str, value: &str) -> ApiResult<()> {
    let ok = value.len() == 7
        && value.starts_with('#')
        && value[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(invalid(Msg::WidgetColor {
            field,
            value: value.to_string(),
        }))
    }
}

fn localized(field: &'static str, value: &Localized, max: usize) -> ApiResult<()> {
    for text in [&value.ru, &value.en] {
        let n = text.chars().count();
        if n > max || text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid(Msg::WidgetText { field, max }));
        }
    }
    Ok(())
}

fn messenger_link(
    field: &'static str,
    value: &Option<String>,
    hosts: &[&str],
    named: &'static str,
) -> ApiResult<()> {
    let Some(link) = value else {
        return Ok(());
    };
    let bad = || {
        invalid(Msg::WidgetLink {
            field,
            hosts: named,
        })
    };
    let url = reqwest::Url::parse(link).map_err(|_| bad())?;
    let host_ok = url.host_str().is_some_and(|h| hosts.contains(&h));
    if url.scheme() != "https" || !host_ok || link.chars().count() > MAX_URL_CHARS {
        return Err(bad());
    }
    Ok(())
}

/// Checks the files rule: a size within bounds, well-formed types (lower-cased, without
/// duplicates) and none that would run in a browser or as a program.
fn attachment_rules(mut rules: AttachmentRules) -> ApiResult<AttachmentRules> {
    if rules.max_bytes == 0 || rules.max_bytes > MAX_ATTACHMENT_BYTES {
        return Err(invalid(Msg::WidgetAttachmentSize {
            max: MAX_ATTACHMENT_BYTES,
        }));
    }
    if rules.types.len() > MAX_ATTACHMENT_TYPES {
        return Err(invalid(Msg::WidgetTooMany {
            field: "attachments.types",
            max: MAX_ATTACHMENT_TYPES,
        }));
    }
    let mut types: Vec<String> = Vec::with_capacity(rules.types.len());
    for raw in &rules.types {
        let bad = || {
            invalid(Msg::WidgetAttachmentType {
                value: raw.chars().take(100).collect(),
            })
        };
        let family = raw.trim().strip_suffix("/*");
        // A family is checked as one of its members would be.
        let probe = family.map_or_else(|| raw.trim().to_string(), |f| format!("{f}/x"));
        let checked = omnihub_core::media::check_upload_type(&probe, "").map_err(|_| bad())?;
        if probe.contains(';') {
            return Err(bad());
        }
        let kept = match family {
            Some(f) => format!("{}/*", f.to_ascii_lowercase()),
            None => checked,
        };
        if !types.contains(&kept) {
            types.push(kept);
        }
    }
    rules.types = types;
    Ok(rules)
}

impl WidgetSettings {
    /// Checks every field and normalizes the origins (lower case, no default port, no
    /// duplicates).
    pub fn validated(mut self) -> ApiResult<WidgetSettings> {
        if self.origins.len() > MAX_ORIGINS {
            return Err(invalid(Msg::WidgetTooMany {
                field: "origins",
                max: MAX_ORIGINS,
            }));
        }
        let mut origins = Vec::with_capacity(self.origins.len());
        for raw in &self.origins {
            let bad = || {
                invalid(Msg::WidgetOrigin {
                    value: raw.to_string(),
                })
            };
            let origin = normalize_origin(raw).ok_or_else(bad)?;
            let local = reqwest::Url::parse(&origin)
                .ok()
                .and_then(|u| u.host_str().map(|h| h == "localhost" || h == "127.0.0.1"))
                .unwrap_or(false);
            if !origin.starts_with("https://") && !local {
                return Err(bad());
            }
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        self.origins = origins;
        let a = &self.appearance;
        color("appearance.accent_color", &a.accent_color)?;
        color("appearance.text_color", &a.text_color)?;
        localized("appearance.title", &a.title, MAX_TITLE_CHARS)?;
        localized("appearance.greeting", &a.greeting, MAX_GREETING_CHARS)?;
        localized("offline.message", &self.offline.message, MAX_GREETING_CHARS)?;
        let mut seen = Vec::new();
        for f in &self.prechat.fields {
            if seen.contains(&f.field) {
                return Err(invalid(Msg::WidgetDuplicateField));
            }
            seen.push(f.field);
        }
        let m = &self.messengers;
        messenger_link("messengers.telegram", &m.telegram, &["t.me"], "t.me")?;
        messenger_link("messengers.whatsapp", &m.whatsapp, &["wa.me"], "wa.me")?;
        messenger_link(
            "messengers.vk",
            &m.vk,
            &["vk.com", "vk.me"],
            "vk.com, vk.me",
        )?;
        messenger_link("messengers.max", &m.max, &["max.ru"], "max.ru")?;
        self.attachments = attachment_rules(self.attachments)?;
        Ok(self)
    }

    /// The settings a widget channel keeps; a document that no longer reads (edited through
    /// another path) allows no origin, so the widget is off rather than open.
    pub fn of_channel(settings: &serde_json::Value) -> WidgetSettings {
        serde_json::from_value(settings.clone()).unwrap_or_else(|_| WidgetSettings {
            origins: Vec::new(),
            appearance: Appearance::default(),
            prechat: PrechatForm::default(),
            offline: OfflineForm::default(),
            messengers: Messengers::default(),
            attachments: AttachmentRules::default(),
        })
    }

    pub fn allows(&self, origin: &str) -> bool {
        normalize_origin(origin).is_some_and(|o| self.origins.contains(&o))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(v: serde_json::Value) -> ApiResult<WidgetSettings> {
        serde_json::from_value::<WidgetSettings>(v)
            .unwrap()
            .validated()
    }

    #[test]
    fn origins_are_normalized_and_only_real_origins_pass() {
        let s = settings(json!({"origins": ["HTTPS://Shop.Example:443", "https://shop.example", "http://localhost:5173"]})).unwrap();
        assert_eq!(s.origins, ["https://shop.example", "http://localhost:5173"]);
        assert!(s.allows("https://shop.example"));
        assert!(s.allows("https://SHOP.example:443"));
        assert!(!s.allows("https://shop.example.evil"));
        assert!(!s.allows("http://shop.example"));
        assert!(!s.allows("null"));
        for bad in [
            "http://shop.example",
            "https://shop.example/path",
            "https://u:p@shop.example",
            "ftp://shop.example",
            "shop.example",
            "https://shop.example?x=1",
        ] {
            assert!(settings(json!({"origins": [bad]})).is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_links_and_forms_are_checked() {
        assert!(settings(json!({"origins": [], "appearance": {"accent_color": "red"}})).is_err());
        assert!(
            settings(json!({"origins": [], "messengers": {"telegram": "https://evil.example/x"}}))
                .is_err()
        );
        assert!(
            settings(json!({"origins": [], "messengers": {"telegram": "http://t.me/shop"}}))
                .is_err()
        );
        assert!(settings(json!({"origins": [], "messengers": {"telegram": "https://t.me/shop", "vk": "https://vk.me/shop"}})).is_ok());
        assert!(
            settings(
                json!({"origins": [], "prechat": {"enabled": true, "fields": [
            {"field": "name", "required": true}, {"field": "name", "required": false}]}})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<WidgetSettings>(json!({"origins": [], "colour": 1})).is_err()
        );
        let long = "x".repeat(MAX_GREETING_CHARS + 1);
        assert!(
            settings(json!({"origins": [], "appearance": {"greeting": {"ru": long, "en": ""}}}))
                .is_err()
        );
    }

    #[test]
    fn file_rules_are_checked() {
        let s = settings(json!({"origins": []})).unwrap();
        assert!(s.attachments.enabled);
        assert!(s.attachments.types.iter().any(|t| t == "image/png"));
        let s = settings(json!({"origins": [], "attachments": {"max_bytes": 1024, "types": ["Image/*", "application/PDF", "image/*"]}})).unwrap();
        assert_eq!(s.attachments.types, ["image/*", "application/pdf"]);
        for bad in [
            json!({"max_bytes": 0}),
            json!({"max_bytes": MAX_ATTACHMENT_BYTES + 1}),
            json!({"types": ["text/html"]}),
            json!({"types": ["image/svg+xml"]}),
            json!({"types": ["nonsense"]}),
            json!({"types": ["text/plain; charset=utf-8"]}),
        ] {
            assert!(
                settings(json!({"origins": [], "attachments": bad})).is_err(),
                "{bad}"
            );
        }
    }
}
