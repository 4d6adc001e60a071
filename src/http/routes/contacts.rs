//! Contact cards: one customer across every channel they wrote from, with merge (two cards
//! that are one person) and split (one identity that is someone else).
//!
//! A card is visible to whoever reads a channel of one of its identities (owners: every card)
//! and editable by whoever may reply on one; anyone else is told it does not exist. Contacts
//! are not conversations: an operator restricted to their own conversations still sees the
//! card of a customer on a channel delegated to them, but the card's history lists only the
//! conversations `may_see` lets them open.

use actix_web::{HttpResponse, web};
use omnihub_core::access::{Action, Decision, may_see};
use omnihub_core::model::{Contact, ContactIdentity};
use omnihub_core::{ChannelId, ChannelRights, ClientId, ContactId, Principal, decide, validate};
use omnihub_store::ConversationFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::audit::page_limit;
use super::conversations::{
    ConversationPage, cursor, narrow_to_visible, parse_cursor, readable_channels, scope_of,
};

use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ViewOwnClient};
use crate::i18n::{Fields, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts/{id}", web::get().to(get_contact))
        .route("/contacts/{id}", web::patch().to(update_contact))
        .route("/contacts/{id}/identities", web::get().to(list_identities))
        .route(
            "/contacts/{id}/conversations",
            web::get().to(list_contact_conversations),
        )
        .route("/contacts/{id}/merge", web::post().to(merge_contacts))
        .route("/contacts/{id}/split", web::post().to(split_contact));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_contact,
    update_contact,
    list_identities,
    list_contact_conversations,
    merge_contacts,
    split_contact
))]
pub struct Api;

/// Largest `fields` document, serialised, in bytes.
const MAX_FIELDS_BYTES: usize = 16 * 1024;
/// Most custom fields on one contact.
const MAX_FIELDS: usize = 100;
const MAX_FIELD_NAME_CHARS: usize = 64;
const MAX_FIELD_VALUE_CHARS: usize = 2_000;

/// Custom fields are flat: names a person can read, values that are text (line breaks
/// allowed), numbers or booleans. Nested documents and nulls are refused rather than shown
/// as raw JSON.
fn check_fields(fields: &Value) -> ApiResult<()> {
    let Value::Object(map) = fields else {
        return Err(ApiError::Validation(Msg::NotJsonObject { field: "fields" }));
    };
    if map.len() > MAX_FIELDS {
        return Err(ApiError::Validation(Msg::ContactFieldCount {
            max: MAX_FIELDS,
        }));
    }
    if fields.to_string().len() > MAX_FIELDS_BYTES {
        return Err(ApiError::Validation(Msg::TextLength {
            field: "fields",
            max: MAX_FIELDS_BYTES,
        }));
    }
    for (key, value) in map {
        let n = key.chars().count();
        if n == 0
            || n > MAX_FIELD_NAME_CHARS
            || key.trim() != key
            || key.chars().any(char::is_control)
        {
            return Err(ApiError::Validation(Msg::ContactFieldName {
                max: MAX_FIELD_NAME_CHARS,
            }));
        }
        let plain = match value {
            Value::String(t) => {
                t.chars().count() <= MAX_FIELD_VALUE_CHARS
                    && !t
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            }
            Value::Number(_) | Value::Bool(_) => true,
            Value::Null | Value::Array(_) | Value::Object(_) => false,
        };
        if !plain {
            return Err(ApiError::Validation(Msg::ContactFieldValue {
                key: key.chars().take(MAX_FIELD_NAME_CHARS).collect(),
                max: MAX_FIELD_VALUE_CHARS,
            }));
        }
    }
    Ok(())
}

/// The names of the fields that differ between two field documents (added, removed or changed).
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn holds(who: &Principal, channel: ChannelId, rights: ChannelRights) -> bool {
    decide(who, Action::Channel(channel, rights)) == Decision::Allow
}

/// A contact of the caller's client with its identities, when the caller may see it (READ on
/// one of its channels) and, for `rights` beyond READ, holds them on one of its channels.
async fn accessible(
    state: &AppState,
    who: &Principal,
    client: ClientId,
    id: ContactId,
    rights: ChannelRights,
) -> ApiResult<(Contact, Vec<ContactIdentity>)> {
    let contact = state.store.get_contact(client, id).await?;
    let identities = state.store.contact_identities(client, id).await?;
    let owner = who.role == omnihub_core::Role::ClientOwner;
    let reads = owner
        || identities
            .iter()
            .any(|i| holds(who, i.channel_id, ChannelRights::READ));
    if !reads {
        return Err(ApiError::NotFound);
    }
    let may = owner || identities.iter().any(|i| holds(who, i.channel_id, rights));
    if !may {
        return Err(ApiError::Forbidden);
    }
    Ok((contact, identities))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = ContactId, Path, description = "contact id")),
    responses((status = 200, body = Contact), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "not the client's, or on no channel the caller reads", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_contact(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ContactId>,
) -> ApiResult<web::Json<Contact>> {
    let (contact, _) = accessible(
        &state,
        &caller.principal,
        caller.client_id()?,
        path.into_inner(),
        ChannelRights::READ,
    )
    .await?;
    Ok(web::Json(contact))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUpdate {
    /// 1 to 200 characters.
    pub name: Option<String>,
    /// Replaces the custom fields: a JSON object of at most 100 fields and 16 KiB, names of 1
    /// to 64 characters, values text (up to 2,000 characters), numbers or booleans.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
}

/// Renames a contact or replaces its custom fields; needs `reply` on one of its channels.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", request_body = ContactUpdate,
    params(("id" = ContactId, Path, description = "contact id")),
    responses((status = 200, body = Contact), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_contact(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ContactId>,
    body: web::Json<ContactUpdate>,
) -> ApiResult<web::Json<Contact>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let body = body.into_inner();
    let name = body
        .name
        .as_deref()
        .map(|n| validate::text("name", n, 200))
        .transpose()?;
    if let Some(fields) = &body.fields {
        check_fields(fields)?;
    }
    if name.is_none() && body.fields.is_none() {
        return Err(ApiError::Validation(Msg::NothingToChange {
            fields: Fields(&["name", "fields"]),
        }));
    }
    let (before, _) =
        accessible(&state, &caller.principal, client, id, ChannelRights::REPLY).await?;
    let contact = state
        .store
        .update_contact(client, id, name.as_deref(), body.fields.as_ref())
        .await?;
    // Which fields changed, by name: values may be personal data and stay out of the log.
    let fields_changed = body
        .fields
        .as_ref()
        .map(|after| changed_fields(&before.fields, after));
    state
        .audit(caller.audit(
            Some(client),
            "contact.update",
            "contact",
            id,
            json!({ "name": name.is_some(), "fields": body.fields.is_some(), "fields_changed": fields_changed }),
        ))
        .await?;
    Ok(web::Json(contact))
}

#[derive(Serialize, ToSchema)]
pub struct IdentityList {
    pub items: Vec<ContactIdentity>,
}

/// How the contact is known on each channel.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/identities", tag = "contacts",
    params(("id" = ContactId, Path, description = "contact id")),
    responses((status = 200, body = IdentityList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_identities(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ContactId>,
) -> ApiResult<web::Json<IdentityList>> {
    let (_, items) = accessible(
        &state,
        &caller.principal,
        caller.client_id()?,
        path.into_inner(),
        ChannelRights::READ,
    )
    .await?;
    Ok(web::Json(IdentityList { items }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The `next_before` of the previous page.
    pub before: Option<String>,
    /// 1 to 200 (larger values are clamped); 50 by default.
    pub limit: Option<u32>,
}

/// The contact's history: their conversations on every channel, newest activity first, each
/// with its current request number — only those the caller may see (an operator restricted to
/// their own conversations does not learn of a colleague's).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/conversations", tag = "contacts",
    params(("id" = ContactId, Path, description = "contact id"), HistoryQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "not the client's, or on no channel the caller reads", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_contact_conversations(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ContactId>,
    query: web::Query<HistoryQuery>,
) -> ApiResult<web::Json<ConversationPage>> {
    let client = caller.client_id()?;
    let who = &caller.principal;
    let id = path.into_inner();
    let q = query.into_inner();
    let limit = page_limit(q.limit);
    let before = q.before.as_deref().map(parse_cursor).transpose()?;
    accessible(&state, who, client, id, ChannelRights::READ).await?;
    let channels = readable_channels(who);
    if channels.as_ref().is_some_and(Vec::is_empty) {
        return Ok(web::Json(ConversationPage {
            items: Vec::new(),
            next_before: None,
        }));
    }
    let mut filter = ConversationFilter {
        channels,
        contact: Some(id),
        before,
        limit,
        ..Default::default()
    };
    narrow_to_visible(&mut filter, who);
    let rows = state
        .store
        .list_conversations(client, Some(who.user_id), &filter)
        .await?;
    let next_before = if rows.len() >= limit as usize {
        rows.last().map(cursor)
    } else {
        None
    };
    let items = rows
        .into_iter()
        .filter(|s| may_see(who, &scope_of(&s.conversation)))
        .collect();
    Ok(web::Json(ConversationPage { items, next_before }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The contact to fold into this one; it is deleted, its identities and conversations move.
    pub other_id: ContactId,
}

/// Merges another card into this one; needs `reply` on a channel of each.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", tag = "contacts", request_body = MergeRequest,
    params(("id" = ContactId, Path, description = "the contact that stays")),
    responses((status = 200, body = Contact), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn merge_contacts(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ContactId>,
    body: web::Json<MergeRequest>,
) -> ApiResult<web::Json<Contact>> {
    let client = caller.client_id()?;
    let keep = path.into_inner();
    let other = body.other_id;
    if keep == other {
        return Err(ApiError::Validation(Msg::MergeWithItself));
    }
    let who = &caller.principal;
    accessible(&state, who, client, keep, ChannelRights::REPLY).await?;
    accessible(&state, who, client, other, ChannelRights::REPLY).await?;
    let contact = state.store.merge_contacts(client, keep, other).await?;
    state
        .audit(caller.audit(
            Some(client),
            "contact.merge",
            "contact",
            keep,
            json!({ "merged_id": other }),
        ))
        .await?;
    Ok(web::Json(contact))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    /// The identity to detach: its channel…
    pub channel_id: ChannelId,
    /// …and the sender's id there.
    pub external_id: String,
}

/// Detaches one identity (and its conversations) into a new contact; needs `reply` on that
/// identity's channel.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/split", tag = "contacts", request_body = SplitRequest,
    params(("id" = ContactId, Path, description = "contact id")),
    responses((status = 201, description = "the new contact", body = Contact), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "the contact, or the identity on it, does not exist for the caller", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn split_contact(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ContactId>,
    body: web::Json<SplitRequest>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let body = body.into_inner();
    let who = &caller.principal;
    let (_, identities) = accessible(&state, who, client, id, ChannelRights::READ).await?;
    let identity = identities
        .into_iter()
        .find(|i| i.channel_id == body.channel_id && i.external_id == body.external_id)
        .ok_or(ApiError::NotFound)?;
    if !holds(who, identity.channel_id, ChannelRights::REPLY) {
        return Err(ApiError::Forbidden);
    }
    let contact = state.store.split_contact(client, id, &identity).await?;
    state
        .audit(caller.audit(
            Some(client),
            "contact.split",
            "contact",
            id,
            json!({ "new_contact_id": contact.id, "channel_id": identity.channel_id }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(contact))
}
