//! Connecting social profiles by OAuth, without server-side state: the `state` sent to the
//! network and the grant handed back to the console are sealed (XChaCha20-Poly1305 under a
//! key derived from the server's secret key), so any node can finish a flow another started.
//!
//! 1. `start`: the person asks to connect a network; omnihub makes a PKCE verifier and seals
//!    {client, user, network, verifier, expiry} into `state`, and sends the browser to the
//!    network's authorization page.
//! 2. `finish`: the network sends the browser back with `code` and `state`. The session cookie
//!    is `SameSite=Strict` and does not come with this cross-site redirect, so the person is
//!    known from the sealed state alone; the code is exchanged (with the verifier) for tokens,
//!    which are sealed into a grant bound to that person and valid for 15 minutes.
//! 3. The console, now signed in again by its own cookie, shows the profiles the grant can
//!    manage and connects the chosen ones; opening the grant checks it is the same person.
//!
//! A grant in the browser's address bar is ciphertext only the server can open; it expires
//! quickly and is useless to anyone but the person it was made for.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use omnihub_connectors::SendError;
use omnihub_connectors::registry::Endpoints;
use omnihub_connectors::social::{self as net, Network};
use omnihub_core::{ClientId, UserId};
use omnihub_store::SecretBox;
use serde::{Deserialize, Serialize};

/// How long the person has to grant access at the network.
const STATE_TTL: Duration = Duration::minutes(15);
/// How long the console has to connect profiles with a grant.
const GRANT_TTL: Duration = Duration::minutes(15);
/// What the sealing key is derived for (a key is never used for two purposes).
const KEY_PURPOSE: &[u8] = b"omnihub social oauth v1";

/// Why a flow cannot go on.
#[derive(Debug)]
pub enum OAuthFailure {
    /// omnihub has no OAuth flow for this network.
    Unsupported,
    /// The server's application for the network is not configured.
    NotConfigured,
    /// The state or grant is not ours, was altered, has expired, or belongs to someone else.
    Invalid,
    /// The person declined at the network, or the network refused the code (its words).
    Refused(String),
    /// The network could not be reached.
    Network(SendError),
}

/// The sealed `state`.
#[derive(Serialize, Deserialize)]
struct Pending {
    client: ClientId,
    user: UserId,
    network: String,
    verifier: String,
    expires: i64,
}

/// Tokens a person granted, as the console carries them until profiles are chosen.
#[derive(Clone, Serialize, Deserialize)]
pub struct Grant {
    client: ClientId,
    user: UserId,
    network: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token lapses, when the network said.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Parameters the network wants again at every refresh (VK ID's `device_id`).
    pub kept: Vec<(String, String)>,
    expires: i64,
}

impl Grant {
    pub fn network(&self) -> Option<Network> {
        Network::parse(&self.network)
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("network", &self.network)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What the network's redirect back carries.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// VK ID's device, wanted again at the exchange and refreshes.
    pub device_id: Option<String>,
}

/// Starts and finishes OAuth flows; cheap to clone.
#[derive(Clone)]
pub struct OAuthFlows {
    sealer: SecretBox,
    public_url: String,
}

impl OAuthFlows {
    /// `secret_key` is the server's; `public_url` is where networks send browsers back to.
    pub fn new(secret_key: &[u8; 32], public_url: &str) -> Result<OAuthFlows, String> {
        let key = omnihub_connectors::signing::hmac_sha256(secret_key, KEY_PURPOSE);
        Ok(OAuthFlows {
            sealer: SecretBox::from_bytes(&key).map_err(|e| e.to_string())?,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    /// Where the network sends the browser back to for `network`.
    pub fn redirect_uri(&self, network: Network) -> String {
        format!(
            "{}/oauth/social/{}/callback",
            self.public_url,
            network.as_str()
        )
    }

    /// The authorization URL the person's browser is sent to.
    pub fn start(
        &self,
        endpoints: &Endpoints,
        client: ClientId,
        user: UserId,
        network: Network,
        now: DateTime<Utc>,
    ) -> Result<String, OAuthFailure> {
        let spec = net::oauth_spec(network).ok_or(OAuthFailure::Unsupported)?;
        let app = net::oauth_app(network, endpoints);
        if !spec.ready(app) {
            return Err(OAuthFailure::NotConfigured);
        }
        // 43–128 characters from the unreserved set (RFC 7636 §4.1).
        let verifier = crate::auth::tokens::random_secret();
        let state = self.seal(&Pending {
            client,
            user,
            network: network.as_str().to_string(),
            verifier: verifier.clone(),
            expires: (now + STATE_TTL).timestamp(),
        })?;
        Ok(spec
            .authorize_url(
                net::oauth_endpoint(network, endpoints),
                app,
                &self.redirect_uri(network),
                &state,
                &verifier,
            )
            .to_string())
    }

    /// Checks the network's redirect back and exchanges its code; gives the sealed grant.
    pub async fn finish(
        &self,
        endpoints: &Endpoints,
        network: Network,
        callback: &Callback,
        now: DateTime<Utc>,
    ) -> Result<String, OAuthFailure> {
        let pending: Pending = self.open(callback.state.as_deref().unwrap_or_default(), now)?;
        if pending.network != network.as_str() {
            return Err(OAuthFailure::Invalid);
        }
        if let Some(error) = &callback.error {
            let words = callback.error_description.as_deref().unwrap_or(error);
            return Err(OAuthFailure::Refused(cut(words)));
        }
        let code = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2_048)
            .ok_or(OAuthFailure::Invalid)?;
        let spec = net::oauth_spec(network).ok_or(OAuthFailure::Unsupported)?;
        let kept: Vec<(String, String)> = spec
            .callback_params
            .iter()
            .filter_map(|name| match *name {
                "device_id" => callback.device_id.clone().map(|v| (name.to_string(), v)),
                _ => None,
            })
            .collect();
        let tokens = spec
            .exchange(
                net::oauth_endpoint(network, endpoints),
                net::oauth_app(network, endpoints),
                code,
                &self.redirect_uri(network),
                &pending.verifier,
                &kept,
            )
            .await
            .map_err(|err| match err {
                SendError::Transient { .. } => OAuthFailure::Network(err),
                other => OAuthFailure::Refused(other.to_string()),
            })?;
        self.seal(&Grant {
            client: pending.client,
            user: pending.user,
            network: pending.network,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_expires_at: tokens.expires_in.map(|secs| now + Duration::seconds(secs)),
            kept,
            expires: (now + GRANT_TTL).timestamp(),
        })
    }

    /// Opens a grant for the person it was made for.
    pub fn grant(
        &self,
        sealed: &str,
        client: ClientId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Grant, OAuthFailure> {
        let grant: Grant = self.open(sealed, now)?;
        if grant.client != client || grant.user != user {
            return Err(OAuthFailure::Invalid);
        }
        Ok(grant)
    }

    fn seal<T: Serialize>(&self, value: &T) -> Result<String, OAuthFailure> {
        let plain = serde_json::to_vec(value).map_err(|_| OAuthFailure::Invalid)?;
        let sealed = self
            .sealer
            .seal(&plain)
            .map_err(|_| OAuthFailure::Invalid)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    fn open<T: for<'de> Deserialize<'de> + Expiring>(
        &self,
        sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<T, OAuthFailure> {
        if sealed.is_empty() || sealed.len() > 8_192 {
            return Err(OAuthFailure::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OAuthFailure::Invalid)?;
        let plain = self
            .sealer
            .open(&bytes)
            .map_err(|_| OAuthFailure::Invalid)?;
        let value: T = serde_json::from_slice(&plain).map_err(|_| OAuthFailure::Invalid)?;
        if value.expires() < now.timestamp() {
            return Err(OAuthFailure::Invalid);
        }
        Ok(value)
    }
}

/// A sealed value's expiry, as a Unix time.
trait Expiring {
    fn expires(&self) -> i64;
}

impl Expiring for Pending {
    fn expires(&self) -> i64 {
        self.expires
    }
}

impl Expiring for Grant {
    fn expires(&self) -> i64 {
        self.expires
    }
}

/// A network's words, bounded for display.
fn cut(words: &str) -> String {
    words
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn flows() -> OAuthFlows {
        OAuthFlows::new(&[7u8; 32], "https://hub.example/").unwrap()
    }

    fn endpoints() -> Endpoints {
        let mut e = Endpoints::default();
        e.apps.vk.client_id = "51234".into();
        e
    }

    #[test]
    fn the_authorization_url_carries_pkce_and_a_sealed_state() {
        let (client, user) = (ClientId::new(), UserId::new());
        let url = flows()
            .start(&endpoints(), client, user, Network::Vk, Utc::now())
            .unwrap();
        let url = reqwest::Url::parse(&url).unwrap();
        assert_eq!(url.host_str(), Some("id.vk.com"));
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "51234");
        assert_eq!(
            query["redirect_uri"],
            "https://hub.example/oauth/social/vk/callback"
        );
        assert_eq!(query["code_challenge_method"], "S256");
        let pending: Pending = flows().open(&query["state"], Utc::now()).unwrap();
        assert_eq!((pending.client, pending.user), (client, user));
        assert_eq!(
            net::oauth::pkce_challenge(&pending.verifier),
            query["code_challenge"]
        );
        // Another server's key, a later time, or a changed byte: refused.
        let other = OAuthFlows::new(&[8u8; 32], "https://hub.example").unwrap();
        assert!(other.open::<Pending>(&query["state"], Utc::now()).is_err());
        assert!(
            flows()
                .open::<Pending>(&query["state"], Utc::now() + Duration::minutes(16))
                .is_err()
        );
        let mut altered = query["state"].clone().into_bytes();
        altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
        assert!(
            flows()
                .open::<Pending>(&String::from_utf8(altered).unwrap(), Utc::now())
                .is_err()
        );
    }

    #[test]
    fn an_unconfigured_application_or_network_is_refused() {
        let start = |network| {
            flows().start(
                &Endpoints::default(),
                ClientId::new(),
                UserId::new(),
                network,
                Utc::now(),
            )
        };
        assert!(matches!(
            start(Network::Vk),
            Err(OAuthFailure::NotConfigured)
        ));
        assert!(matches!(
            start(Network::GooglePlus),
            Err(OAuthFailure::Unsupported)
        ));
    }

    #[test]
    fn a_grant_opens_only_for_its_person() {
        let (client, user) = (ClientId::new(), UserId::new());
        let flows = flows();
        let sealed = flows
            .seal(&Grant {
                client,
                user,
                network: "vk".into(),
                access_token: "vk2.a.secret-token".into(),
                refresh_token: None,
                token_expires_at: None,
                kept: Vec::new(),
                expires: (Utc::now() + GRANT_TTL).timestamp(),
            })
            .unwrap();
        assert!(!sealed.contains("secret-token"), "the token travels sealed");
        assert!(flows.grant(&sealed, client, user, Utc::now()).is_ok());
        assert!(
            flows
                .grant(&sealed, client, UserId::new(), Utc::now())
                .is_err()
        );
        assert!(
            flows
                .grant(&sealed, ClientId::new(), user, Utc::now())
                .is_err()
        );
    }
}
