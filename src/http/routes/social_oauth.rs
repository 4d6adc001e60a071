//! Connecting social profiles through the networks' own authorization pages (OAuth 2.0 with
//! PKCE where the network takes it); the flow is `crate::social::oauth`.
//!
//! `POST /api/v1/social/oauth/{network}/start` gives the authorization URL; the network sends
//! the browser back to `/oauth/social/{network}/callback`, which exchanges the code and sends
//! the browser on to the console's connect page with a sealed grant (or an error code); the
//! console lists what the grant can manage (`GET /api/v1/social/oauth/grants/{grant}`) and
//! connects the chosen profiles (`POST …/grants/{grant}/connect`).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use omnihub_connectors::social::{self as net, Network, Support};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::social::{api_failure, hooks_base};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageSettings};
use crate::i18n::Msg;
use crate::social::ProfileToConnect;
use crate::social::oauth::{Callback, OAuthFailure, OAuthFlows};
use crate::state::AppState;

/// The console's page that finishes a connection.
const CONNECT_PAGE: &str = "/social/connect";

/// Most profiles connected from one grant at once.
const MAX_PROFILES_PER_GRANT: usize = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/social/oauth/{network}/start", web::post().to(start_oauth))
        .route(
            "/social/oauth/grants/{grant}",
            web::get().to(grant_profiles),
        )
        .route(
            "/social/oauth/grants/{grant}/connect",
            web::post().to(connect_granted),
        );
}

/// The networks' redirect back, outside `/api/v1` (its address is registered with them).
pub fn configure_callback(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/oauth/social/{network}/callback",
        web::get().to(oauth_callback),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(start_oauth, oauth_callback, grant_profiles, connect_granted),
    components(schemas(
        AuthorizeUrl,
        GrantProfiles,
        GrantProfile,
        ConnectGranted,
        GrantConnected,
        GrantFailure
    ))
)]
pub struct Api;

#[derive(Serialize, ToSchema)]
pub struct AuthorizeUrl {
    /// Send the person's browser here.
    pub authorize_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantProfile {
    pub external_id: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantProfiles {
    pub network: String,
    /// The communities, groups, pages, accounts or channels the grant can manage.
    pub profiles: Vec<GrantProfile>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectGranted {
    /// Ids from `GET /api/v1/social/oauth/grants/{grant}`.
    pub external_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantFailure {
    pub external_id: String,
    /// Why, in the caller's language.
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantConnected {
    pub profiles: Vec<omnihub_store::SocialProfile>,
    /// Those that could not be connected (already connected, refused by the network).
    pub failed: Vec<GrantFailure>,
}

fn flows(state: &AppState) -> ApiResult<&OAuthFlows> {
    state
        .social
        .oauth
        .as_ref()
        .ok_or_else(|| ApiError::NotReady("security.secret_key is not set".into()))
}

fn oauth_error(err: OAuthFailure, network: Network) -> ApiError {
    let name = network.as_str().to_string();
    match err {
        OAuthFailure::Unsupported => ApiError::Unsupported(Msg::NetworkNotConnectable {
            network: name,
            reason: "omnihub has no authorization flow for this network".into(),
        }),
        OAuthFailure::NotConfigured => ApiError::Unsupported(Msg::NetworkNotConnectable {
            network: name,
            reason: "the server's application on this network is not configured".into(),
        }),
        OAuthFailure::Invalid => ApiError::Validation(Msg::OAuthStateInvalid),
        OAuthFailure::Refused(reason) => ApiError::Validation(Msg::ProviderRefused { reason }),
        OAuthFailure::Network(err) => {
            api_failure(crate::social::SocialFailure::Network(err), &name)
        }
    }
}

fn network_of_path(raw: &str) -> ApiResult<Network> {
    Network::parse(raw).ok_or(ApiError::NotFound)
}

/// Starts connecting profiles of a network through its authorization page.
#[utoipa::path(post, path = "/api/v1/social/oauth/{network}/start", tag = "social",
    params(("network" = String, Path, description = "a network whose matrix row says `oauth: true`")),
    responses((status = 200, body = AuthorizeUrl),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no such network", body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: no flow, or the server's application is not configured", body = ErrorBody),
        (status = 503, description = "`not_ready`: the server has no secret key", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn start_oauth(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<String>,
) -> ApiResult<web::Json<AuthorizeUrl>> {
    let network = network_of_path(&path)?;
    let client = caller.client_id()?;
    if let Support::Planned(reason) | Support::Unsupported(reason) =
        net::capabilities(network).connect
    {
        return Err(ApiError::Unsupported(Msg::NetworkNotConnectable {
            network: network.as_str().into(),
            reason: reason.into(),
        }));
    }
    let authorize_url = flows(&state)?
        .start(
            &state.endpoints,
            client,
            caller.principal.user_id,
            network,
            Utc::now(),
        )
        .map_err(|err| oauth_error(err, network))?;
    Ok(web::Json(AuthorizeUrl { authorize_url }))
}

/// Where a network sends the browser back. Exchanges the code and sends the browser to the
/// console's connect page with `grant=<sealed grant>`, or with `error=<code>` (`invalid_state`,
/// `access_denied`, `refused` with the network's words in `detail`, `unreachable`,
/// `unsupported`).
#[utoipa::path(get, path = "/oauth/social/{network}/callback", tag = "social",
    params(("network" = String, Path, description = "the network")),
    responses((status = 303, description = "to the console's connect page")),
    security(()))]
pub async fn oauth_callback(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Callback>,
) -> HttpResponse {
    let outcome = match (Network::parse(&path), state.social.oauth.as_ref()) {
        (Some(network), Some(flows)) => flows
            .finish(&state.endpoints, network, &query, Utc::now())
            .await
            .map_err(|err| match err {
                OAuthFailure::Invalid => ("invalid_state", None),
                // The person declined at the network: nothing to quote.
                OAuthFailure::Refused(_) if query.error.as_deref() == Some("access_denied") => {
                    ("access_denied", None)
                }
                OAuthFailure::Refused(words) => ("refused", Some(words)),
                OAuthFailure::Network(err) => ("unreachable", Some(err.to_string())),
                OAuthFailure::Unsupported | OAuthFailure::NotConfigured => ("unsupported", None),
            }),
        _ => Err(("unsupported", None)),
    };
    let target = match outcome {
        Ok(grant) => format!("{CONNECT_PAGE}?grant={grant}"),
        Err((code, detail)) => {
            let mut target = format!("{CONNECT_PAGE}?error={code}");
            if let Some(encoded) =
                detail.and_then(|d| serde_urlencoded::to_string([("detail", d)]).ok())
            {
                target.push('&');
                target.push_str(&encoded);
            }
            target
        }
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

/// What a grant can manage: the profiles the person may connect with it.
#[utoipa::path(get, path = "/api/v1/social/oauth/grants/{grant}", tag = "social",
    params(("grant" = String, Path, description = "the sealed grant from the connect page's address")),
    responses((status = 200, body = GrantProfiles),
        (status = 400, description = "`validation`: the grant is not this person's, or expired", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, description = "the network could not be reached", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn grant_profiles(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<String>,
) -> ApiResult<web::Json<GrantProfiles>> {
    let client = caller.client_id()?;
    let grant = flows(&state)?
        .grant(&path, client, caller.principal.user_id, Utc::now())
        .map_err(|_| ApiError::Validation(Msg::OAuthStateInvalid))?;
    let network = grant
        .network()
        .ok_or(ApiError::Validation(Msg::OAuthStateInvalid))?;
    let profiles = net::manageable_profiles(network, &grant.access_token, &state.endpoints)
        .await
        .map_err(|err| api_failure(crate::social::SocialFailure::Network(err), network.as_str()))?;
    Ok(web::Json(GrantProfiles {
        network: network.as_str().into(),
        profiles: profiles
            .into_iter()
            .map(|p| GrantProfile {
                external_id: p.external_id,
                name: p.name,
            })
            .collect(),
    }))
}

/// Connects the chosen profiles with a grant; each is checked with the network and its events
/// are set up as when a token is pasted.
#[utoipa::path(post, path = "/api/v1/social/oauth/grants/{grant}/connect", tag = "social",
    params(("grant" = String, Path, description = "the sealed grant")),
    request_body = ConnectGranted,
    responses((status = 201, body = GrantConnected),
        (status = 400, description = "`validation`: no ids, too many, one the grant cannot manage, or the grant is not this person's", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, description = "the network could not be reached", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn connect_granted(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<String>,
    body: web::Json<ConnectGranted>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let grant = flows(&state)?
        .grant(&path, client, caller.principal.user_id, Utc::now())
        .map_err(|_| ApiError::Validation(Msg::OAuthStateInvalid))?;
    let network = grant
        .network()
        .ok_or(ApiError::Validation(Msg::OAuthStateInvalid))?;
    let mut wanted: Vec<&str> = body.external_ids.iter().map(|s| s.trim()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() || wanted.len() > MAX_PROFILES_PER_GRANT {
        return Err(ApiError::Validation(Msg::SocialBadValue {
            field: "external_ids",
        }));
    }
    let manageable = net::manageable_profiles(network, &grant.access_token, &state.endpoints)
        .await
        .map_err(|err| api_failure(crate::social::SocialFailure::Network(err), network.as_str()))?;
    let hooks = hooks_base(&state, network);
    let mut connected = GrantConnected {
        profiles: Vec::new(),
        failed: Vec::new(),
    };
    for external_id in wanted {
        let Some(found) = manageable.iter().find(|m| m.external_id == external_id) else {
            return Err(ApiError::Validation(Msg::SocialBadValue {
                field: "external_ids",
            }));
        };
        // A profile's own token (a Page's) has no refresh token of the person's grant.
        let (access_token, refresh_token, expires) = match &found.access_token {
            Some(own) => (own.as_str(), None, None),
            None => (
                grant.access_token.as_str(),
                grant.refresh_token.as_deref(),
                grant.token_expires_at,
            ),
        };
        let outcome = state
            .social
            .connect(&ProfileToConnect {
                client,
                network,
                external_id,
                access_token,
                refresh_token,
                token_expires_at: expires,
                kept: &grant.kept,
                hooks_base: &hooks,
            })
            .await;
        match outcome {
            Ok(profile) => {
                state
                    .audit(caller.audit(
                        Some(client),
                        "social_profile.connect",
                        "channel",
                        profile.id,
                        json!({ "network": profile.network, "external_id": profile.external_id, "via": "oauth" }),
                    ))
                    .await?;
                connected.profiles.push(profile);
            }
            Err(err) => {
                let message = api_failure(err, network.as_str())
                    .message("")
                    .render(crate::http::error::request_lang());
                connected.failed.push(GrantFailure {
                    external_id: external_id.to_string(),
                    message,
                });
            }
        }
    }
    Ok(HttpResponse::Created().json(connected))
}
