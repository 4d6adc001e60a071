//! Click-to-call for operators: "call this contact back" on a conversation. The attempt and its
//! outcome appear in that conversation as notes; the call itself goes through the call-back
//! service (`crate::callback`), which the website widget's public route uses too.

use actix_web::{HttpResponse, web};
use omnihub_connectors::telephony;
use omnihub_core::model::Call;
use omnihub_core::{ChannelId, ClientId, ContactId, ConversationId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::conversations::{InConversation, Sees, Writes};
use crate::callback::{CallbackRequest, request_callback};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::i18n::Msg;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/conversations/{id}/callback",
        web::get().to(callback_options),
    )
    .route("/conversations/{id}/callback", web::post().to(call_back));
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(callback_options, call_back),
    components(schemas(Call, CallBackRequest, CallBackOptions))
)]
pub struct Api;

#[derive(Serialize, ToSchema)]
pub struct CallBackOptions {
    /// Whether the client has a telephony channel to call through.
    pub available: bool,
    /// The contact's `phone` field, the number called when none is given.
    pub phone: Option<String>,
}

/// What a call-back from this conversation would use: whether telephony is connected and the
/// contact's number. Needs seeing the conversation; placing the call needs `reply`.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/callback", tag = "conversations",
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = CallBackOptions), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn callback_options(
    state: web::Data<AppState>,
    access: InConversation<Sees>,
) -> ApiResult<web::Json<CallBackOptions>> {
    let client = access.client();
    let available = state
        .store
        .list_channels(client)
        .await?
        .iter()
        .any(|c| telephony::is_telephony(c.provider));
    Ok(web::Json(CallBackOptions {
        available,
        phone: contact_phone(&state, client, access.conversation.contact_id).await?,
    }))
}

async fn contact_phone(
    state: &AppState,
    client: ClientId,
    contact: ContactId,
) -> ApiResult<Option<String>> {
    let contact = state.store.get_contact(client, contact).await?;
    Ok(contact
        .fields
        .get("phone")
        .and_then(|p| p.as_str())
        .map(str::to_string))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallBackRequest {
    /// The number to call, international format; the contact's `phone` field when absent.
    pub number: Option<String>,
    /// The telephony channel to call through; the client's first one when absent.
    pub channel_id: Option<ChannelId>,
}

/// Calls the contact back: the client's telephony calls the configured operator extension or
/// number first, then bridges the contact's phone. Needs the `reply` right on the
/// conversation's channel. Limited per number like visitors' call-backs, within the telephony
/// channel's working hours.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/callback", tag = "conversations",
    request_body = CallBackRequest,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 201, description = "placed (or, with `outcome: failed`, refused by the provider); the outcome follows in the conversation", body = Call),
        (status = 400, description = "not a phone number, or not a telephony channel", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "no `reply` right on the conversation's channel", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: no telephony connected; `out_of_hours`: outside its working hours", body = ErrorBody),
        (status = 429, description = "too many call-backs to this number", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn call_back(
    state: web::Data<AppState>,
    access: InConversation<Writes>,
    body: web::Json<CallBackRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let client = access.client();
    let number = match body.number {
        Some(number) => number,
        None => contact_phone(&state, client, access.conversation.contact_id)
            .await?
            .ok_or(ApiError::Validation(Msg::NoPhoneToCall))?,
    };
    let call = request_callback(
        &state,
        CallbackRequest {
            client_id: client,
            channel_id: body.channel_id,
            conversation_id: Some(access.conversation.id),
            number,
            visitor: None,
            ip: None,
            captcha_token: None,
            requested_by: Some(access.caller.principal.user_id),
        },
    )
    .await?;
    state
        .audit(access.caller.audit(
            Some(client),
            "conversation.callback",
            "conversation",
            access.conversation.id,
            json!({ "call_id": call.id, "channel_id": call.channel_id }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(call))
}
