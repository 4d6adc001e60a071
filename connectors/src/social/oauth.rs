//! OAuth 2.0 connection of social profiles: what each network's authorization flow needs.
//!
//! The flow itself (state, PKCE verifier, the redirect back, the code exchange, refreshing
//! tokens before they lapse) is one implementation in the server; a network contributes its
//! [`OAuthSpec`] (scopes, whether it wants PKCE, how the client authenticates at the token
//! endpoint, extra parameters) and a way to list the profiles the person may connect with the
//! grant ([`Manageable`]). Where the authorization and token endpoints live is the server's
//! configuration ([`OAuthUrls`] in the endpoints), so tests and the demo use the sandbox.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::SendError;
use crate::registry::SocialApp;
use crate::rest_client::{self, MAX_API_BODY, bounded_reason, permanent, transient};

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
    /// Parameters the network adds to the redirect back that its token endpoint wants again,
    /// at the exchange and at every refresh (VK ID's `device_id`); kept with the tokens.
    pub callback_params: &'static [&'static str],
    /// Whether the application's secret is needed (VK ID's web flow needs only PKCE).
    pub needs_secret: bool,
}

impl OAuthSpec {
    /// Whether the server's application for the network is set up enough for this flow.
    pub fn ready(&self, app: &SocialApp) -> bool {
        !app.client_id.is_empty() && (!self.needs_secret || !app.client_secret.is_empty())
    }

    /// The URL the person's browser is sent to.
    pub fn authorize_url(
        &self,
        endpoint: &OAuthUrl,
        app: &SocialApp,
        redirect_uri: &str,
        state: &str,
        verifier: &str,
    ) -> Url {
        let mut url = endpoint.authorize.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &app.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &self.scopes.join(self.scope_separator))
                .append_pair("state", state);
            if self.pkce {
                query
                    .append_pair("code_challenge", &pkce_challenge(verifier))
                    .append_pair("code_challenge_method", "S256");
            }
            for (key, value) in self.extra_authorize_params {
                query.append_pair(key, value);
            }
        }
        url
    }

    /// Exchanges the authorization code for tokens.
    pub async fn exchange(
        &self,
        endpoint: &OAuthUrl,
        app: &SocialApp,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        kept: &[(String, String)],
    ) -> Result<TokenSet, SendError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.to_string()),
        ];
        if self.pkce {
            form.push(("code_verifier", verifier.to_string()));
        }
        self.token_request(endpoint, app, form, kept).await
    }

    /// A new access token from a refresh token.
    pub async fn refresh(
        &self,
        endpoint: &OAuthUrl,
        app: &SocialApp,
        refresh_token: &str,
        kept: &[(String, String)],
    ) -> Result<TokenSet, SendError> {
        let form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.to_string()),
        ];
        self.token_request(endpoint, app, form, kept).await
    }

    async fn token_request(
        &self,
        endpoint: &OAuthUrl,
        app: &SocialApp,
        mut form: Vec<(&str, String)>,
        kept: &[(String, String)],
    ) -> Result<TokenSet, SendError> {
        let http = rest_client::client().map_err(transient)?;
        for (key, value) in kept {
            if let Some(name) = self.callback_params.iter().find(|name| *name == key) {
                form.push((name, value.clone()));
            }
        }
        let mut request = http
            .post(endpoint.token.clone())
            .timeout(rest_client::TIMEOUT);
        match self.client_auth {
            ClientAuth::Form => {
                form.push(("client_id", app.client_id.clone()));
                if !app.client_secret.is_empty() {
                    form.push(("client_secret", app.client_secret.clone()));
                }
            }
            ClientAuth::Basic => {
                form.push(("client_id", app.client_id.clone()));
                request = request.basic_auth(&app.client_id, Some(&app.client_secret));
            }
        }
        let answer = rest_client::fetch(request.form(&form), MAX_API_BODY).await?;
        let text = String::from_utf8_lossy(&answer.body);
        if answer.status.is_server_error() || answer.status.as_u16() == 429 {
            return Err(transient(format!(
                "the token endpoint answered {}: {}",
                answer.status,
                bounded_reason(&text)
            )));
        }
        let parsed: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|_| {
            permanent(format!(
                "the token endpoint answered {}: {}",
                answer.status,
                bounded_reason(&text)
            ))
        })?;
        match parsed {
            TokenAnswer {
                access_token: Some(access_token),
                ..
            } if answer.status.is_success() && !access_token.is_empty() => Ok(TokenSet {
                access_token,
                refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
                expires_in: parsed.expires_in.and_then(|e| e.seconds()),
            }),
            TokenAnswer {
                error,
                error_description,
                ..
            } => Err(permanent(format!(
                "the network refused the authorization: {}",
                bounded_reason(&format!(
                    "{} {}",
                    error.unwrap_or_else(|| answer.status.to_string()),
                    error_description.unwrap_or_default()
                ))
            ))),
        }
    }
}

/// Tokens issued by a network.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds the access token lives, when the network says.
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's answer, success or error (RFC 6749 §5.1, §5.2).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<Seconds>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `expires_in` as a number, or as a string (OK sends one).
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(i64),
    Text(String),
}

impl Seconds {
    fn seconds(&self) -> Option<i64> {
        match self {
            Seconds::Number(n) => Some(*n),
            Seconds::Text(t) => t.trim().parse().ok(),
        }
        .filter(|s| *s > 0)
    }
}

/// The S256 PKCE challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_unpadded_base64url_of_sha256() {
        // Worked out independently: base64.urlsafe_b64encode(sha256(verifier)) without `=`.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ0kqDSRYBM-sGmzf-eqk2BtsEVuMc"),
            "-rFVkXCwWyIQFjnlrgJUvgUibVzSFcuKc0JdrhGH_14"
        );
    }
}
