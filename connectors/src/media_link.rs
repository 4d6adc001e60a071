//! Signed, expiring public links to an attachment, for providers that fetch outgoing media by
//! URL instead of taking an upload (Viber). A link is
//! `{public_url}/media/{client}/{attachment}/{file name}?exp={unix seconds}&sig={hex}`, where
//! `sig` is HMAC-SHA256 over `client/attachment/exp` keyed by a key derived from the server's
//! secret key: only omnihub can mint one, it names one file of one client, and it stops working
//! at `exp`. The file name is only there for the provider's eyes and is not signed.
//!
//! Files of the social media library (images and videos of posts, which Instagram and Facebook
//! fetch by URL) have links of their own, `{public_url}/media/social/{client}/{media}/{file name}`,
//! signed over `social/client/media/exp`, so a link to one kind of file never opens the other.

use chrono::{DateTime, Utc};
use omnihub_core::{AttachmentId, ClientId};
use reqwest::Url;

use crate::signing::{hmac_sha256, hmac_sha256_hex, verify_hmac_sha256_hex};

/// Mixed into the server's secret key, so this key serves nothing but media links.
const KEY_PURPOSE: &[u8] = b"omnihub media links v1";

/// Mints and checks media links. Cheap to clone.
#[derive(Clone)]
pub struct MediaLinks {
    base: Url,
    key: [u8; 32],
}

// Written by hand so that the key never reaches a log.
impl std::fmt::Debug for MediaLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLinks")
            .field("base", &self.base.as_str())
            .field("key", &"***")
            .finish()
    }
}

/// Why a link is refused. The HTTP layer answers every one the same way, so a caller without
/// a valid link learns nothing about which files exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// `sig` is not the signature of these ids and expiry.
    BadSignature,
    /// Signed, but `exp` has passed.
    Expired,
}

impl MediaLinks {
    /// `public_url` is where the server is reachable from outside (`[server] public_url`);
    /// `secret_key` the server's secret key bytes.
    pub fn new(public_url: &str, secret_key: &[u8]) -> Result<MediaLinks, String> {
        let base = Url::parse(public_url.trim_end_matches('/'))
            .map_err(|err| format!("the public URL is not a URL: {err}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err("the public URL must be http(s)".into());
        }
        let key = hmac_sha256(secret_key, KEY_PURPOSE);
        Ok(MediaLinks { base, key })
    }

    /// A link to `attachment` of `client` that works until `expires`.
    pub fn url(
        &self,
        client: ClientId,
        attachment: AttachmentId,
        file_name: &str,
        expires: DateTime<Utc>,
    ) -> String {
        let exp = expires.timestamp();
        let mut url = self.base.clone();
        let name = if file_name.is_empty() {
            "file"
        } else {
            file_name
        };
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "media",
                &client.to_string(),
                &attachment.to_string(),
                name,
            ]);
        }
        url.query_pairs_mut()
            .append_pair("exp", &exp.to_string())
            .append_pair("sig", &self.signature(client, attachment, exp));
        url.into()
    }

    /// Whether `sig` signs these ids and `exp`, and `exp` is still ahead of `now`. The
    /// signature is checked first, in constant time.
    pub fn verify(
        &self,
        client: ClientId,
        attachment: AttachmentId,
        exp: i64,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LinkRefusal> {
        let signed = signed_text(client, attachment, exp);
        if !verify_hmac_sha256_hex(&self.key, signed.as_bytes(), sig) {
            return Err(LinkRefusal::BadSignature);
        }
        if exp <= now.timestamp() {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }

    /// A link to the file `media` of `client`'s social media library, working until `expires`.
    pub fn social_url(
        &self,
        client: ClientId,
        media: uuid::Uuid,
        file_name: &str,
        expires: DateTime<Utc>,
    ) -> String {
        let exp = expires.timestamp();
        let mut url = self.base.clone();
        let name = if file_name.is_empty() {
            "file"
        } else {
            file_name
        };
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "media",
                "social",
                &client.to_string(),
                &media.to_string(),
                name,
            ]);
        }
        let signed = social_signed_text(client, media, exp);
        url.query_pairs_mut()
            .append_pair("exp", &exp.to_string())
            .append_pair("sig", &hmac_sha256_hex(&self.key, signed.as_bytes()));
        url.into()
    }

    /// As [`MediaLinks::verify`], for a social media library link.
    pub fn verify_social(
        &self,
        client: ClientId,
        media: uuid::Uuid,
        exp: i64,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LinkRefusal> {
        let signed = social_signed_text(client, media, exp);
        if !verify_hmac_sha256_hex(&self.key, signed.as_bytes(), sig) {
            return Err(LinkRefusal::BadSignature);
        }
        if exp <= now.timestamp() {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }

    fn signature(&self, client: ClientId, attachment: AttachmentId, exp: i64) -> String {
        hmac_sha256_hex(&self.key, signed_text(client, attachment, exp).as_bytes())
    }
}

fn signed_text(client: ClientId, attachment: AttachmentId, exp: i64) -> String {
    format!("{client}/{attachment}/{exp}")
}

fn social_signed_text(client: ClientId, media: uuid::Uuid, exp: i64) -> String {
    format!("social/{client}/{media}/{exp}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::Duration;

    use super::*;

    fn query(url: &str, name: &str) -> String {
        Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .into_owned()
    }

    #[test]
    fn a_link_verifies_until_it_expires_and_only_for_its_ids() {
        let links = MediaLinks::new("https://hub.example/base/", &[7u8; 32]).unwrap();
        let (client, attachment) = (ClientId::new(), AttachmentId::new());
        let now = Utc::now();
        let url = links.url(client, attachment, "отчёт 1.pdf", now + Duration::hours(1));
        assert!(url.starts_with(&format!(
            "https://hub.example/base/media/{client}/{attachment}/%D0%BE%D1%82%D1%87%D1%91%D1%82%201.pdf?exp="
        )));
        let exp: i64 = query(&url, "exp").parse().unwrap();
        let sig = query(&url, "sig");
        assert_eq!(links.verify(client, attachment, exp, &sig, now), Ok(()));
        assert_eq!(
            links.verify(client, attachment, exp, &sig, now + Duration::hours(2)),
            Err(LinkRefusal::Expired)
        );
        // Another file, another client, a stretched expiry, a different key: all refused.
        let bad = Err(LinkRefusal::BadSignature);
        assert_eq!(
            links.verify(client, AttachmentId::new(), exp, &sig, now),
            bad
        );
        assert_eq!(
            links.verify(ClientId::new(), attachment, exp, &sig, now),
            bad
        );
        assert_eq!(
            links.verify(client, attachment, exp + 86_400, &sig, now),
            bad
        );
        assert_eq!(links.verify(client, attachment, exp, "00", now), bad);
        let other = MediaLinks::new("https://hub.example/", &[8u8; 32]).unwrap();
        assert_eq!(other.verify(client, attachment, exp, &sig, now), bad);
        assert!(!format!("{links:?}").contains("07"));
    }

    #[test]
    fn social_links_verify_only_as_social_links() {
        let links = MediaLinks::new("https://hub.example", &[7u8; 32]).unwrap();
        let (client, media) = (ClientId::new(), uuid::Uuid::new_v4());
        let now = Utc::now();
        let url = links.social_url(client, media, "a.jpg", now + Duration::hours(1));
        assert!(url.starts_with(&format!(
            "https://hub.example/media/social/{client}/{media}/a.jpg?exp="
        )));
        let exp: i64 = query(&url, "exp").parse().unwrap();
        let sig = query(&url, "sig");
        assert_eq!(links.verify_social(client, media, exp, &sig, now), Ok(()));
        // The same ids as an attachment are refused.
        let attachment: AttachmentId = media.to_string().parse().unwrap();
        assert_eq!(
            links.verify(client, attachment, exp, &sig, now),
            Err(LinkRefusal::BadSignature)
        );
    }

    #[test]
    fn the_public_url_must_be_http() {
        assert!(MediaLinks::new("ftp://hub.example", &[1; 32]).is_err());
        assert!(MediaLinks::new("not a url", &[1; 32]).is_err());
        let links = MediaLinks::new("http://127.0.0.1:8080", &[1; 32]).unwrap();
        let url = links.url(ClientId::new(), AttachmentId::new(), "", Utc::now());
        assert!(url.starts_with("http://127.0.0.1:8080/media/"), "{url}");
        assert!(url.contains("/file?exp="), "{url}");
    }
}
