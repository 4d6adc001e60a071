//! One operator WebSocket, from the upgrade to its close: reading the console's messages,
//! answering them, the heartbeat, re-checking the credential, and the hub session whose
//! pushes the [`Sink`] writes out.
//!
//! The connection task runs on the actix worker that accepted the socket; the hub's session
//! actor calls the sink from the actor tree. They share only [`Shared`]: the operator's current
//! principal and subscription (so every push is filtered by what the operator may see *now*)
//! and a channel through which the hub asks the connection to close.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use async_trait::async_trait;
use chrono::Utc;
use omnihub_actors::{ConversationScopeWithId, ServerPush, SessionHandle, SessionSink, SinkClosed};
use omnihub_core::access::{Action, ConversationScope, Decision, may_see, supervises};
use omnihub_core::events::EventKind;
use omnihub_core::{MessageId, Principal, decide};
use omnihub_store::StoreError;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};

use super::protocol::{
    self, AckError, ClientMessage, Close, EventCache, Hello, Incoming, MAX_VIEWS, View,
};
use crate::auth::cache::Credential;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::Caller;
use crate::http::routes::conversations::{
    MAX_TEXT_CHARS, Need, idempotency_key, mark, message_text, post_message, scope_of,
    visible_conversation,
};
use crate::i18n::{Lang, Msg};
use crate::state::AppState;

/// How long a close frame may wait for room in the socket's outgoing queue; a client that does
/// not read even that is dropped without one.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What proves the socket's caller, to check again on every heartbeat: a revoked session or
/// token, a disabled user or a blocked client closes the socket with 4403, and changed rights
/// apply to the pushes at once.
pub enum Recheck {
    /// The hash of the session cookie.
    Session(Vec<u8>),
    /// The hash of the API token.
    Token(Vec<u8>),
}

impl Recheck {
    fn key(&self) -> &[u8] {
        match self {
            Recheck::Session(k) | Recheck::Token(k) => k,
        }
    }
}

/// What the connection and the sink share.
struct Shared {
    filter: RwLock<Filter>,
    /// Set by the hub (through the sink) to ask the connection to close; `asked` wakes it.
    close: Mutex<Option<Close>>,
    asked: Notify,
}

struct Filter {
    principal: Arc<Principal>,
    views: Vec<View>,
}

impl Shared {
    /// Whether a push goes out: events only of conversations the operator may see now, and,
    /// for messages, read marks and statuses, only in the subscribed views; a notification
    /// only to the user it names. Conversation
    /// changes go out whatever the views, so a console learns when one leaves a view.
    fn wants(&self, push: &ServerPush) -> bool {
        let Ok(f) = self.filter.read() else {
            return false;
        };
        let who = &f.principal;
        match push {
            ServerPush::Event(e) => {
                if who.client_id != Some(e.client_id) {
                    return false;
                }
                // A notification goes to the one user it names, whatever the views.
                if e.kind == EventKind::Notification {
                    return e.assignee_id == Some(who.user_id);
                }
                let visible = match e.channel_id {
                    Some(channel_id) => may_see(
                        who,
                        &ConversationScope {
                            channel_id,
                            assignee_id: e.assignee_id,
                            group_id: e.group_id,
                        },
                    ),
                    // Not about one conversation: supervisors only.
                    None => supervises(who),
                };
                visible
                    && (e.kind == EventKind::ConversationUpdated
                        || f.views
                            .iter()
                            .any(|v| v.contains(who.user_id, e.assignee_id, e.group_id)))
            }
            // The hub sends typing only to those who may see the conversation; one's own
            // typing is not news.
            ServerPush::Typing { user_id, .. } => *user_id != who.user_id,
            ServerPush::Presence { .. } => true,
            // The hub sends it only to those who may see the conversation.
            ServerPush::ContactTyping { .. } => true,
            // The hub sends it only to those who could see the conversation before it moved.
            ServerPush::Hidden { .. } => true,
        }
    }

    fn set_views(&self, views: Vec<View>) {
        if let Ok(mut f) = self.filter.write() {
            f.views = views;
        }
    }

    fn set_principal(&self, principal: Arc<Principal>) {
        if let Ok(mut f) = self.filter.write() {
            f.principal = principal;
        }
    }
}

/// The hub's way into the socket.
struct Sink {
    session: actix_ws::Session,
    shared: Arc<Shared>,
    cache: Arc<EventCache>,
}

#[async_trait]
impl SessionSink for Sink {
    async fn send(&self, push: ServerPush) -> Result<(), SinkClosed> {
        if !self.shared.wants(&push) {
            return Ok(());
        }
        let text = protocol::render_push(&push, &self.cache);
        // Waits while the socket's outgoing queue is full: that back-pressure is how the
        // hub's bounded per-session queue notices a slow consumer.
        let mut session = self.session.clone();
        session.text(text).await.map_err(|_| SinkClosed)
    }

    async fn close(&self, reason: omnihub_actors::CloseReason) {
        if let Ok(mut close) = self.shared.close.lock() {
            close.get_or_insert(Close::of(reason));
        }
        self.shared.asked.notify_one();
    }
}

/// Counts the socket in the open-sockets gauge for as long as it lives.
struct OpenGauge;

impl OpenGauge {
    fn new() -> OpenGauge {
        metrics::gauge!(super::OPEN_SOCKETS).increment(1.0);
        OpenGauge
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!(super::OPEN_SOCKETS).decrement(1.0);
    }
}

/// One connection.
pub struct Conn {
    state: AppState,
    caller: Caller,
    recheck: Recheck,
    /// Negotiated from the handshake's `Accept-Language`: ack messages speak it.
    lang: Lang,
    session: actix_ws::Session,
    shared: Arc<Shared>,
    cache: Arc<EventCache>,
    /// Named in logs and in internal errors.
    id: uuid::Uuid,
    /// Present after `hello`.
    hub_session: Option<SessionHandle>,
}

impl Conn {
    pub fn new(
        state: AppState,
        caller: Caller,
        recheck: Recheck,
        lang: Lang,
        session: actix_ws::Session,
        cache: Arc<EventCache>,
    ) -> Conn {
        let shared = Arc::new(Shared {
            filter: RwLock::new(Filter {
                principal: caller.principal.clone(),
                views: vec![View::All],
            }),
            close: Mutex::new(None),
            asked: Notify::new(),
        });
        Conn {
            state,
            caller,
            recheck,
            lang,
            session,
            shared,
            cache,
            id: uuid::Uuid::now_v7(),
            hub_session: None,
        }
    }

    /// Serves the socket until either side closes it.
    pub async fn run(mut self, mut stream: AggregatedMessageStream) {
        let _open = OpenGauge::new();
        let hub = &self.state.config.hub;
        let interval = Duration::from_millis(hub.heartbeat_interval_ms);
        let timeout = Duration::from_millis(hub.heartbeat_timeout_ms);
        let mut beat = tokio::time::interval_at(Instant::now() + interval, interval);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let opened = Instant::now();
        let mut last_heard = Instant::now();
        tracing::debug!(socket = %self.id, user = %self.caller.principal.user_id, "operator socket opened");

        let close = loop {
            tokio::select! {
                () = self.shared.asked.notified() => {
                    let asked = self.shared.close.lock().map_or(Some(Close::INTERNAL), |c| *c);
                    if let Some(close) = asked {
                        break Some(close);
                    }
                }
                frame = stream.recv() => {
                    let Some(frame) = frame else { break None };
                    let message = match frame {
                        Ok(m) => m,
                        Err(e) => break Some(close_for(&e)),
                    };
                    last_heard = Instant::now();
                    match message {
                        AggregatedMessage::Text(text) => {
                            // Boxed: the commands' futures are large and short-lived, and an
                            // idle socket should not carry their room.
                            if let Some(close) = Box::pin(self.on_text(&text)).await {
                                break Some(close);
                            }
                        }
                        AggregatedMessage::Binary(_) => {
                            let error = AckError::msg("invalid_message", Msg::WsBinaryFrame);
                            self.send_error(None, &error).await;
                        }
                        AggregatedMessage::Ping(payload) => {
                            let _ = self.session.pong(&payload).await;
                        }
                        AggregatedMessage::Pong(_) => {}
                        AggregatedMessage::Close(_) => break Some(Close::NORMAL),
                    }
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() >= timeout {
                        break Some(Close::HEARTBEAT_TIMEOUT);
                    }
                    if self.hub_session.is_none() && opened.elapsed() >= timeout {
                        break Some(Close::HELLO_TIMEOUT);
                    }
                    if self.session.ping(b"").await.is_err() {
                        break None;
                    }
                    if let Some(close) = Box::pin(self.recheck()).await {
                        break Some(close);
                    }
                }
            }
        };

        // Dropping the handle ends the hub session: no more pushes into this socket.
        drop(self.hub_session.take());
        let reason = close.map_or("gone", |c| c.reason);
        metrics::counter!("omnihub_ws_closed_total", "reason" => reason).increment(1);
        tracing::debug!(socket = %self.id, reason, "operator socket closed");
        if let Some(c) = close {
            let frame = CloseReason {
                code: CloseCode::from(c.code),
                description: Some(c.reason.to_string()),
            };
            let _ =
                tokio::time::timeout(CLOSE_GRACE, self.session.clone().close(Some(frame))).await;
        }
    }

    async fn send(&mut self, text: String) {
        // A failed send means the peer is gone; the next read says so and ends the loop.
        let _ = self.session.text(text).await;
    }

    async fn send_error(&mut self, reference: Option<&Value>, error: &AckError) {
        let text = protocol::ack_error(reference, error, self.lang);
        self.send(text).await;
    }

    fn ack_of(&self, e: ApiError) -> AckError {
        if let ApiError::Internal(detail) = &e {
            tracing::error!(socket = %self.id, error = %detail, "operator socket: internal error");
        }
        AckError::msg(e.code(), e.message(&self.id.to_string()))
    }

    /// Answers one text frame; `Some` closes the socket.
    async fn on_text(&mut self, text: &str) -> Option<Close> {
        let Incoming { reference, message } = match protocol::parse(text) {
            Ok(incoming) => incoming,
            Err(fault) => {
                self.send_error(fault.reference.as_ref(), &fault.error)
                    .await;
                return None;
            }
        };
        let reference = reference.as_ref();
        match message {
            ClientMessage::Ping => {
                self.send(protocol::pong(reference)).await;
                None
            }
            ClientMessage::Hello(hello) => self.hello(reference, hello).await,
            _ if self.hub_session.is_none() => {
                let error = AckError::msg("hello_required", Msg::WsHelloRequired);
                self.send_error(reference, &error).await;
                None
            }
            command => {
                let answer = match self.command(command).await {
                    Ok(message_id) => protocol::ack_ok(reference, message_id),
                    Err(e) => {
                        let error = self.ack_of(e);
                        protocol::ack_error(reference, &error, self.lang)
                    }
                };
                self.send(answer).await;
                None
            }
        }
    }

    /// Opens the hub session: the welcome carries the newest `seq` now, and the hub replays
    /// every event after the console's cursor (or after that `seq`, for a fresh console)
    /// before live ones, so nothing committed in between is missed or repeated.
    async fn hello(&mut self, reference: Option<&Value>, hello: Hello) -> Option<Close> {
        if self.hub_session.is_some() {
            let error = AckError::msg("hello_repeated", Msg::WsHelloRepeated);
            self.send_error(reference, &error).await;
            return None;
        }
        let checked = match hello.resume_after {
            Some(seq) if seq < 0 => Err(ApiError::Validation(Msg::NumberRange {
                field: "resume_after",
                min: 0,
                max: i64::MAX,
            })),
            _ => match hello.views {
                Some(views) => self.check_views(views).await,
                None => Ok(vec![View::All]),
            },
        };
        let views = match checked {
            Ok(views) => views,
            Err(e) => {
                let error = self.ack_of(e);
                self.send_error(reference, &error).await;
                return None;
            }
        };
        let store = &self.state.store;
        let (head, pruned) =
            match futures_util::try_join!(store.last_event_seq(), store.events_pruned_through()) {
                Ok(found) => found,
                Err(e) => {
                    let error = self.ack_of(ApiError::from(e));
                    self.send_error(reference, &error).await;
                    return Some(Close::INTERNAL);
                }
            };
        // Events after a cursor below the pruned part may be gone: the console starts afresh.
        // A cursor from the future (another database, a restored backup) resumes from now.
        let stale = hello.resume_after.is_some_and(|seq| seq < pruned);
        let resume = match hello.resume_after {
            Some(seq) if !stale => seq.min(head),
            _ => head,
        };
        self.shared.set_views(views);
        let interval = self.state.config.hub.heartbeat_interval_ms;
        self.send(protocol::welcome(self.id, head, interval, stale))
            .await;
        let sink = Arc::new(Sink {
            session: self.session.clone(),
            shared: self.shared.clone(),
            cache: self.cache.clone(),
        });
        match self
            .state
            .hub
            .open_session(self.caller.principal.clone(), sink, Some(resume))
            .await
        {
            Ok(handle) => {
                self.hub_session = Some(handle);
                None
            }
            Err(e) => {
                let error = self.ack_of(ApiError::from(e));
                self.send_error(reference, &error).await;
                Some(Close::INTERNAL)
            }
        }
    }

    /// Views of a subscription: 1 to 32, groups of the operator's own client.
    async fn check_views(&self, mut views: Vec<View>) -> ApiResult<Vec<View>> {
        if views.is_empty() || views.len() > MAX_VIEWS {
            return Err(ApiError::Validation(Msg::NumberRange {
                field: "views",
                min: 1,
                max: MAX_VIEWS as i64,
            }));
        }
        let client = self.caller.client_id()?;
        for view in &views {
            if let View::Group(g) = view {
                self.state.store.get_group(client, *g).await?;
            }
        }
        views.sort_by_key(|v| format!("{v:?}"));
        views.dedup();
        Ok(views)
    }

    /// Runs a command after `hello`; `Ok` carries the message a reply or note created.
    async fn command(&mut self, message: ClientMessage) -> ApiResult<Option<MessageId>> {
        let state = &self.state;
        let who = self.caller.principal.clone();
        let client = self.caller.client_id()?;
        match message {
            ClientMessage::Subscribe(s) => {
                let views = self.check_views(s.views).await?;
                self.shared.set_views(views);
                Ok(None)
            }
            ClientMessage::Reply(w) => self.write(w, false).await,
            ClientMessage::Note(w) => self.write(w, true).await,
            ClientMessage::Typing(t) => {
                let c = visible_conversation(state, &who, t.conversation_id, Need::Write).await?;
                let conversation = ConversationScopeWithId {
                    conversation_id: c.id,
                    scope: scope_of(&c),
                };
                state.hub.typing(client, conversation, who.user_id);
                Ok(None)
            }
            ClientMessage::Read(r) => {
                let c = visible_conversation(state, &who, r.conversation_id, Need::See).await?;
                mark(state, &self.caller, &c, r.message_id).await?;
                Ok(None)
            }
            ClientMessage::Presence(p) => {
                state
                    .hub
                    .set_operator(client, who.user_id, None, None, Some(p.presence))
                    .await?;
                state
                    .audit(self.caller.audit(
                        Some(client),
                        "operator.presence",
                        "user",
                        who.user_id,
                        json!({ "presence": p.presence }),
                    ))
                    .await?;
                Ok(None)
            }
            // Answered in `on_text`.
            ClientMessage::Hello(_) | ClientMessage::Ping => Ok(None),
        }
    }

    async fn write(&self, w: protocol::Write, note: bool) -> ApiResult<Option<MessageId>> {
        let text = message_text("text", &w.text, MAX_TEXT_CHARS)?;
        let key = idempotency_key(&w.idempotency_key)?;
        let who = &self.caller.principal;
        let c = visible_conversation(&self.state, who, w.conversation_id, Need::Write).await?;
        let m = post_message(&self.state, &self.caller, &c, text, key, note, Vec::new()).await?;
        Ok(Some(m.id))
    }

    /// Checks the credential again (through the shared auth cache, so at most one store round
    /// trip per credential and cache period); `Some` closes the socket.
    async fn recheck(&mut self) -> Option<Close> {
        let principal = match resolve(&self.state, &self.recheck).await {
            Ok(Some(p)) => p,
            Ok(None) => return Some(Close::REVOKED),
            Err(e) => {
                // A store hiccup is no reason to cut operators off; try again next beat.
                tracing::warn!(socket = %self.id, error = %e, "operator socket: cannot re-check the credential");
                return None;
            }
        };
        let still_member = decide(&principal, Action::ViewOwnClient) == Decision::Allow
            && principal.user_id == self.caller.principal.user_id
            && principal.client_id == self.caller.principal.client_id;
        if !still_member {
            return Some(Close::REVOKED);
        }
        if *principal != *self.caller.principal {
            self.caller.principal = principal.clone();
            self.shared.set_principal(principal.clone());
            if let Some(handle) = &self.hub_session {
                handle.update_principal(principal);
            }
        }
        None
    }
}

/// The caller behind a credential now; `None` when it no longer works.
async fn resolve(state: &AppState, recheck: &Recheck) -> ApiResult<Option<Arc<Principal>>> {
    let key = recheck.key();
    if let Some(cached) = state.auth_cache.get(key) {
        return Ok(Some(cached.principal));
    }
    let now = Utc::now();
    let found = match recheck {
        Recheck::Session(k) => state.store.touch_session(k, now).await.map(|s| {
            let credential = Credential::Session {
                token_hash: k.clone(),
                csrf_token: s.csrf_token,
            };
            (s.user_id, credential)
        }),
        Recheck::Token(k) => state
            .store
            .use_api_token(k, now)
            .await
            .map(|t| (t.user_id, Credential::ApiToken)),
    };
    let (user, credential) = match found {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(principal) = state.load_principal(user).await? else {
        return Ok(None);
    };
    let principal = Arc::new(principal);
    state
        .auth_cache
        .put(key.to_vec(), principal.clone(), credential);
    Ok(Some(principal))
}

/// The close code for a frame the stream refused.
fn close_for(e: &ProtocolError) -> Close {
    match e {
        ProtocolError::Overflow => Close::TOO_BIG,
        // actix-ws reports an oversized continuation as an I/O error with this text.
        ProtocolError::Io(io) if io.to_string().contains("continuation size") => Close::TOO_BIG,
        _ => Close::PROTOCOL_ERROR,
    }
}
