//! The HTTP side of the fake Bot API: `/bot<token>/<method>` and `/file/bot<token>/<path>`,
//! and the methods the Telegram connector calls. Every request goes through the same gate —
//! the token, the method, the contract check, the documented limits, an injected failure —
//! before its method runs.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::body::{self, UploadedFile};
use super::limits::RateLimits;
use super::schema::SCHEMA;
use super::state::{State, now, sent_message};
use super::{ApiError, WebhookRegistration};

/// State shared by the server and the test's handles.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Woken whenever an update is queued, for waiting getUpdates calls.
    pub updates_arrived: Notify,
    pub limits: RateLimits,
    /// Posts updates to webhooks.
    pub webhook_client: reqwest::Client,
}

impl Shared {
    pub fn new(limits: RateLimits, webhook_client: reqwest::Client) -> Shared {
        Shared {
            state: Mutex::new(State::new()),
            updates_arrived: Notify::new(),
            limits,
            webhook_client,
        }
    }

    /// The state; a panic elsewhere while it was held leaves it usable for the test to read.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The longest getUpdates wait the sandbox grants (Telegram's own cap is about 50 s).
const MAX_POLL_WAIT: Duration = Duration::from_secs(50);

/// `POST|GET /bot<token>/<method>`.
pub(crate) async fn method(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let (bot, method) = path.into_inner();
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let result = match bot.strip_prefix("bot") {
        None => Err(ApiError::new(404, "Not Found")),
        Some(token) => {
            call(
                shared.clone().into_inner(),
                token,
                &method,
                request.query_string(),
                content_type,
                &body,
            )
            .await
        }
    };
    if let Err(error) = &result
        && error.code == 429
    {
        shared.lock().too_many_requests += 1;
    }
    answer(result)
}

/// `GET /file/bot<token>/<file path>`.
pub(crate) async fn file(
    path: web::Path<(String, String)>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let (bot, file_path) = path.into_inner();
    let state = shared.lock();
    let known_bot = bot
        .strip_prefix("bot")
        .is_some_and(|token| state.bots.contains_key(token));
    if !known_bot {
        return answer(Err(ApiError::new(401, "Unauthorized")));
    }
    match state.files.values().find(|file| file.path == file_path) {
        Some(file) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(file.bytes.clone()),
        None => answer(Err(ApiError::new(404, "Not Found"))),
    }
}

fn answer(result: Result<Value, ApiError>) -> HttpResponse {
    match result {
        Ok(result) => HttpResponse::Ok().json(json!({"ok": true, "result": result})),
        Err(error) => {
            let mut body = json!({
                "ok": false,
                "error_code": error.code,
                "description": error.description,
            });
            if let Some(retry_after) = error.retry_after {
                body["parameters"] = json!({"retry_after": retry_after});
            }
            let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::BAD_REQUEST);
            HttpResponse::build(status).json(body)
        }
    }
}

/// A request that passed the gate: its parameters as typed JSON, and its files.
struct Admitted {
    params: serde_json::Map<String, Value>,
    files: Vec<UploadedFile>,
}

async fn call(
    shared: Arc<Shared>,
    token: &str,
    method: &str,
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, ApiError> {
    let admitted = admit(&mut shared.lock(), token, method, query, content_type, body)?;
    if method == "getUpdates" {
        return get_updates(&shared, token, &admitted.params).await;
    }
    let mut state = shared.lock();
    match method {
        "getMe" => Ok(bot(&mut state, token)?.user_json()),
        "getWebhookInfo" => webhook_info(&mut state, token),
        "setWebhook" => set_webhook(&mut state, token, &admitted.params),
        "deleteWebhook" => {
            let bot = bot(&mut state, token)?;
            bot.webhook = None;
            if admitted.params.get("drop_pending_updates") == Some(&Value::Bool(true)) {
                bot.pending.clear();
            }
            Ok(Value::Bool(true))
        }
        "sendMessage" | "sendPhoto" | "sendDocument" => send(&mut state, token, method, admitted),
        "getFile" => {
            let file_id = admitted.params["file_id"].as_str().unwrap_or_default();
            state
                .file_json(file_id)
                .ok_or_else(|| ApiError::bad_request("Bad Request: invalid file_id"))
        }
        "answerCallbackQuery" => {
            let id = admitted.params["callback_query_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let bot = bot(&mut state, token)?;
            if !bot.open_callbacks.remove(&id) {
                return Err(ApiError::bad_request(
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                ));
            }
            bot.answered_callbacks.push(id);
            Ok(Value::Bool(true))
        }
        // In the contract copy but not served: say so as Telegram does for unknown methods.
        _ => {
            state.violation(method, "a method the sandbox does not serve");
            Err(ApiError::new(404, "Not Found"))
        }
    }
}

fn bot<'a>(state: &'a mut State, token: &str) -> Result<&'a mut super::state::BotState, ApiError> {
    state
        .bots
        .get_mut(token)
        .ok_or_else(|| ApiError::new(401, "Unauthorized"))
}

/// The token, the method, the contract, the documented limits, then an injected failure.
fn admit(
    state: &mut State,
    token: &str,
    method: &str,
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Admitted, ApiError> {
    if !state.bots.contains_key(token) {
        return Err(ApiError::new(401, "Unauthorized"));
    }
    if !SCHEMA.has_method(method) {
        state.violation(method, "no such method in the contract");
        return Err(ApiError::new(404, "Not Found"));
    }
    let checked = body::parse(query, content_type, body).and_then(|request| {
        let params = SCHEMA.check_request(method, &request.params)?;
        check_limits(method, &params)?;
        Ok(Admitted {
            params,
            files: request.files,
        })
    });
    let admitted = match checked {
        Ok(admitted) => admitted,
        Err(problem) => {
            state.violation(method, problem.clone());
            return Err(ApiError::bad_request(&problem));
        }
    };
    if let Some(error) = bot(state, token)?.take_failure(method) {
        return Err(error);
    }
    Ok(admitted)
}

/// Limits the contract states in prose rather than in types.
fn check_limits(method: &str, params: &serde_json::Map<String, Value>) -> Result<(), String> {
    let chars = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_str)
            .map(|s| s.chars().count())
    };
    if method == "sendMessage" {
        let text = params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if text.trim().is_empty() {
            return Err("Bad Request: message text is empty".into());
        }
        if chars("text").unwrap_or_default() > 4096 {
            return Err("Bad Request: message is too long".into());
        }
    }
    if chars("caption").unwrap_or_default() > 1024 {
        return Err("Bad Request: message caption is too long".into());
    }
    if let Some(rows) = params
        .get("reply_markup")
        .and_then(|markup| markup.get("inline_keyboard"))
        .and_then(Value::as_array)
    {
        for button in rows.iter().filter_map(Value::as_array).flatten() {
            let actions = button.as_object().map_or(0, |b| {
                b.keys()
                    .filter(|k| !matches!(k.as_str(), "text" | "icon_custom_emoji_id" | "style"))
                    .count()
            });
            if actions != 1 {
                return Err("Bad Request: can't parse inline keyboard button: exactly one action field is required".into());
            }
            if let Some(data) = button.get("callback_data").and_then(Value::as_str)
                && !(1..=64).contains(&data.len())
            {
                return Err("Bad Request: BUTTON_DATA_INVALID".into());
            }
        }
    }
    if method == "setWebhook" {
        if let Some(secret) = params.get("secret_token").and_then(Value::as_str)
            && (!(1..=256).contains(&secret.len())
                || !secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err("Bad Request: secret token contains unallowed characters".into());
        }
        let url = params
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // The real API wants HTTPS on a public address; the sandbox delivers to loopback.
        if !url.is_empty()
            && !reqwest::Url::parse(url).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
        {
            return Err("Bad Request: bad webhook: invalid URL".into());
        }
    }
    if method == "getUpdates"
        && let Some(limit) = params.get("limit").and_then(Value::as_i64)
        && !(1..=100).contains(&limit)
    {
        return Err("Bad Request: limit must be between 1 and 100".into());
    }
    Ok(())
}

fn webhook_info(state: &mut State, token: &str) -> Result<Value, ApiError> {
    let bot = bot(state, token)?;
    let mut info = json!({
        "url": bot.webhook.as_ref().map_or("", |hook| hook.url.as_str()),
        "has_custom_certificate": false,
        "pending_update_count": bot.pending.len(),
    });
    if let Some(hook) = &bot.webhook {
        info["max_connections"] = json!(40);
        if let Some(kinds) = &hook.allowed_updates {
            info["allowed_updates"] = json!(kinds);
        }
    }
    if let Some((date, message)) = &bot.last_webhook_error {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    state.self_check("WebhookInfo", &info);
    Ok(info)
}

fn set_webhook(
    state: &mut State,
    token: &str,
    params: &serde_json::Map<String, Value>,
) -> Result<Value, ApiError> {
    let bot = bot(state, token)?;
    let url = params["url"].as_str().unwrap_or_default();
    let allowed_updates = params.get("allowed_updates").and_then(|kinds| {
        kinds.as_array().map(|kinds| {
            kinds
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
    });
    if allowed_updates.is_some() {
        bot.allowed_updates.clone_from(&allowed_updates);
    }
    if params.get("drop_pending_updates") == Some(&Value::Bool(true)) {
        bot.pending.clear();
    }
    // An empty URL removes the webhook, as in the real API.
    bot.webhook = (!url.is_empty()).then(|| WebhookRegistration {
        url: url.to_string(),
        secret_token: params
            .get("secret_token")
            .and_then(Value::as_str)
            .map(str::to_string),
        allowed_updates,
    });
    bot.last_webhook_error = None;
    Ok(Value::Bool(true))
}

/// getUpdates: confirms everything before `offset`, answers what is pending, or waits up to
/// `timeout` seconds for something to arrive.
async fn get_updates(
    shared: &Shared,
    token: &str,
    params: &serde_json::Map<String, Value>,
) -> Result<Value, ApiError> {
    let offset = params.get("offset").and_then(Value::as_i64);
    let limit = params
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(100, |limit| usize::try_from(limit).unwrap_or(100));
    let timeout = Duration::from_secs(params.get("timeout").and_then(Value::as_u64).unwrap_or(0))
        .min(MAX_POLL_WAIT);
    let deadline = Instant::now() + timeout;
    let generation = {
        let mut state = shared.lock();
        let bot = bot(&mut state, token)?;
        bot.poll_generation += 1;
        bot.poll_generation
    };
    // Wakes an older call still waiting, which then gives up.
    shared.updates_arrived.notify_waiters();
    loop {
        // Registered before looking, so an update queued in between still wakes us.
        let arrived = shared.updates_arrived.notified();
        {
            let mut state = shared.lock();
            let bot = bot(&mut state, token)?;
            if bot.poll_generation != generation {
                bot.poll_conflicts += 1;
                return Err(ApiError::new(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                ));
            }
            if bot.webhook.is_some() {
                return Err(ApiError::new(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                ));
            }
            if let Some(kinds) = params.get("allowed_updates").and_then(Value::as_array) {
                bot.allowed_updates = Some(
                    kinds
                        .iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect(),
                );
            }
            if let Some(offset) = offset {
                bot.pending
                    .retain(|update| update["update_id"].as_i64().unwrap_or_default() >= offset);
            }
            let ready: Vec<Value> = bot.pending.iter().take(limit).cloned().collect();
            if !ready.is_empty() || Instant::now() >= deadline {
                return Ok(Value::Array(ready));
            }
        }
        // Either an update arrives or the wait is over; both lead back to the check above.
        let _ = tokio::time::timeout_at(deadline.into(), arrived).await;
    }
}

/// sendMessage, sendPhoto and sendDocument.
fn send(
    state: &mut State,
    token: &str,
    method: &str,
    admitted: Admitted,
) -> Result<Value, ApiError> {
    let params = &admitted.params;
    let chat_not_found = || ApiError::bad_request("Bad Request: chat not found");
    let chat_id = params["chat_id"].as_i64().ok_or_else(chat_not_found)?;
    let reply = params.get("reply_parameters");
    let reply_to = reply
        .and_then(|reply| reply["message_id"].as_i64())
        .and_then(|id| i32::try_from(id).ok());
    {
        let bot = bot(state, token)?;
        let chat = bot.chats.get(&chat_id).ok_or_else(chat_not_found)?;
        if chat.blocked {
            bot.blocked_refusals += 1;
            return Err(ApiError::blocked_by_user());
        }
        let reply_missing = reply_to.is_some_and(|id| !chat.messages.contains_key(&id));
        let may_go_without = reply
            .and_then(|reply| reply["allow_sending_without_reply"].as_bool())
            .unwrap_or(false);
        if reply_missing && !may_go_without {
            return Err(ApiError::bad_request(
                "Bad Request: message to be replied not found",
            ));
        }
        bot.flood
            .take(chat_id, Instant::now())
            .map_err(ApiError::too_many_requests)?;
    }
    let mut content = serde_json::Map::new();
    for key in ["text", "caption", "reply_markup"] {
        if let Some(value) = params.get(key) {
            content.insert(key.into(), value.clone());
        }
    }
    if method != "sendMessage" {
        let field = if method == "sendPhoto" {
            "photo"
        } else {
            "document"
        };
        let media = media(state, field, params, &admitted.files)?;
        content.insert(field.into(), media);
    }
    let bot = bot(state, token)?;
    let from = bot.user_json();
    let chat = bot.chats.get_mut(&chat_id).ok_or_else(chat_not_found)?;
    if let Some(original) = reply_to.and_then(|id| chat.messages.get(&id)) {
        content.insert("reply_to_message".into(), original.clone());
    }
    let message = chat.add_message(from, content);
    bot.sent
        .push(sent_message(method, &message, reply_to, admitted.files));
    state.self_check("Message", &message);
    Ok(message)
}

/// The `photo` sizes or the `document` of a sent file: uploaded now, or reused by file id.
fn media(
    state: &mut State,
    field: &str,
    params: &serde_json::Map<String, Value>,
    files: &[UploadedFile],
) -> Result<Value, ApiError> {
    let bytes = match (
        files.iter().find(|file| file.field == field),
        params.get(field),
    ) {
        (Some(upload), _) => upload.bytes.clone(),
        (None, Some(Value::String(file_id))) => state
            .files
            .get(file_id)
            .map(|file| file.bytes.clone())
            .ok_or_else(|| {
                ApiError::bad_request("Bad Request: wrong file identifier/HTTP URL specified")
            })?,
        (None, _) => {
            return Err(ApiError::bad_request(&format!(
                "Bad Request: there is no {field} in the request"
            )));
        }
    };
    if field == "photo" {
        return Ok(state.photo_sizes(bytes));
    }
    let upload = files.iter().find(|file| file.field == field);
    let file_name = upload.and_then(|file| file.file_name.clone());
    let extension = file_name
        .as_deref()
        .and_then(|name| name.rsplit_once('.'))
        .map_or("bin", |(_, extension)| extension)
        .to_string();
    let file_id = state.store_file("documents", &extension, bytes);
    let mut document = state.file_fields(&file_id);
    if let Some(file_name) = file_name {
        document.insert("file_name".into(), json!(file_name));
    }
    if let Some(mime) = upload.and_then(|file| file.mime_type.clone()) {
        document.insert("mime_type".into(), json!(mime));
    }
    Ok(Value::Object(document))
}

/// Telegram's words for a webhook that did not take an update, as getWebhookInfo shows them.
pub(crate) fn webhook_error(
    outcome: Result<reqwest::StatusCode, &reqwest::Error>,
) -> (u64, String) {
    let message = match outcome {
        Ok(status) => format!(
            "Wrong response from the webhook: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        Err(error) if error.is_timeout() => "Read timeout expired".to_string(),
        Err(error) if error.is_connect() => "Connection refused".to_string(),
        Err(error) => format!("Webhook delivery failed: {error}"),
    };
    (now(), message.trim().to_string())
}
