//! The VK methods the fake serves, and its upload endpoints. Each call is checked against the
//! schema first (violations recorded), then the token, the rate limit and injected failures
//! decide whether it is served.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{CallbackServer, EventAnswer, SentMessage, State, post_json, wall};
use crate::support::multipart;

/// VK's error codes the fake answers with.
pub(super) mod codes {
    pub const UNKNOWN_METHOD: i64 = 3;
    pub const AUTH_FAILED: i64 = 5;
    pub const TOO_MANY_REQUESTS: i64 = 6;
    pub const ACCESS_DENIED: i64 = 15;
    pub const INVALID_PARAM: i64 = 100;
    /// `api_error_messages_deny_send` of the schema's errors.json.
    pub const MESSAGES_DENY_SEND: i64 = 901;
}

type Params = [(String, String)];

/// The API version of the copied schema.
pub(super) const API_VERSION: &str = "5.199";

pub(super) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn int_param(params: &Params, name: &str) -> Option<i64> {
    param(params, name)?.parse().ok()
}

fn flag(params: &Params, name: &str) -> Option<bool> {
    param(params, name).map(|v| v == "1" || v == "true")
}

pub(super) struct Refusal {
    code: i64,
    message: Option<String>,
}

fn refuse(code: i64) -> Refusal {
    Refusal {
        code,
        message: None,
    }
}

pub(super) fn refuse_with(code: i64, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: Some(message.into()),
    }
}

/// Serves one method call and returns VK's answer object.
pub(super) async fn call(state: &State, name: &str, params: &Params) -> Value {
    *state.lock().calls.entry(name.to_string()).or_default() += 1;
    if state.spec.knows(name) {
        for problem in state.spec.check(name, params) {
            state.violations.record(problem);
        }
    }
    if let Some(version) = param(params, "v")
        && version != API_VERSION
    {
        state.violations.record(format!(
            "{name}: v={version}, but the schema is for {API_VERSION}"
        ));
    }
    match serve(state, name, params).await {
        Ok(response) => json!({ "response": response }),
        Err(refusal) => {
            let message = refusal.message.map_or_else(
                || state.spec.error_message(refusal.code),
                |detail| format!("{}: {detail}", state.spec.error_message(refusal.code)),
            );
            let request_params: Vec<Value> = params
                .iter()
                .filter(|(k, _)| k != "access_token")
                .map(|(k, v)| json!({"key": k, "value": v}))
                .chain([json!({"key": "method", "value": name})])
                .collect();
            json!({"error": {"error_code": refusal.code, "error_msg": message,
                "request_params": request_params}})
        }
    }
}

async fn serve(state: &State, name: &str, params: &Params) -> Result<Value, Refusal> {
    if !param(params, "access_token").is_some_and(|t| state.token_accepted(t)) {
        return Err(refuse_with(codes::AUTH_FAILED, "invalid access_token"));
    }
    if !state
        .rate
        .admit(&state.config.access_token, state.config.requests_per_second)
    {
        state.lock().rate_limited += 1;
        return Err(refuse(codes::TOO_MANY_REQUESTS));
    }
    if !state.spec.knows(name) {
        return Err(refuse(codes::UNKNOWN_METHOD));
    }
    let injected = state
        .lock()
        .failures
        .get_mut(name)
        .and_then(|queue| queue.pop_front());
    if let Some(code) = injected {
        return Err(refuse(code));
    }
    if let Some(group_id) = int_param(params, "group_id")
        && group_id != state.config.group_id
    {
        return Err(refuse_with(
            codes::ACCESS_DENIED,
            "no access to this community",
        ));
    }
    match name {
        "messages.send" => send(state, params),
        "messages.sendMessageEventAnswer" => answer_event(state, params),
        "photos.getMessagesUploadServer" => Ok(upload_server(state, "photo")),
        "docs.getMessagesUploadServer" => Ok(upload_server(state, "doc")),
        "photos.saveMessagesPhoto" => save_photo(state, params),
        "docs.save" => save_doc(state, params),
        "groups.getById" => Ok(json!({
            "groups": [{"id": state.config.group_id, "name": "Sandbox community",
                "screen_name": format!("club{}", state.config.group_id), "is_closed": 0,
                "type": "group"}],
            "profiles": [],
        })),
        // The person administers the one community the fake serves.
        "groups.get" => Ok(json!({
            "count": 1,
            "items": [{"id": state.config.group_id, "name": "Sandbox community",
                "screen_name": format!("club{}", state.config.group_id), "is_closed": 0,
                "type": "group", "is_admin": 1, "admin_level": 3}],
        })),
        "groups.getCallbackServers" => Ok(callback_servers(state)),
        "groups.getCallbackConfirmationCode" => Ok(json!({"code": state.config.confirmation_code})),
        "photos.getWallUploadServer" => Ok(upload_server(state, "photo")),
        "photos.saveWallPhoto" => save_photo(state, params),
        "video.save" => Ok(save_video(state, params)),
        "wall.get" => wall::get(state, params),
        "wall.getById" => wall::get_by_id(state, params),
        "wall.post" => wall::post(state, params),
        "wall.edit" => wall::edit(state, params),
        "wall.delete" => wall::delete(state, params),
        "wall.getComments" => wall::get_comments(state, params),
        "wall.createComment" => wall::create_comment(state, params),
        "wall.deleteComment" => wall::delete_comment(state, params),
        "likes.add" => wall::like(state, params, true),
        "likes.delete" => wall::like(state, params, false),
        "groups.addCallbackServer" => add_callback_server(state, params).await,
        "groups.editCallbackServer" => edit_callback_server(state, params).await,
        "groups.setCallbackSettings" => set_callback_settings(state, params),
        "groups.setLongPollSettings" => set_long_poll_settings(state, params),
        "groups.getLongPollServer" => long_poll_server(state),
        _ => Err(refuse(codes::UNKNOWN_METHOD)),
    }
}

fn send(state: &State, params: &Params) -> Result<Value, Refusal> {
    let peer_id = int_param(params, "peer_id")
        .or_else(|| int_param(params, "user_id"))
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "peer_id is undefined"))?;
    let random_id = int_param(params, "random_id")
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "random_id is a required parameter"))?;
    let text = param(params, "message").unwrap_or("").to_string();
    let attachments: Vec<String> = param(params, "attachment")
        .map(|list| {
            list.split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() && attachments.is_empty() {
        return Err(refuse_with(
            codes::INVALID_PARAM,
            "message is empty or invalid",
        ));
    }
    let parse = |name| param(params, name).and_then(|v| serde_json::from_str::<Value>(v).ok());
    let mut inner = state.lock();
    if inner.denied.contains(&peer_id) {
        return Err(refuse(codes::MESSAGES_DENY_SEND));
    }
    if let Some(unknown) = attachments.iter().find(|a| !inner.media.contains_key(*a)) {
        return Err(refuse_with(
            codes::INVALID_PARAM,
            format!("attachment {unknown} not found"),
        ));
    }
    if let Some(id) = inner.sent_by_random_id.get(&(peer_id, random_id)) {
        return Ok(json!(id));
    }
    let message_id = inner.next_id;
    inner.next_id += 1;
    inner
        .sent_by_random_id
        .insert((peer_id, random_id), message_id);
    inner.sent.push(SentMessage {
        message_id,
        peer_id,
        random_id,
        text,
        keyboard: parse("keyboard"),
        attachments,
        reply_to: int_param(params, "reply_to"),
        forward: parse("forward"),
    });
    Ok(json!(message_id))
}

fn answer_event(state: &State, params: &Params) -> Result<Value, Refusal> {
    let event_id = param(params, "event_id").unwrap_or("").to_string();
    let user_id = int_param(params, "user_id").unwrap_or(0);
    let peer_id = int_param(params, "peer_id").unwrap_or(0);
    let mut inner = state.lock();
    match inner.presses.get(&event_id) {
        Some(&(user, peer)) if user == user_id && peer == peer_id => {
            inner.presses.remove(&event_id);
            inner.answers.push(EventAnswer {
                event_id,
                user_id,
                peer_id,
            });
            Ok(json!(1))
        }
        _ => Err(refuse_with(codes::INVALID_PARAM, "event_id is invalid")),
    }
}

fn upload_server(state: &State, kind: &'static str) -> Value {
    let slot = state.new_key();
    state.lock().upload_slots.insert(slot.clone(), kind);
    let upload_url = format!("{}upload/{kind}/{slot}", state.base);
    if kind == "photo" {
        json!({"upload_url": upload_url, "album_id": -3, "user_id": 0,
            "group_id": state.config.group_id})
    } else {
        json!({"upload_url": upload_url})
    }
}

/// `POST /upload/<kind>/<slot>`: the multipart upload a `get…UploadServer` URL points to.
pub(super) async fn upload(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (kind, slot) = path.into_inner();
    let expected = state.lock().upload_slots.get(&slot).copied();
    if expected != Some(kind.as_str()) {
        return HttpResponse::Ok().json(json!({"error": "invalid upload url"}));
    }
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts = match multipart(content_type, &body) {
        Ok(parts) => parts,
        Err(err) => {
            state.violations.record(format!("upload {kind}: {err}"));
            return HttpResponse::Ok().json(json!({"error": err}));
        }
    };
    let field = match kind.as_str() {
        "photo" => "photo",
        "video" => "video_file",
        _ => "file",
    };
    let Some(part) = parts.into_iter().find(|p| p.name == field) else {
        state
            .violations
            .record(format!("upload {kind}: no multipart field {field}"));
        return HttpResponse::Ok().json(json!({"error": format!("no field {field}")}));
    };
    let mime = part
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    if kind == "video" && !looks_like_video(&part.bytes) {
        return HttpResponse::Ok().json(json!({"error": "the file is not a video"}));
    }
    let size = part.bytes.len();
    let index = state.store_file(part.bytes, &mime);
    if kind == "video" {
        let owner = -state.config.group_id;
        let mut inner = state.lock();
        inner.upload_slots.remove(&slot);
        let Some(id) = inner.video_slots.remove(&slot) else {
            return HttpResponse::Ok().json(json!({"error": "invalid upload url"}));
        };
        inner.media.insert(format!("video{owner}_{id}"), index);
        return HttpResponse::Ok().json(json!({"size": size, "video_id": id,
            "owner_id": owner, "video_hash": format!("vh{id}")}));
    }
    let token = state.new_key();
    let mut inner = state.lock();
    inner.upload_slots.remove(&slot);
    inner.pending_uploads.insert(token.clone(), index);
    let answer = if kind == "photo" {
        json!({"server": 1, "photo": token, "hash": format!("h{token}")})
    } else {
        json!({"file": token})
    };
    HttpResponse::Ok().json(answer)
}

/// `video.save`: a video of the community to be, and the URL its file goes to.
fn save_video(state: &State, params: &Params) -> Value {
    let slot = state.new_key();
    let mut inner = state.lock();
    let id = inner.next_id;
    inner.next_id += 1;
    inner.upload_slots.insert(slot.clone(), "video");
    inner.video_slots.insert(slot.clone(), id);
    json!({"upload_url": format!("{}upload/video/{slot}", state.base), "video_id": id,
        "owner_id": -state.config.group_id,
        "title": param(params, "name").unwrap_or(""),
        "description": param(params, "description").unwrap_or(""),
        "access_key": format!("k{id}")})
}

/// Whether the bytes open like a video (an ISO media `ftyp` box or an EBML header).
fn looks_like_video(bytes: &[u8]) -> bool {
    (bytes.len() >= 12 && &bytes[4..8] == b"ftyp") || bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3])
}

fn save_photo(state: &State, params: &Params) -> Result<Value, Refusal> {
    let photo = param(params, "photo").unwrap_or("");
    if param(params, "hash") != Some(format!("h{photo}").as_str()) {
        return Err(refuse_with(codes::INVALID_PARAM, "invalid hash"));
    }
    let mut inner = state.lock();
    let index = inner
        .pending_uploads
        .remove(photo)
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "photo is undefined"))?;
    let id = inner.next_id;
    inner.next_id += 1;
    let owner = -state.config.group_id;
    inner.media.insert(format!("photo{owner}_{id}"), index);
    Ok(
        json!([{"id": id, "owner_id": owner, "album_id": -3, "date": 0, "text": "",
        "sizes": [{"type": "x", "url": state.file_url(index), "width": 0, "height": 0}]}]),
    )
}

fn save_doc(state: &State, params: &Params) -> Result<Value, Refusal> {
    let file = param(params, "file").unwrap_or("");
    let title = param(params, "title").unwrap_or("file").to_string();
    let mut inner = state.lock();
    let index = inner
        .pending_uploads
        .remove(file)
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "file is undefined"))?;
    let id = inner.next_id;
    inner.next_id += 1;
    let owner = -state.config.group_id;
    inner.media.insert(format!("doc{owner}_{id}"), index);
    let size = inner.files.get(index).map_or(0, |(bytes, _)| bytes.len());
    let ext = title.rsplit('.').next().unwrap_or("").to_string();
    Ok(
        json!({"type": "doc", "doc": {"id": id, "owner_id": owner, "title": title,
        "size": size, "ext": ext, "url": state.file_url(index), "date": 0, "type": 8}}),
    )
}

fn callback_servers(state: &State) -> Value {
    let inner = state.lock();
    let items: Vec<Value> = inner
        .servers
        .iter()
        .map(|s| {
            json!({"id": s.id, "title": s.title, "creator_id": 1, "url": s.url,
                "secret_key": s.secret_key, "status": s.status})
        })
        .collect();
    json!({"count": items.len(), "items": items})
}

async fn add_callback_server(state: &State, params: &Params) -> Result<Value, Refusal> {
    let url = param(params, "url").unwrap_or("").to_string();
    if url.is_empty() {
        return Err(refuse_with(codes::INVALID_PARAM, "url is undefined"));
    }
    let id = {
        let mut inner = state.lock();
        let id = inner.servers.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        inner.servers.push(CallbackServer {
            id,
            url,
            title: param(params, "title").unwrap_or("").to_string(),
            secret_key: param(params, "secret_key").unwrap_or("").to_string(),
            status: "unconfigured".into(),
            events: Vec::new(),
        });
        id
    };
    confirm(state, id).await;
    Ok(json!({"server_id": id}))
}

async fn edit_callback_server(state: &State, params: &Params) -> Result<Value, Refusal> {
    let id = int_param(params, "server_id").unwrap_or(0);
    {
        let mut inner = state.lock();
        let server = inner
            .servers
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "server_id is invalid"))?;
        server.url = param(params, "url").unwrap_or("").to_string();
        server.title = param(params, "title").unwrap_or("").to_string();
        server.secret_key = param(params, "secret_key").unwrap_or("").to_string();
        server.status = "unconfigured".into();
    }
    confirm(state, id).await;
    Ok(json!(1))
}

/// Sends the confirmation request; the server is `ok` only if it echoes the code.
async fn confirm(state: &State, id: i64) {
    let Some(url) = state
        .lock()
        .servers
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.url.clone())
    else {
        return;
    };
    let body = json!({"type": "confirmation", "group_id": state.config.group_id});
    let (status, answer) = post_json(&state.http, &url, &body).await;
    let confirmed = status == 200 && answer == state.config.confirmation_code;
    if let Some(server) = state.lock().servers.iter_mut().find(|s| s.id == id) {
        server.status = if confirmed { "ok" } else { "failed" }.into();
    }
}

/// The event switches both settings methods take.
fn event_switches(params: &Params) -> Vec<(String, bool)> {
    params
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "group_id" | "server_id" | "api_version" | "enabled" | "access_token" | "v"
            )
        })
        .filter_map(|(k, _)| Some((k.clone(), flag(params, k)?)))
        .collect()
}

fn set_callback_settings(state: &State, params: &Params) -> Result<Value, Refusal> {
    let id = int_param(params, "server_id").unwrap_or(0);
    let mut inner = state.lock();
    let server = inner
        .servers
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "server_id is invalid"))?;
    for (event, on) in event_switches(params) {
        server.events.retain(|e| *e != event);
        if on {
            server.events.push(event);
        }
    }
    Ok(json!(1))
}

fn set_long_poll_settings(state: &State, params: &Params) -> Result<Value, Refusal> {
    if let Some(enabled) = flag(params, "enabled") {
        state.lock().long_poll.enabled = enabled;
    }
    Ok(json!(1))
}

fn long_poll_server(state: &State) -> Result<Value, Refusal> {
    let inner = state.lock();
    if !inner.long_poll.enabled {
        return Err(refuse_with(
            codes::INVALID_PARAM,
            "Bots Long Poll is disabled for this community",
        ));
    }
    Ok(json!({
        "key": inner.long_poll.key,
        "server": format!("{}lp/{}", state.base, state.config.group_id),
        "ts": inner.long_poll.next_ts.to_string(),
    }))
}
