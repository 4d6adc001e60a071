//! Quick replies: a client's saved answers with `{{variables}}`, filled in for one
//! conversation when an operator inserts them. Everyone in the client reads them; whoever
//! manages settings keeps the list.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use omnihub_core::conversation::{TemplateError, check_template, render_template};
use omnihub_core::model::QuickReply;
use omnihub_core::{ConversationId, QuickReplyId, validate};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::conversations::{MAX_TEXT_CHARS, Need, message_text, visible_conversation};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageSettings, ViewOwnClient};
use crate::i18n::Msg;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/quick-replies", web::get().to(list_quick_replies))
        .route("/quick-replies", web::post().to(create_quick_reply))
        .route("/quick-replies/{id}", web::delete().to(delete_quick_reply))
        .route(
            "/quick-replies/{id}/render",
            web::post().to(render_quick_reply),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_quick_replies,
    create_quick_reply,
    delete_quick_reply,
    render_quick_reply
))]
pub struct Api;

fn template_error(e: TemplateError) -> ApiError {
    ApiError::Validation(match e {
        TemplateError::UnknownVariable(name) => Msg::TemplateUnknownVariable { name },
        TemplateError::Unclosed { near } => Msg::TemplateUnclosed { near },
    })
}

#[derive(Serialize, ToSchema)]
pub struct QuickReplyList {
    pub items: Vec<QuickReply>,
}

#[utoipa::path(get, path = "/api/v1/quick-replies", tag = "quick replies",
    responses((status = 200, body = QuickReplyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_quick_replies(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<QuickReplyList>> {
    let items = state.store.list_quick_replies(caller.client_id()?).await?;
    Ok(web::Json(QuickReplyList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuickReply {
    /// 1 to 100 characters.
    pub title: String,
    /// 1 to 10,000 characters; may use `{{contact.name}}`, `{{contact.phone}}`,
    /// `{{contact.email}}` (the contact's `phone` and `email` fields), `{{operator.name}}`,
    /// `{{client.name}}` and `{{conversation.request_no}}`.
    pub text: String,
}

#[utoipa::path(post, path = "/api/v1/quick-replies", tag = "quick replies", request_body = NewQuickReply,
    responses((status = 201, body = QuickReply),
        (status = 400, description = "bad fields, or a variable that does not exist", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_quick_reply(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    body: web::Json<NewQuickReply>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let title = validate::text("title", &body.title, 100)?;
    let text = message_text("text", &body.text, MAX_TEXT_CHARS)?;
    // A template that cannot render is refused now, not when an operator first uses it.
    check_template(&text).map_err(template_error)?;
    let reply = state
        .store
        .create_quick_reply(client, &title, &text)
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "quick_reply.create",
            "quick_reply",
            reply.id,
            json!({ "title": reply.title }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(reply))
}

#[utoipa::path(delete, path = "/api/v1/quick-replies/{id}", tag = "quick replies",
    params(("id" = QuickReplyId, Path, description = "quick reply id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_quick_reply(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<QuickReplyId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    state.store.delete_quick_reply(client, id).await?;
    state
        .audit(caller.audit(
            Some(client),
            "quick_reply.delete",
            "quick_reply",
            id,
            json!({}),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    /// A conversation the caller may see; its contact and request number fill the variables.
    pub conversation_id: ConversationId,
}

#[derive(Serialize, ToSchema)]
pub struct Rendered {
    pub text: String,
}

/// The quick reply's text with its variables filled in for one conversation (nothing is sent).
#[utoipa::path(post, path = "/api/v1/quick-replies/{id}/render", tag = "quick replies", request_body = RenderRequest,
    params(("id" = QuickReplyId, Path, description = "quick reply id")),
    responses((status = 200, body = Rendered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the quick reply or the conversation does not exist for the caller", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn render_quick_reply(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<QuickReplyId>,
    body: web::Json<RenderRequest>,
) -> ApiResult<web::Json<Rendered>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let reply = state
        .store
        .list_quick_replies(client)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound)?;
    let conversation =
        visible_conversation(&state, &caller.principal, body.conversation_id, Need::See).await?;
    let contact = state
        .store
        .get_contact(client, conversation.contact_id)
        .await?;
    let operator = state.store.get_user(caller.principal.user_id).await?;
    let client_row = state.store.get_client(client).await?;
    let field = |name: &str| {
        contact
            .fields
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let vars: BTreeMap<String, String> = [
        ("contact.phone", field("phone")),
        ("contact.email", field("email")),
        ("contact.name", contact.name.clone()),
        ("operator.name", operator.display_name),
        ("client.name", client_row.name),
        (
            "conversation.request_no",
            conversation.request_no.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let text = render_template(&reply.text, &vars).map_err(template_error)?;
    Ok(web::Json(Rendered { text }))
}
