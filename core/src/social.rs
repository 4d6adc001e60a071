//! Social posts as people write them: the content of a post and of its per-profile variants,
//! the checks every network shares (each network's own limits are the connector's), the
//! approval flow's statuses, and planning a post at a wall-clock time in a time zone.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest text of a post we accept from anyone (each network then has its own bound).
pub const MAX_TEXT_CHARS: usize = 65_536;
pub const MAX_HASHTAGS: usize = 30;
pub const MAX_MENTIONS: usize = 50;
pub const MAX_MEDIA: usize = 20;
pub const MAX_LINK_CHARS: usize = 2_000;
const MAX_TAG_CHARS: usize = 100;

/// A place on the map.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// Who may watch a video a network publishes with a privacy setting (YouTube's
/// `status.privacyStatus`); networks without one publish to the profile's audience.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VideoPrivacy {
    #[default]
    Public,
    /// Only people with the link.
    Unlisted,
    /// Only the channel's owner.
    Private,
}

impl VideoPrivacy {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoPrivacy::Public => "public",
            VideoPrivacy::Unlisted => "unlisted",
            VideoPrivacy::Private => "private",
        }
    }
}

/// What a file of the media library is, from its (sniffed) type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    pub fn of_mime(mime: &str) -> MediaKind {
        if mime.starts_with("video/") {
            MediaKind::Video
        } else {
            MediaKind::Image
        }
    }
}

/// What a post says. A profile's variant has the same shape and replaces the fields it sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// One link (networks that show a preview take one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Without `#`; letters, digits and `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashtags: Option<Vec<String>>,
    /// The network's ids or screen names of the people or pages mentioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Files of the client's media library, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Vec<uuid::Uuid>>,
    /// Who may watch the post's video, where the network has the setting (YouTube);
    /// `public` when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_privacy: Option<VideoPrivacy>,
}

impl PostContent {
    /// This content with the fields `variant` sets replaced.
    pub fn with_variant(&self, variant: Option<&PostContent>) -> PostContent {
        let Some(v) = variant else {
            return self.clone();
        };
        PostContent {
            text: v.text.clone().or_else(|| self.text.clone()),
            link: v.link.clone().or_else(|| self.link.clone()),
            hashtags: v.hashtags.clone().or_else(|| self.hashtags.clone()),
            mentions: v.mentions.clone().or_else(|| self.mentions.clone()),
            location: v.location.or(self.location),
            media: v.media.clone().or_else(|| self.media.clone()),
            video_privacy: v.video_privacy.or(self.video_privacy),
        }
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    pub fn hashtags(&self) -> &[String] {
        self.hashtags.as_deref().unwrap_or_default()
    }

    pub fn mentions(&self) -> &[String] {
        self.mentions.as_deref().unwrap_or_default()
    }

    pub fn media(&self) -> &[uuid::Uuid] {
        self.media.as_deref().unwrap_or_default()
    }

    /// Whether there is anything to publish.
    pub fn is_empty(&self) -> bool {
        self.text().trim().is_empty() && self.media().is_empty() && self.link.is_none()
    }

    /// Checks what every network needs; returns the content with text trimmed and `#`s
    /// dropped from hashtags.
    pub fn checked(&self) -> Result<PostContent, InvalidPost> {
        let mut out = self.clone();
        if let Some(text) = &self.text {
            let text = text.trim();
            let bad = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
            if text.chars().count() > MAX_TEXT_CHARS || text.chars().any(bad) {
                return Err(InvalidPost::Text {
                    max: MAX_TEXT_CHARS,
                });
            }
            out.text = Some(text.to_string());
        }
        if let Some(link) = &self.link {
            let link = link.trim();
            let scheme_ok = link.starts_with("https://") || link.starts_with("http://");
            if !scheme_ok
                || link.len() > MAX_LINK_CHARS
                || link.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(InvalidPost::Link);
            }
            out.link = Some(link.to_string());
        }
        if let Some(tags) = &self.hashtags {
            if tags.len() > MAX_HASHTAGS {
                return Err(InvalidPost::Hashtag);
            }
            let mut clean = Vec::with_capacity(tags.len());
            for tag in tags {
                let tag = tag.trim().trim_start_matches('#');
                let ok = !tag.is_empty()
                    && tag.chars().count() <= MAX_TAG_CHARS
                    && tag.chars().all(|c| c.is_alphanumeric() || c == '_');
                if !ok {
                    return Err(InvalidPost::Hashtag);
                }
                clean.push(tag.to_string());
            }
            out.hashtags = Some(clean);
        }
        if let Some(mentions) = &self.mentions {
            if mentions.len() > MAX_MENTIONS {
                return Err(InvalidPost::Mention);
            }
            let mut clean = Vec::with_capacity(mentions.len());
            for who in mentions {
                let who = who.trim().trim_start_matches('@');
                let ok = !who.is_empty()
                    && who.len() <= MAX_TAG_CHARS
                    && who
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
                if !ok {
                    return Err(InvalidPost::Mention);
                }
                clean.push(who.to_string());
            }
            out.mentions = Some(clean);
        }
        if let Some(place) = self.location {
            let ok = (-90.0..=90.0).contains(&place.latitude)
                && (-180.0..=180.0).contains(&place.longitude);
            if !ok {
                return Err(InvalidPost::Location);
            }
        }
        if self.media().len() > MAX_MEDIA {
            return Err(InvalidPost::Media { max: MAX_MEDIA });
        }
        Ok(out)
    }
}

/// What is wrong with a post's content.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InvalidPost {
    #[error("the text must be at most {max} characters without control characters")]
    Text { max: usize },
    #[error("the link must be one http(s) address")]
    Link,
    #[error("hashtags are letters, digits and `_`, at most 30 of them")]
    Hashtag,
    #[error("mentions are ids or screen names, at most 50 of them")]
    Mention,
    #[error("latitude is -90 to 90 and longitude -180 to 180")]
    Location,
    #[error("at most {max} files")]
    Media { max: usize },
    #[error("`{zone}` is not a time zone")]
    TimeZone { zone: String },
    #[error("that time does not exist in that time zone")]
    NoSuchLocalTime,
}

/// The statuses of a post, in the order of the approval flow.
pub mod status {
    pub const DRAFT: &str = "draft";
    pub const AWAITING_APPROVAL: &str = "awaiting_approval";
    pub const APPROVED: &str = "approved";
    pub const SCHEDULED: &str = "scheduled";
    pub const PUBLISHING: &str = "publishing";
    pub const PUBLISHED: &str = "published";
    pub const FAILED: &str = "failed";
    pub const DELETED: &str = "deleted";
}

/// The instant a wall-clock time in a time zone names. A time the clocks skip (spring
/// forward) does not exist; one they pass twice (fall back) is taken the first time.
pub fn local_instant(local: NaiveDateTime, zone: &str) -> Result<DateTime<Utc>, InvalidPost> {
    let tz: chrono_tz::Tz = zone.parse().map_err(|_| InvalidPost::TimeZone {
        zone: zone.chars().take(64).collect(),
    })?;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(InvalidPost::NoSuchLocalTime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    #[test]
    fn local_times_become_instants() {
        assert_eq!(
            local_instant(at("2026-11-28T10:00"), "Europe/Moscow")
                .unwrap()
                .to_rfc3339(),
            "2026-11-28T07:00:00+00:00"
        );
        // Berlin skips 02:00–03:00 on 2026-03-29 and passes 02:30 twice on 2026-10-25.
        assert_eq!(
            local_instant(at("2026-03-29T02:30"), "Europe/Berlin"),
            Err(InvalidPost::NoSuchLocalTime)
        );
        assert_eq!(
            local_instant(at("2026-10-25T02:30"), "Europe/Berlin")
                .unwrap()
                .to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
        assert!(matches!(
            local_instant(at("2026-01-01T00:00"), "Mars/Olympus"),
            Err(InvalidPost::TimeZone { .. })
        ));
    }

    #[test]
    fn variants_replace_only_what_they_set() {
        let base = PostContent {
            text: Some("base".into()),
            hashtags: Some(vec!["a".into()]),
            ..PostContent::default()
        };
        let variant = PostContent {
            text: Some("for VK".into()),
            ..PostContent::default()
        };
        let merged = base.with_variant(Some(&variant));
        assert_eq!(merged.text(), "for VK");
        assert_eq!(merged.hashtags(), ["a".to_string()]);
    }

    #[test]
    fn content_is_checked_and_cleaned() {
        let content = PostContent {
            text: Some("  hi \n".into()),
            hashtags: Some(vec!["#sale".into(), "весна_2026".into()]),
            mentions: Some(vec!["@club1".into()]),
            ..PostContent::default()
        };
        let clean = content.checked().unwrap();
        assert_eq!(clean.text(), "hi");
        assert_eq!(
            clean.hashtags(),
            ["sale".to_string(), "весна_2026".to_string()]
        );
        assert_eq!(clean.mentions(), ["club1".to_string()]);
        let bad_tag = PostContent {
            hashtags: Some(vec!["two words".into()]),
            ..PostContent::default()
        };
        assert_eq!(bad_tag.checked(), Err(InvalidPost::Hashtag));
        let bad_link = PostContent {
            link: Some("javascript:alert(1)".into()),
            ..PostContent::default()
        };
        assert_eq!(bad_link.checked(), Err(InvalidPost::Link));
        let bad_place = PostContent {
            location: Some(Location {
                latitude: 91.0,
                longitude: 0.0,
            }),
            ..PostContent::default()
        };
        assert_eq!(bad_place.checked(), Err(InvalidPost::Location));
    }
}
