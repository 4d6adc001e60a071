//! Signed public links to outgoing files (`GET /media/{client_id}/{attachment_id}/{file_name}
//! ?exp=…&sig=…`), for providers that fetch media by URL (Viber), and to images and videos of
//! the social media library (`GET /media/social/{client_id}/{media_id}/{file_name}?exp=…&sig=…`), which
//! Instagram and Facebook fetch when a post is published. The link is minted by the
//! channel actor when it sends the file ([`omnihub_connectors::media_link`]); anyone holding it
//! may fetch that one file until it expires, without signing in.
//!
//! The signature and the expiry are checked before the store is asked anything, and a wrong,
//! missing or expired signature all answer the same 403 `invalid_link`: without a valid link
//! nobody learns whether a file exists. The file is then served like any download (its type,
//! `Content-Disposition`, `nosniff`, a sandboxing CSP, its size from the store).

use actix_web::{HttpResponse, web};
use omnihub_core::{AttachmentId, ClientId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::attachments::{serve_file, serve_stored};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/media/{client_id}/{attachment_id}/{file_name}",
        web::get().to(media_link),
    )
    .route(
        "/media/social/{client_id}/{media_id}/{file_name}",
        web::get().to(social_media_link),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(media_link, social_media_link))]
pub struct Api;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// When the link stops working, in Unix seconds.
    pub exp: Option<i64>,
    /// The link's signature.
    pub sig: Option<String>,
}

/// One outgoing file by its signed, expiring link (the file name in the path is only for the
/// provider's eyes).
#[utoipa::path(get, path = "/media/{client_id}/{attachment_id}/{file_name}", tag = "conversations",
    params(("client_id" = ClientId, Path, description = "client id"),
        ("attachment_id" = AttachmentId, Path, description = "attachment id"),
        ("file_name" = String, Path, description = "the file's name, not checked"),
        LinkQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody),
        (status = 403, description = "`invalid_link`: the signature is wrong or missing, or the link expired", body = ErrorBody),
        (status = 404, description = "the link is valid but the file is gone", body = ErrorBody),
        (status = 409, description = "not downloaded from the provider (yet)", body = ErrorBody)))]
pub async fn media_link(
    state: web::Data<AppState>,
    path: web::Path<(ClientId, AttachmentId, String)>,
    query: web::Query<LinkQuery>,
) -> ApiResult<HttpResponse> {
    let (client, attachment, _) = path.into_inner();
    let links = state.media_links.as_ref().ok_or(ApiError::InvalidLink)?;
    let (Some(exp), Some(sig)) = (query.exp, query.sig.as_deref()) else {
        return Err(ApiError::InvalidLink);
    };
    links
        .verify(client, attachment, exp, sig, chrono::Utc::now())
        .map_err(|_| ApiError::InvalidLink)?;
    let stored = state.store.get_attachment(client, attachment).await?;
    serve_file(&state, &stored, true, "private, no-store").await
}

/// One image or video of the social media library by its signed, expiring link (minted when a
/// post is published to a network that fetches files by URL).
#[utoipa::path(get, path = "/media/social/{client_id}/{media_id}/{file_name}", tag = "social",
    params(("client_id" = ClientId, Path, description = "client id"),
        ("media_id" = uuid::Uuid, Path, description = "the media library file"),
        ("file_name" = String, Path, description = "the file's name, not checked"),
        LinkQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody),
        (status = 403, description = "`invalid_link`: the signature is wrong or missing, or the link expired", body = ErrorBody),
        (status = 404, description = "the link is valid but the file is gone", body = ErrorBody)))]
pub async fn social_media_link(
    state: web::Data<AppState>,
    path: web::Path<(ClientId, uuid::Uuid, String)>,
    query: web::Query<LinkQuery>,
) -> ApiResult<HttpResponse> {
    let (client, media, _) = path.into_inner();
    let links = state.media_links.as_ref().ok_or(ApiError::InvalidLink)?;
    let (Some(exp), Some(sig)) = (query.exp, query.sig.as_deref()) else {
        return Err(ApiError::InvalidLink);
    };
    links
        .verify_social(client, media, exp, sig, chrono::Utc::now())
        .map_err(|_| ApiError::InvalidLink)?;
    let file = state.store.get_social_media(client, media).await?;
    serve_stored(
        &state,
        &file.storage_key,
        &file.mime_type,
        &file.file_name,
        true,
        "private, no-store",
    )
    .await
}
