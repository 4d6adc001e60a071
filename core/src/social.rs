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
pub const MAX_PLACE_CHARS: usize = 500;

/// Where a post is: a point on the map, a place of a network's catalogue, or both (each
/// network takes what it can: VK the coordinates, Facebook, Instagram and X the place).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Degrees, -90 to 90; given with `longitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Degrees, -180 to 180; given with `latitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// The place's id on the network, or the address of its page there as copied from the
    /// browser (the network's connector reads the id out of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
}

impl Location {
    /// Latitude and longitude, when both are given.
    pub fn coordinates(&self) -> Option<(f64, f64)> {
        self.latitude.zip(self.longitude)
    }

    /// Checks the coordinates' ranges and the place's form; returns the place trimmed.
    fn checked(&self) -> Result<Location, InvalidPost> {
        let coordinates_ok = match (self.latitude, self.longitude) {
            (None, None) => true,
            (Some(latitude), Some(longitude)) => {
                (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude)
            }
            _ => false,
        };
        if !coordinates_ok {
            return Err(InvalidPost::Location);
        }
        let place = match &self.place {
            None => None,
            Some(place) => {
                let place = place.trim();
                if place.is_empty()
                    || place.chars().count() > MAX_PLACE_CHARS
                    || place.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(InvalidPost::Place);
                }
                Some(place.to_string())
            }
        };
        if place.is_none() && self.latitude.is_none() {
            return Err(InvalidPost::Location);
        }
        Ok(Location {
            place,
            ..self.clone()
        })
    }
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
            location: v.location.clone().or_else(|| self.location.clone()),
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
        if let Some(location) = &self.location {
            out.location = Some(location.checked()?);
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
    #[error("a location is a place, or a latitude (-90 to 90) with a longitude (-180 to 180)")]
    Location,
    #[error("a place is its id on the network or the address of its page there")]
    Place,
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
        let located = |latitude, longitude, place: Option<&str>| PostContent {
            location: Some(Location {
                latitude,
                longitude,
                place: place.map(str::to_string),
            }),
            ..PostContent::default()
        };
        assert_eq!(
            located(Some(91.0), Some(0.0), None).checked(),
            Err(InvalidPost::Location)
        );
        assert_eq!(
            located(Some(55.7), None, None).checked(),
            Err(InvalidPost::Location)
        );
        assert_eq!(
            located(None, None, None).checked(),
            Err(InvalidPost::Location)
        );
        for bad in ["", "  ", "two words", "a\u{0}b"] {
            assert_eq!(
                located(None, None, Some(bad)).checked(),
                Err(InvalidPost::Place),
                "{bad:?}"
            );
        }
        let place = located(None, None, Some(" https://x.com/places/5a110d312052166f "))
            .checked()
            .unwrap();
        assert_eq!(
            place.location.unwrap().place.as_deref(),
            Some("https://x.com/places/5a110d312052166f")
        );
        let both = located(Some(55.75), Some(37.62), Some("110843418940484"))
            .checked()
            .unwrap();
        assert_eq!(both.location.unwrap().coordinates(), Some((55.75, 37.62)));
    }

    #[test]
    fn stored_coordinates_still_read() {
        let content: PostContent =
            serde_json::from_str(r#"{"location":{"latitude":55.75,"longitude":37.62}}"#).unwrap();
        assert_eq!(
            content.location.unwrap().coordinates(),
            Some((55.75, 37.62))
        );
    }
}
