//! OAuth 2.0 connection of social profiles: what each network's authorization flow needs.
//!
//! The flow itself (state, PKCE verifier, the redirect back, the code exchange, refreshing
//! tokens before they lapse) is one implementation in the server; a network contributes its
//! [`OAuthSpec`] (scopes, whether it wants PKCE, how the client authenticates at the token
//! endpoint, extra parameters) and a way to list the profiles the person may connect with the
//! grant ([`Manageable`]). Where the authorization and token endpoints live is the server's
//! configuration ([`OAuthUrls`] in the endpoints), so tests and the demo use the sandbox.

use reqwest::Url;

/// How the application proves itself at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    Form,
    /// HTTP Basic with `client_id:client_secret` (X, RFC 6749 §2.3.1).
    Basic,
}

/// What one network's OAuth flow needs beyond the standard.
#[derive(Clone, Copy, Debug)]
pub struct OAuthSpec {
    /// Scopes asked for, joined with `scope_separator`.
    pub scopes: &'static [&'static str],
    pub scope_separator: &'static str,
    /// Whether the authorization request carries a PKCE S256 challenge (required by X and VK
    /// ID, accepted by Google).
    pub pkce: bool,
    pub client_auth: ClientAuth,
    /// Extra authorization parameters (Google's `access_type=offline` and `prompt=consent`,
    /// which make it issue a refresh token).
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
}

/// The authorization and token endpoints of one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthUrl {
    /// Where the person's browser is sent to grant access.
    pub authorize: Url,
    /// Where the code is exchanged and tokens are refreshed.
    pub token: Url,
}

/// Every network's OAuth endpoints (Facebook and Instagram share Meta's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthUrls {
    pub vk: OAuthUrl,
    pub ok: OAuthUrl,
    pub meta: OAuthUrl,
    pub x: OAuthUrl,
    pub google: OAuthUrl,
}

impl Default for OAuthUrls {
    fn default() -> Self {
        let url = |s: &str| {
            Url::parse(s).unwrap_or_else(|_| unreachable!("invalid built-in endpoint {s}"))
        };
        let pair = |authorize: &str, token: &str| OAuthUrl {
            authorize: url(authorize),
            token: url(token),
        };
        OAuthUrls {
            vk: pair(
                "https://id.vk.com/authorize",
                "https://id.vk.com/oauth2/auth",
            ),
            ok: pair(
                "https://connect.ok.ru/oauth/authorize",
                "https://api.ok.ru/oauth/token.do",
            ),
            meta: pair(
                "https://www.facebook.com/v23.0/dialog/oauth",
                "https://graph.facebook.com/v23.0/oauth/access_token",
            ),
            x: pair(
                "https://x.com/i/oauth2/authorize",
                "https://api.x.com/2/oauth2/token",
            ),
            google: pair(
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
            ),
        }
    }
}

/// A profile the person may connect with a grant: a community they administer, a Page they
/// manage, their own account or channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manageable {
    /// The profile's id on the network, as `Grant::external_id` takes it.
    pub external_id: String,
    pub name: String,
    /// The profile's own token where the network issues one per profile (a Facebook Page's
    /// token); `None` uses the grant's.
    pub access_token: Option<String>,
}
