//! API tokens of the caller's client. A token acts with its creator's rights, never more; its
//! secret is shown once, at creation, and only a hash of it is kept.

use actix_web::{HttpResponse, web};
use chrono::{Duration, SubsecRound, Utc};
use omnihub_core::model::ApiToken;
use omnihub_core::{ApiTokenId, validate};
use omnihub_store::NewApiToken;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::tokens;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageSettings};
use crate::i18n::Msg;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(list_tokens))
        .route("/tokens", web::post().to(create_token))
        .route("/tokens/{id}", web::delete().to(revoke_token));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_tokens, create_token, revoke_token))]
pub struct Api;

/// Characters of the secret kept in clear (`omh_` and 8 more, about 48 of its 256 random
/// bits), enough to tell tokens apart in a list.
const PREFIX_CHARS: usize = 12;
const MAX_DAYS: u32 = 3650;

/// The visible prefix of a secret.
fn prefix(secret: &str) -> String {
    secret.chars().take(PREFIX_CHARS).collect()
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<ApiToken>,
}

/// Every token of the client, revoked ones included.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
) -> ApiResult<web::Json<TokenList>> {
    let items = state.store.list_api_tokens(caller.client_id()?).await?;
    Ok(web::Json(TokenList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    pub name: String,
    /// 1 to 3650; without it the token does not expire.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub api_token: ApiToken,
    /// The secret, for `Authorization: Bearer …`; shown only in this response.
    pub token: String,
}

/// Creates a token that acts with the caller's rights.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    body: web::Json<NewTokenRequest>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    let name = validate::text("name", &body.name, 200)?;
    let expires_at = match body.expires_in_days {
        None => None,
        // Whole seconds, so the creating response and later listings show the same time.
        Some(days @ 1..=MAX_DAYS) => {
            Some(Utc::now().trunc_subsecs(0) + Duration::days(i64::from(days)))
        }
        Some(_) => {
            return Err(ApiError::Validation(Msg::NumberRange {
                field: "expires_in_days",
                min: 1,
                max: MAX_DAYS.into(),
            }));
        }
    };
    let secret = tokens::new_api_token();
    let api_token = state
        .store
        .create_api_token(&NewApiToken {
            client_id: client,
            user_id: caller.principal.user_id,
            name,
            prefix: prefix(&secret),
            token_hash: tokens::hash(&secret),
            expires_at,
        })
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "token.create",
            "api_token",
            api_token.id,
            json!({ "name": api_token.name, "prefix": api_token.prefix, "expires_at": api_token.expires_at }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(CreatedToken {
        api_token,
        token: secret,
    }))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = ApiTokenId, Path, description = "token id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn revoke_token(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ApiTokenId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let token = state
        .store
        .revoke_api_token(client, path.into_inner(), Utc::now())
        .await?;
    // The cache is keyed by the secret's hash, which is not at hand; dropping the owner's
    // entries is the way to make the revoked token fail on its very next request.
    state.auth_cache.invalidate_user(token.user_id);
    state
        .audit(caller.audit(
            Some(client),
            "token.revoke",
            "api_token",
            token.id,
            json!({ "name": token.name }),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_short_and_keeps_the_marker() {
        let secret = tokens::new_api_token();
        let p = prefix(&secret);
        assert_eq!(p.len(), PREFIX_CHARS);
        assert!(p.starts_with(tokens::API_TOKEN_PREFIX) && secret.starts_with(&p));
    }
}
