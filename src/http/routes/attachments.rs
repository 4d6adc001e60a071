//! Attachments over REST: operators upload files to a conversation
//! (`POST /api/v1/conversations/{id}/attachments`, multipart, streamed into the media store
//! within `[media] max_upload_bytes`), then send them with a reply (`attachment_ids`); anyone
//! who may see a conversation downloads its files (`GET /api/v1/attachments/{id}`).
//!
//! Everything about a file is the sender's: it is served as a download
//! (`Content-Disposition: attachment` with a cleaned name), never sniffed (`nosniff`), under a
//! sandboxing CSP, and shown inline only when asked for and a raster image (PNG, JPEG, GIF,
//! WebP; never SVG). Uploads of pages, scripts and programs are refused.

use std::io;

use actix_multipart::Multipart;
use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use omnihub_core::access::Action;
use omnihub_core::media::{
    AttachmentKind, AttachmentState, SNIFF_BYTES, UploadRefusal, check_upload_type,
    default_file_name, is_inline_image, safe_file_name,
};
use omnihub_core::{AttachmentId, decide};
use omnihub_store::media::{ByteStream, MediaError};
use omnihub_store::{NewUpload, StoredAttachment};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncReadExt;
use utoipa::IntoParams;

use super::conversations::{InConversation, Need, Writes, visible_conversation};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::authenticate;
use crate::i18n::Msg;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/conversations/{id}/attachments",
        web::post().to(upload_attachment),
    )
    .route("/attachments/{id}", web::get().to(download_attachment));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(upload_attachment, download_attachment))]
pub struct Api;

/// The CSP of a served file: nothing loads, nothing runs, even when opened on its own.
const FILE_CSP: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";
/// Bytes read from the media store per chunk of a download.
const CHUNK: usize = 64 * 1024;

/// Uploads one file (`multipart/form-data`, one part named `file`) to the conversation, for a
/// reply to send with `attachment_ids`. The file is kept as it arrives, within
/// `[media] max_upload_bytes`; pages, scripts and programs are refused.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", tag = "conversations",
    params(("id" = omnihub_core::ConversationId, Path, description = "conversation id")),
    request_body(content = String, description = "`multipart/form-data` with one part named `file` (its file name and type are taken from the part)", content_type = "multipart/form-data"),
    responses((status = 201, body = omnihub_core::media::Attachment),
        (status = 400, description = "no part named `file`, an empty file, or a malformed type", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "no `reply` right on the conversation's channel", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "larger than `[media] max_upload_bytes`", body = ErrorBody),
        (status = 415, description = "not multipart, or a forbidden type of file", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn upload_attachment(
    req: HttpRequest,
    state: web::Data<AppState>,
    access: InConversation<Writes>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let limit = state.config.media.max_upload_bytes as u64;
    let received = receive_file(&req, payload, &state, limit, |declared, name, _head| {
        check_upload_type(declared, name).map_err(|refusal| match refusal {
            UploadRefusal::MalformedType => ApiError::Validation(Msg::UploadMalformedType),
            UploadRefusal::ForbiddenType => ApiError::UnsupportedFile(Msg::UploadForbiddenType {
                mime: declared.to_string(),
            }),
        })
    })
    .await?;
    let put = received.put;
    let upload = NewUpload {
        client_id: access.client(),
        conversation_id: access.conversation.id,
        uploaded_by: Some(access.caller.principal.user_id),
        kind: received.kind,
        file_name: received.file_name,
        mime_type: received.mime_type,
        size: i64::try_from(put.size).unwrap_or(i64::MAX),
        sha256: put.sha256.clone(),
        storage_key: put.key.clone(),
    };
    let attachment = match state.store.create_upload(&upload).await {
        Ok(attachment) => attachment,
        Err(err) => {
            let _ = state.media.delete(&put.key).await;
            return Err(err.into());
        }
    };
    state
        .audit(access.caller.audit(
            Some(access.client()),
            "conversation.upload",
            "conversation",
            access.conversation.id,
            json!({
                "attachment_id": attachment.id,
                "file_name": attachment.file_name,
                "size": attachment.size,
                "mime_type": attachment.mime_type,
            }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(attachment))
}

fn malformed(err: &actix_multipart::MultipartError) -> Msg {
    Msg::UploadBroken {
        detail: err.to_string(),
    }
}

/// A file received from a `multipart/form-data` body and stored in the media store.
pub struct ReceivedFile {
    pub put: omnihub_store::media::PutMedia,
    pub kind: AttachmentKind,
    /// Cleaned of paths and control characters.
    pub file_name: String,
    pub mime_type: String,
}

/// Reads the part named `file` of a multipart body into the media store, within `limit`
/// bytes. `type_of` decides the file's type from the declared one, the sender's file name and
/// the file's first bytes (at least [`SNIFF_BYTES`] unless the file is shorter), or refuses it
/// before anything is stored. An empty file is refused and nothing is kept.
pub async fn receive_file(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    limit: u64,
    type_of: impl FnOnce(&str, &str, &[u8]) -> ApiResult<String>,
) -> ApiResult<ReceivedFile> {
    receive_typed_file(req, payload, state, |declared, name, head| {
        type_of(declared, name, head).map(|mime| (mime, limit))
    })
    .await
}

/// As [`receive_file`], where the limit depends on the type: `type_and_limit` gives both
/// (videos of the media library have a limit of their own).
pub async fn receive_typed_file(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    type_and_limit: impl FnOnce(&str, &str, &[u8]) -> ApiResult<(String, u64)>,
) -> ApiResult<ReceivedFile> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Err(ApiError::UnsupportedFile(Msg::UploadNotMultipart));
    }
    let mut form = Multipart::new(req.headers(), payload);
    let mut field = match form.next().await {
        Some(Ok(field)) if field.name() == Some("file") => field,
        Some(Err(err)) => return Err(ApiError::Validation(malformed(&err))),
        _ => return Err(ApiError::Validation(Msg::UploadNotMultipart)),
    };
    let raw_name = field
        .content_disposition()
        .and_then(|d| d.get_filename())
        .unwrap_or_default()
        .to_string();
    let declared = field
        .content_type()
        .map(|m| m.essence_str().to_string())
        .unwrap_or_else(|| "application/octet-stream".to_string());
    // The head is read before anything is stored, so a refused type costs no storage.
    let mut head = Vec::new();
    // A field must not be polled once it has ended.
    let mut ended = false;
    while head.len() < SNIFF_BYTES {
        match field.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(err)) => return Err(ApiError::Validation(malformed(&err))),
            None => {
                ended = true;
                break;
            }
        }
    }
    if head.is_empty() {
        return Err(ApiError::Validation(Msg::UploadEmpty));
    }
    let (mime, limit) = type_and_limit(&declared, &raw_name, &head)?;
    let kind = AttachmentKind::of_mime(&mime);
    let file_name = safe_file_name(&raw_name, &default_file_name(kind, &mime));

    // The multipart stream lives on this worker's thread; the media store takes a `Send`
    // stream, so the chunks cross over a small channel as they arrive.
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let feed = async move {
        if tx.send(Ok(Bytes::from(head))).await.is_err() || ended {
            return;
        }
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|err| io::Error::other(err.to_string()));
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let chunks: ByteStream<'static> =
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        }));
    let (_, put) = futures_util::join!(feed, state.media.put(chunks, limit));
    let put = put.map_err(|err| match err {
        MediaError::TooLarge { .. } => {
            ApiError::PayloadTooLarge(usize::try_from(limit).unwrap_or(usize::MAX))
        }
        MediaError::Source(err) => ApiError::Validation(Msg::UploadBroken {
            detail: err.to_string(),
        }),
        other => ApiError::internal(other),
    })?;
    // Anything after the file part is not taken (and not read).
    Ok(ReceivedFile {
        put,
        kind,
        file_name,
        mime_type: mime,
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `inline` to show a raster image (PNG, JPEG, GIF, WebP) in the page; anything else is
    /// always a download.
    pub disposition: Option<String>,
}

/// The bytes of an attachment, for whoever may see its conversation (another client's file is
/// 404). Served as a download with the file's cleaned name; raster images may be asked for
/// inline. A file still downloading from the provider (or failed) is 409.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "conversations",
    params(("id" = AttachmentId, Path, description = "attachment id"), DownloadQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "no such file, or in a conversation the caller may not see", body = ErrorBody),
        (status = 409, description = "not downloaded from the provider (yet)", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn download_attachment(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<AttachmentId>,
    query: web::Query<DownloadQuery>,
) -> ApiResult<HttpResponse> {
    let caller = authenticate(&req).await?;
    if let omnihub_core::access::Decision::Deny(denial) =
        decide(&caller.principal, Action::ViewOwnClient)
    {
        return Err(denial.into());
    }
    let client = caller.principal.client_id.ok_or(ApiError::NotFound)?;
    let stored = state.store.get_attachment(client, *path).await?;
    visible_conversation(
        &state,
        &caller.principal,
        stored.attachment.conversation_id,
        Need::See,
    )
    .await?;
    serve_file(
        &state,
        &stored,
        query.disposition.as_deref() == Some("inline"),
        "private, max-age=86400",
    )
    .await
}

/// Streams a stored file with the headers every served file gets: its type when it is a kind
/// that may be uploaded (else `application/octet-stream`), `Content-Disposition` with the
/// cleaned name (inline only when `inline` is asked and the file is a raster image), `nosniff`,
/// a CSP under which nothing runs, and its size from the store. A file not downloaded from its
/// provider (yet) is 409.
pub async fn serve_file(
    state: &AppState,
    stored: &StoredAttachment,
    inline: bool,
    cache_control: &'static str,
) -> ApiResult<HttpResponse> {
    let key = match (&stored.attachment.state, &stored.storage_key) {
        (AttachmentState::Ready, Some(key)) => key.clone(),
        _ => return Err(ApiError::Conflict(Msg::AttachmentNotReady)),
    };
    serve_stored(
        state,
        &key,
        &stored.attachment.mime_type,
        &stored.attachment.file_name,
        inline,
        cache_control,
    )
    .await
}

/// Streams the media store's file `key` as [`serve_file`] does, with its type and name given.
pub async fn serve_stored(
    state: &AppState,
    key: &str,
    mime: &str,
    file_name: &str,
    inline: bool,
    cache_control: &'static str,
) -> ApiResult<HttpResponse> {
    let opened = match state.media.open(key).await {
        Ok(opened) => opened,
        Err(MediaError::NotFound) => return Err(ApiError::NotFound),
        Err(err) => return Err(ApiError::internal(err)),
    };
    let inline = inline && is_inline_image(mime);
    let content_type = if inline || check_upload_type(mime, "").is_ok() {
        mime.to_string()
    } else {
        "application/octet-stream".to_string()
    };
    let size = opened.size;
    let body = futures_util::stream::unfold(Some(opened.reader), |reader| async move {
        let mut reader = reader?;
        let mut buffer = vec![0u8; CHUNK];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, io::Error>(Bytes::from(buffer)), Some(reader)))
            }
            Err(err) => Some((Err(err), None)),
        }
    })
    .map(|chunk| chunk.map_err(actix_web::error::ErrorInternalServerError));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(inline, file_name),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, FILE_CSP))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .body(SizedStream::new(size, body)))
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266).
fn content_disposition(inline: bool, file_name: &str) -> String {
    let name = safe_file_name(file_name, "file");
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_quoted_safely_with_a_utf8_twin() {
        assert_eq!(
            content_disposition(false, "отчёт \"1\".pdf"),
            "attachment; filename=\"_____ 1.pdf\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82%201.pdf"
        );
        assert_eq!(
            content_disposition(true, "a\r\nb.png"),
            "inline; filename=\"ab.png\"; filename*=UTF-8''ab.png"
        );
    }
}
