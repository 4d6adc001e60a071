//! A fake Telegram Bot API server, following the contract in `sandbox/specs/telegram/api.json`
//! (Bot API 10.1, trimmed to the methods served and the types they reach).
//!
//! It serves `/bot<token>/<method>` for getMe, getWebhookInfo, setWebhook, deleteWebhook,
//! getUpdates, sendMessage, sendPhoto, sendDocument, getFile and answerCallbackQuery — with
//! parameters in the query string, JSON, urlencoded or multipart bodies, as the real one takes
//! them — and `/file/bot<token>/<file_path>` for downloads. Answers are
//! `{"ok":true,"result":…}` or `{"ok":false,"error_code","description","parameters"}` with
//! the HTTP status equal to `error_code`, like the real API's.
//!
//! Like the real API it answers 401 "Unauthorized" for an unknown token, 404 for an unknown
//! method, 400 "Bad Request: chat not found" for a chat whose customer never wrote, 403
//! "Forbidden: bot was blocked by the user" after [`FakeBot::customer_blocks_bot`] (which, as in
//! the real API, also sends the bot a `my_chat_member` update with its new status `kicked`), and 409
//! for getUpdates while a webhook is set or while another getUpdates is waiting. Unlike it, it
//! accepts `http://` webhooks on loopback.
//!
//! Stricter than the real API, to catch connector mistakes: every request is checked against
//! the contract (required parameters present, each of a type the contract allows, no unknown
//! parameter or field) and against limits the contract states in prose (text 1–4096
//! characters, captions up to 1024, `callback_data` 1–64 bytes, one action per inline button,
//! the `secret_token` alphabet). A failing request is answered 400 "Bad Request: …" and
//! recorded as a [`Violation`]; so is any object the sandbox itself makes that strays from the
//! contract. A test asserts `violations()` is empty.
//!
//! Flood limits ([`RateLimits::TELEGRAM`]): 30 messages per second per bot and one per second
//! per chat, with bursts of 30 and 3; beyond them sends are answered 429 "Too Many Requests:
//! retry after N" with `parameters.retry_after`, and counted ([`too_many_requests_sent`]).
//!
//! Customers are scripted through [`FakeBot`]: what they do becomes an `Update` that is POSTed
//! to the webhook set by setWebhook (with `X-Telegram-Bot-Api-Secret-Token`, as Telegram does),
//! or queued for getUpdates when no webhook is set. A failed webhook delivery is recorded as
//! getWebhookInfo's `last_error_message`; the sandbox does not retry it by itself
//! ([`FakeBot::redeliver`] does). A getUpdates call still waiting when another one for the same
//! bot arrives is answered 409 "Conflict: terminated by other getUpdates request", as two
//! instances polling one bot are in the real API. The sandbox does not resize photos: every
//! size of a photo holds the original bytes.
//!
//! [`too_many_requests_sent`]: TelegramSandbox::too_many_requests_sent

mod body;
mod limits;
mod schema;
mod server;
mod state;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use serde_json::{Value, json};

pub use body::UploadedFile;
pub use limits::RateLimits;

use server::Shared;
use state::BotState;

/// The largest request body accepted (uploads are at most 50 MB).
const MAX_REQUEST: usize = 60 * 1024 * 1024;
/// How long a webhook may take to answer one update.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A running fake Bot API on an ephemeral loopback port; dropping it stops the server.
pub struct TelegramSandbox {
    base_url: reqwest::Url,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

/// One bot of the sandbox, and the customers writing to it.
#[derive(Clone)]
pub struct FakeBot {
    shared: Arc<Shared>,
    token: String,
    id: i64,
}

/// A Telegram user writing to a bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

impl Customer {
    pub fn new(id: i64, first_name: impl Into<String>) -> Customer {
        Customer {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
            language_code: None,
        }
    }

    pub fn last_name(mut self, last_name: impl Into<String>) -> Customer {
        self.last_name = Some(last_name.into());
        self
    }

    pub fn username(mut self, username: impl Into<String>) -> Customer {
        self.username = Some(username.into());
        self
    }

    pub fn language(mut self, code: impl Into<String>) -> Customer {
        self.language_code = Some(code.into());
        self
    }

    fn user_json(&self) -> Value {
        let mut user = json!({"id": self.id, "is_bot": false, "first_name": self.first_name});
        if let Some(last) = &self.last_name {
            user["last_name"] = json!(last);
        }
        if let Some(username) = &self.username {
            user["username"] = json!(username);
        }
        if let Some(code) = &self.language_code {
            user["language_code"] = json!(code);
        }
        user
    }
}

/// What a customer sends in a message.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomerContent {
    Text(String),
    Photo {
        bytes: Vec<u8>,
        caption: Option<String>,
    },
    Document {
        file_name: String,
        mime_type: String,
        bytes: Vec<u8>,
        caption: Option<String>,
    },
    /// A voice note (OGG/Opus).
    Voice {
        bytes: Vec<u8>,
        duration: u32,
    },
    Audio {
        file_name: String,
        mime_type: String,
        bytes: Vec<u8>,
        duration: u32,
    },
    Video {
        bytes: Vec<u8>,
        width: u32,
        height: u32,
        duration: u32,
        caption: Option<String>,
    },
    /// A static WebP sticker.
    Sticker {
        bytes: Vec<u8>,
        emoji: String,
    },
    Location {
        latitude: f64,
        longitude: f64,
    },
    Contact {
        phone_number: String,
        first_name: String,
        last_name: Option<String>,
        user_id: Option<i64>,
    },
}

/// What became of a customer's action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerAction {
    pub update_id: i64,
    /// The customer's message (new or edited); `None` for a button press.
    pub message_id: Option<i32>,
    /// The callback query of a button press.
    pub callback_query_id: Option<String>,
    pub delivery: Delivery,
}

/// How an update reached the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// POSTed to the webhook, which answered this status.
    Webhook { status: u16 },
    /// The webhook could not be reached.
    WebhookUnreachable(String),
    /// Queued for getUpdates.
    Queued,
    /// The bot's `allowed_updates` exclude this kind: dropped, as Telegram does.
    Filtered,
}

/// A message a bot sent, as the sandbox received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub chat_id: i64,
    pub message_id: i32,
    /// `sendMessage`, `sendPhoto` or `sendDocument`.
    pub method: String,
    /// The text, or the caption of a file.
    pub text: Option<String>,
    /// The inline keyboard, row by row.
    pub keyboard: Vec<Vec<SentButton>>,
    /// The message it quotes.
    pub reply_to: Option<i32>,
    /// Uploaded files (none when a file was sent again by its id).
    pub files: Vec<UploadedFile>,
    /// When the fake accepted it (what its rate limits count).
    pub accepted_at: std::time::Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentButton {
    pub text: String,
    pub callback_data: Option<String>,
    pub url: Option<String>,
}

/// A request (or an object of the sandbox's own) that strays from the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub method: String,
    pub problem: String,
}

/// The webhook a bot registered with setWebhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRegistration {
    pub url: String,
    pub secret_token: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
}

/// An error answer of the Bot API, for [`FakeBot::fail_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: u16, description: impl Into<String>) -> ApiError {
        ApiError {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(description: &str) -> ApiError {
        ApiError::new(400, description)
    }

    /// 429 with `parameters.retry_after`.
    pub fn too_many_requests(retry_after: u64) -> ApiError {
        ApiError {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }

    pub fn blocked_by_user() -> ApiError {
        ApiError::new(403, "Forbidden: bot was blocked by the user")
    }

    pub fn internal() -> ApiError {
        ApiError::new(500, "Internal Server Error")
    }
}

/// A customer action the sandbox cannot play.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("no bot with that token in the sandbox")]
    UnknownBot,
    #[error("chat {0} has not been opened by a customer")]
    UnknownChat(i64),
    #[error("no message {message_id} of this customer in chat {chat_id}")]
    NoSuchMessage { chat_id: i64, message_id: i32 },
    #[error("no message of the bot in chat {chat_id} has a button with callback data {data:?}")]
    NoSuchButton { chat_id: i64, data: String },
    #[error("no update {0}")]
    NoSuchUpdate(i64),
    #[error("the bot's status in chat {0} is already that")]
    NoChange(i64),
}

impl TelegramSandbox {
    /// A sandbox enforcing Telegram's flood limits.
    pub async fn start() -> std::io::Result<TelegramSandbox> {
        TelegramSandbox::start_with_limits(RateLimits::TELEGRAM).await
    }

    pub async fn start_with_limits(limits: RateLimits) -> std::io::Result<TelegramSandbox> {
        let webhook_client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            // Webhooks go to a local omnihub, whose demo certificate is self-signed.
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared::new(limits, webhook_client));
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_REQUEST))
                .route("/file/{bot}/{path:.*}", web::get().to(server::file))
                .route("/{bot}/{method}", web::route().to(server::method))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("the sandbox bound no address"))?;
        let base_url =
            reqwest::Url::parse(&format!("http://{addr}/")).map_err(std::io::Error::other)?;
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(TelegramSandbox {
            base_url,
            shared,
            server: handle,
        })
    }

    /// The API base URL to give the connector (`http://127.0.0.1:<port>/`).
    pub fn base_url(&self) -> reqwest::Url {
        self.base_url.clone()
    }

    /// Registers a bot; requests with any other token are answered 401. Tokens look like
    /// BotFather's: `<bot id>:<secret>` (the bot's id is the part before the colon, or 1).
    pub fn add_bot(&self, token: &str) -> FakeBot {
        let id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(1);
        self.shared
            .lock()
            .bots
            .entry(token.to_string())
            .or_insert_with(|| BotState::new(id, self.shared.limits));
        FakeBot {
            shared: Arc::clone(&self.shared),
            token: token.to_string(),
            id,
        }
    }

    /// Unregisters a bot: its token is answered 401 from now on (a revoked token).
    pub fn remove_bot(&self, token: &str) {
        self.shared.lock().bots.remove(token);
    }

    /// Every contract violation seen so far, oldest first.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.clone()
    }

    /// How many 429 answers the sandbox sent (flood limits and injected ones).
    pub fn too_many_requests_sent(&self) -> u64 {
        self.shared.lock().too_many_requests
    }
}

/// Checks a value against a type of the contract (`"Update"`, `"Message"`…), as the sandbox
/// checks requests: for tests that build Telegram payloads by hand.
pub fn conforms(type_name: &str, value: &Value) -> Result<(), String> {
    schema::SCHEMA.check_value(type_name, value)
}

impl Drop for TelegramSandbox {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only reports completion.
        drop(self.server.stop(false));
    }
}

impl FakeBot {
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The bot's user id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The customer writes `text` in chat `chat_id` (their private chat: usually their id).
    pub async fn customer_says(
        &self,
        chat_id: i64,
        customer: &Customer,
        text: &str,
    ) -> Result<CustomerAction, SandboxError> {
        self.customer_sends(chat_id, customer, CustomerContent::Text(text.into()))
            .await
    }

    pub async fn customer_sends_photo(
        &self,
        chat_id: i64,
        customer: &Customer,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<CustomerAction, SandboxError> {
        let content = CustomerContent::Photo {
            bytes: bytes.to_vec(),
            caption: caption.map(str::to_string),
        };
        self.customer_sends(chat_id, customer, content).await
    }

    /// The customer sends a message of any kind.
    pub async fn customer_sends(
        &self,
        chat_id: i64,
        customer: &Customer,
        content: CustomerContent,
    ) -> Result<CustomerAction, SandboxError> {
        let blocked = self.with_bot(|bot| bot.chats.get(&chat_id).is_some_and(|chat| chat.blocked));
        if blocked == Some(true) {
            // A customer who blocked the bot must unblock it to write again, which Telegram
            // reports first.
            self.customer_unblocks_bot(chat_id, customer).await?;
        }
        let (update_id, message_id, update) = {
            let mut state = self.shared.lock();
            let fields = message_fields(&mut state, content);
            let bot = state
                .bots
                .get_mut(&self.token)
                .ok_or(SandboxError::UnknownBot)?;
            let chat = bot.chat_with(chat_id, customer);
            let message = chat.add_message(customer.user_json(), fields);
            let message_id = message_id_of(&message);
            let (update_id, update) = bot.new_update("message", message);
            state.self_check("Update", &update);
            (update_id, message_id, update)
        };
        let delivery = self.deliver("message", &update).await?;
        Ok(CustomerAction {
            update_id,
            message_id: Some(message_id),
            callback_query_id: None,
            delivery,
        })
    }

    /// The customer presses the inline button carrying `data` under the bot's latest message
    /// in the chat that has one.
    pub async fn customer_presses(
        &self,
        chat_id: i64,
        customer: &Customer,
        data: &str,
    ) -> Result<CustomerAction, SandboxError> {
        let (update_id, callback_id, update) = {
            let mut state = self.shared.lock();
            let bot = state
                .bots
                .get_mut(&self.token)
                .ok_or(SandboxError::UnknownBot)?;
            let chat = bot
                .chats
                .get(&chat_id)
                .ok_or(SandboxError::UnknownChat(chat_id))?;
            let has_button = |message: &&Value| {
                message["from"]["is_bot"] == json!(true)
                    && message["reply_markup"]["inline_keyboard"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_array)
                        .flatten()
                        .any(|button| button["callback_data"] == json!(data))
            };
            let message = chat
                .messages
                .values()
                .filter(has_button)
                .max_by_key(|message| message_id_of(message))
                .cloned()
                .ok_or_else(|| SandboxError::NoSuchButton {
                    chat_id,
                    data: data.to_string(),
                })?;
            let callback_id = bot.next_callback_id();
            bot.open_callbacks.insert(callback_id.clone());
            let query = json!({
                "id": callback_id,
                "from": customer.user_json(),
                "message": message,
                "chat_instance": format!("-{chat_id}{}", bot.id),
                "data": data,
            });
            let (update_id, update) = bot.new_update("callback_query", query);
            state.self_check("Update", &update);
            (update_id, callback_id, update)
        };
        let delivery = self.deliver("callback_query", &update).await?;
        Ok(CustomerAction {
            update_id,
            message_id: None,
            callback_query_id: Some(callback_id),
            delivery,
        })
    }

    /// The customer changes the text of their earlier message.
    pub async fn customer_edits(
        &self,
        chat_id: i64,
        customer: &Customer,
        message_id: i32,
        text: &str,
    ) -> Result<CustomerAction, SandboxError> {
        let (update_id, update) = {
            let mut state = self.shared.lock();
            let bot = state
                .bots
                .get_mut(&self.token)
                .ok_or(SandboxError::UnknownBot)?;
            let missing = SandboxError::NoSuchMessage {
                chat_id,
                message_id,
            };
            let chat = bot.chats.get_mut(&chat_id).ok_or(missing.clone())?;
            let message = chat
                .messages
                .get_mut(&message_id)
                .filter(|message| message["from"]["id"] == json!(customer.id))
                .ok_or(missing)?;
            let previous_edit = message["edit_date"].as_u64().unwrap_or(0);
            message["text"] = json!(text);
            message["edit_date"] = json!(state::now().max(previous_edit + 1));
            let edited = message.clone();
            let (update_id, update) = bot.new_update("edited_message", edited);
            state.self_check("Update", &update);
            (update_id, update)
        };
        let delivery = self.deliver("edited_message", &update).await?;
        Ok(CustomerAction {
            update_id,
            message_id: Some(message_id),
            callback_query_id: None,
            delivery,
        })
    }

    /// The customer blocks the bot: Telegram sends the bot a `my_chat_member` update (its new
    /// status `kicked`), and sends to the chat are answered 403 "Forbidden: bot was blocked by
    /// the user" until the customer unblocks it ([`FakeBot::customer_unblocks_bot`], or
    /// writing again, which needs unblocking it).
    pub async fn customer_blocks_bot(
        &self,
        chat_id: i64,
        customer: &Customer,
    ) -> Result<CustomerAction, SandboxError> {
        self.set_blocked_by_customer(chat_id, customer, true).await
    }

    /// The customer unblocks (restarts) the bot: a `my_chat_member` update with the bot's new
    /// status `member`, and sends reach the chat again.
    pub async fn customer_unblocks_bot(
        &self,
        chat_id: i64,
        customer: &Customer,
    ) -> Result<CustomerAction, SandboxError> {
        self.set_blocked_by_customer(chat_id, customer, false).await
    }

    /// The bot's status in the customer's private chat changes, reported as Telegram does
    /// (`ChatMemberUpdated`, from the customer); nothing is reported when nothing changes.
    async fn set_blocked_by_customer(
        &self,
        chat_id: i64,
        customer: &Customer,
        blocked: bool,
    ) -> Result<CustomerAction, SandboxError> {
        let (update_id, update) = {
            let mut state = self.shared.lock();
            let bot = state
                .bots
                .get_mut(&self.token)
                .ok_or(SandboxError::UnknownBot)?;
            // The bot as a chat member: a plain `User`, without getMe's extra fields.
            let bot_user = json!({"id": bot.id, "is_bot": true, "first_name": "Sandbox bot",
                "username": format!("sandbox_{}_bot", bot.id)});
            let chat = bot
                .chats
                .get_mut(&chat_id)
                .ok_or(SandboxError::UnknownChat(chat_id))?;
            if chat.blocked == blocked {
                return Err(SandboxError::NoChange(chat_id));
            }
            chat.blocked = blocked;
            let chat_json = chat.chat.clone();
            let member = json!({"status": "member", "user": bot_user});
            let kicked = json!({"status": "kicked", "user": bot_user, "until_date": 0});
            let (old, new) = if blocked {
                (member, kicked)
            } else {
                (kicked, member)
            };
            let change = json!({
                "chat": chat_json,
                "from": customer.user_json(),
                "date": state::now(),
                "old_chat_member": old,
                "new_chat_member": new,
            });
            let (update_id, update) = bot.new_update("my_chat_member", change);
            state.self_check("Update", &update);
            (update_id, update)
        };
        let delivery = self.deliver("my_chat_member", &update).await?;
        Ok(CustomerAction {
            update_id,
            message_id: None,
            callback_query_id: None,
            delivery,
        })
    }

    /// Delivers an earlier update again, exactly as it was (Telegram redelivers an update its
    /// webhook did not acknowledge).
    pub async fn redeliver(&self, update_id: i64) -> Result<Delivery, SandboxError> {
        let update = self
            .update(update_id)
            .ok_or(SandboxError::NoSuchUpdate(update_id))?;
        let kind = update
            .as_object()
            .and_then(|object| object.keys().find(|key| *key != "update_id").cloned())
            .unwrap_or_default();
        self.deliver(&kind, &update).await
    }

    /// An update the sandbox made, as JSON.
    pub fn update(&self, update_id: i64) -> Option<Value> {
        self.with_bot(|bot| bot.history.get(&update_id).cloned())
            .flatten()
    }

    /// The next `times` calls of `method` are answered `error` (after the contract check).
    pub fn fail_next(&self, method: &str, times: usize, error: ApiError) {
        self.with_bot(|bot| {
            for _ in 0..times {
                bot.failures
                    .push_back((Some(method.to_string()), error.clone()));
            }
        });
    }

    /// The next `times` calls of any method are answered `error`.
    pub fn fail_next_calls(&self, times: usize, error: ApiError) {
        self.with_bot(|bot| {
            for _ in 0..times {
                bot.failures.push_back((None, error.clone()));
            }
        });
    }

    /// Every message the bot sent, oldest first.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.with_bot(|bot| bot.sent.clone()).unwrap_or_default()
    }

    /// How many sends were refused because the customer blocked the bot.
    pub fn blocked_refusals(&self) -> u64 {
        self.with_bot(|bot| bot.blocked_refusals)
            .unwrap_or_default()
    }

    /// The callback query ids the bot answered, in order.
    pub fn answered_callbacks(&self) -> Vec<String> {
        self.with_bot(|bot| bot.answered_callbacks.clone())
            .unwrap_or_default()
    }

    /// The webhook the bot set, if any.
    pub fn webhook(&self) -> Option<WebhookRegistration> {
        self.with_bot(|bot| bot.webhook.clone()).flatten()
    }

    /// Updates queued for getUpdates and not yet confirmed.
    pub fn pending_updates(&self) -> usize {
        self.with_bot(|bot| bot.pending.len()).unwrap_or_default()
    }

    /// How many getUpdates calls the bot made (that passed the contract check).
    pub fn get_updates_calls(&self) -> u64 {
        self.with_bot(|bot| bot.poll_generation).unwrap_or_default()
    }

    /// How many getUpdates calls were cut short (409) by another one made while they waited:
    /// the sign of two instances polling the bot at once.
    pub fn poll_conflicts(&self) -> u64 {
        self.with_bot(|bot| bot.poll_conflicts).unwrap_or_default()
    }

    /// getWebhookInfo's `last_error_message`.
    pub fn last_webhook_error(&self) -> Option<String> {
        self.with_bot(|bot| bot.last_webhook_error.clone().map(|(_, message)| message))
            .flatten()
    }

    fn with_bot<T>(&self, read: impl FnOnce(&mut BotState) -> T) -> Option<T> {
        self.shared.lock().bots.get_mut(&self.token).map(read)
    }

    /// POSTs the update to the webhook, or queues it for getUpdates.
    async fn deliver(&self, kind: &str, update: &Value) -> Result<Delivery, SandboxError> {
        let webhook = {
            let mut state = self.shared.lock();
            let bot = state
                .bots
                .get_mut(&self.token)
                .ok_or(SandboxError::UnknownBot)?;
            if !bot.wants(kind) {
                return Ok(Delivery::Filtered);
            }
            match &bot.webhook {
                Some(webhook) => webhook.clone(),
                None => {
                    bot.pending.push_back(update.clone());
                    drop(state);
                    self.shared.updates_arrived.notify_waiters();
                    return Ok(Delivery::Queued);
                }
            }
        };
        let mut request = self.shared.webhook_client.post(&webhook.url).json(update);
        if let Some(secret) = &webhook.secret_token {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let outcome = request.send().await;
        let failure = match &outcome {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(server::webhook_error(Ok(response.status()))),
            Err(error) => Some(server::webhook_error(Err(error))),
        };
        if let Some(failure) = &failure {
            self.with_bot(|bot| bot.last_webhook_error = Some(failure.clone()));
        }
        Ok(match outcome {
            Ok(response) => Delivery::Webhook {
                status: response.status().as_u16(),
            },
            Err(_) => Delivery::WebhookUnreachable(
                failure.map(|(_, message)| message).unwrap_or_default(),
            ),
        })
    }
}

fn message_id_of(message: &Value) -> i32 {
    message["message_id"]
        .as_i64()
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or_default()
}

/// The content fields of a customer's message; files are stored for getFile.
fn message_fields(
    state: &mut state::State,
    content: CustomerContent,
) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    let caption = |fields: &mut serde_json::Map<String, Value>, caption: Option<String>| {
        if let Some(caption) = caption {
            fields.insert("caption".into(), json!(caption));
        }
    };
    match content {
        CustomerContent::Text(text) => {
            fields.insert("text".into(), json!(text));
        }
        CustomerContent::Photo { bytes, caption: c } => {
            fields.insert("photo".into(), state.photo_sizes(bytes));
            caption(&mut fields, c);
        }
        CustomerContent::Document {
            file_name,
            mime_type,
            bytes,
            caption: c,
        } => {
            let extension = file_name
                .rsplit_once('.')
                .map_or("bin", |(_, e)| e)
                .to_string();
            let id = state.store_file("documents", &extension, bytes);
            let mut document = state.file_fields(&id);
            document.insert("file_name".into(), json!(file_name));
            document.insert("mime_type".into(), json!(mime_type));
            fields.insert("document".into(), Value::Object(document));
            caption(&mut fields, c);
        }
        CustomerContent::Voice { bytes, duration } => {
            let id = state.store_file("voice", "oga", bytes);
            let mut voice = state.file_fields(&id);
            voice.insert("duration".into(), json!(duration));
            voice.insert("mime_type".into(), json!("audio/ogg"));
            fields.insert("voice".into(), Value::Object(voice));
        }
        CustomerContent::Audio {
            file_name,
            mime_type,
            bytes,
            duration,
        } => {
            let extension = file_name
                .rsplit_once('.')
                .map_or("mp3", |(_, e)| e)
                .to_string();
            let id = state.store_file("music", &extension, bytes);
            let mut audio = state.file_fields(&id);
            audio.insert("duration".into(), json!(duration));
            audio.insert("file_name".into(), json!(file_name));
            audio.insert("mime_type".into(), json!(mime_type));
            fields.insert("audio".into(), Value::Object(audio));
        }
        CustomerContent::Video {
            bytes,
            width,
            height,
            duration,
            caption: c,
        } => {
            let id = state.store_file("videos", "mp4", bytes);
            let mut video = state.file_fields(&id);
            video.insert("width".into(), json!(width));
            video.insert("height".into(), json!(height));
            video.insert("duration".into(), json!(duration));
            video.insert("mime_type".into(), json!("video/mp4"));
            fields.insert("video".into(), Value::Object(video));
            caption(&mut fields, c);
        }
        CustomerContent::Sticker { bytes, emoji } => {
            let id = state.store_file("stickers", "webp", bytes);
            let mut sticker = state.file_fields(&id);
            sticker.insert("type".into(), json!("regular"));
            sticker.insert("width".into(), json!(512));
            sticker.insert("height".into(), json!(512));
            sticker.insert("is_animated".into(), json!(false));
            sticker.insert("is_video".into(), json!(false));
            sticker.insert("emoji".into(), json!(emoji));
            fields.insert("sticker".into(), Value::Object(sticker));
        }
        CustomerContent::Location {
            latitude,
            longitude,
        } => {
            fields.insert(
                "location".into(),
                json!({"latitude": latitude, "longitude": longitude}),
            );
        }
        CustomerContent::Contact {
            phone_number,
            first_name,
            last_name,
            user_id,
        } => {
            let mut contact = json!({"phone_number": phone_number, "first_name": first_name});
            if let Some(last) = last_name {
                contact["last_name"] = json!(last);
            }
            if let Some(user_id) = user_id {
                contact["user_id"] = json!(user_id);
            }
            fields.insert("contact".into(), contact);
        }
    }
    fields
}
