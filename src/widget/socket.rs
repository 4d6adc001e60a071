//! The visitor WebSocket, `GET /api/v1/public/widgets/{public_key}/ws` (protocol:
//! `docs/widget-protocol.md`): the origin is checked at the upgrade like every public route;
//! the first frame must be `hello` with the visitor's token (never in the address, which ends
//! up in logs). Then the socket gets the messages and delivery statuses of the visitor's own
//! conversation and the operators' typing, from the hub's visitor session, resumed after the
//! widget's cursor; and takes the visitor's messages, typing and read marks.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason};
use async_trait::async_trait;
use omnihub_actors::{ConversationScopeWithId, ServerPush, SessionHandle, SessionSink, SinkClosed};
use omnihub_core::access::ConversationScope;
use omnihub_core::events::EventKind;
use omnihub_core::model::{DeliveryStatus, Direction, Message};
use omnihub_store::Visitor;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::public::{Names, ingest_visitor_message, public_message};
use super::{PublicWidget, public_widget, visitor_of};
use crate::http::error::{ApiError, ApiResult, ErrorBody, request_lang};
use crate::http::routes::conversations::{MAX_TEXT_CHARS, message_text};
use crate::i18n::Lang;
use crate::state::AppState;

/// Largest frame a visitor may send (a message of 10,000 characters fits).
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The visitor's typing is passed on at most this often.
const TYPING_EVERY: Duration = Duration::from_secs(2);
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Close codes of the visitor socket.
mod close {
    pub const NORMAL: u16 = 1000;
    pub const INTERNAL: u16 = 1011;
    pub const SLOW_CONSUMER: u16 = 4000;
    pub const HEARTBEAT_TIMEOUT: u16 = 4001;
    pub const HELLO_TIMEOUT: u16 = 4002;
    pub const VISITOR_UNKNOWN: u16 = 4401;
}

/// Opens the visitor WebSocket (protocol: `docs/widget-protocol.md`).
#[utoipa::path(get, path = "/api/v1/public/widgets/{public_key}/ws", tag = "widget",
    params(("public_key" = String, Path, description = "the widget's public key")),
    responses((status = 101, description = "switched to the visitor protocol of docs/widget-protocol.md"),
        (status = 400, description = "`invalid_parameter`: not a WebSocket upgrade", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn visitor_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let widget = public_widget(&state, &req, &path).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::InvalidParameter(crate::i18n::Msg::WsUpgradeRequired))?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let (close_tx, close_rx) = watch::channel(None);
    let conn = Conn {
        state: state.get_ref().clone(),
        widget: Arc::new(widget),
        lang: request_lang(),
        session,
        close_tx: Arc::new(close_tx),
        close_rx,
        visitor: None,
        hub_session: None,
        last_typing: None,
    };
    actix_web::rt::spawn(conn.run(stream));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Incoming {
    Hello {
        token: String,
        resume_after: Option<i64>,
    },
    Message {
        #[serde(rename = "ref")]
        reference: Option<Value>,
        client_message_id: String,
        text: String,
    },
    Typing {},
    Read {},
    Ping {
        #[serde(rename = "ref")]
        reference: Option<Value>,
    },
}

struct Conn {
    state: AppState,
    widget: Arc<PublicWidget>,
    lang: Lang,
    session: actix_ws::Session,
    close_tx: Arc<watch::Sender<Option<u16>>>,
    close_rx: watch::Receiver<Option<u16>>,
    visitor: Option<Visitor>,
    hub_session: Option<SessionHandle>,
    last_typing: Option<Instant>,
}

/// The hub's way into the socket: renders the visitor's view of each push.
struct Sink {
    state: AppState,
    session: actix_ws::Session,
    visitor: uuid::Uuid,
    names: Mutex<Names>,
    close: Arc<watch::Sender<Option<u16>>>,
}

#[async_trait]
impl SessionSink for Sink {
    async fn send(&self, push: ServerPush) -> Result<(), SinkClosed> {
        let text = match render(self, push).await {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = ?e, "rendering a push for a visitor failed");
                return Ok(());
            }
        };
        let mut session = self.session.clone();
        session.text(text).await.map_err(|_| SinkClosed)
    }

    async fn close(&self, reason: omnihub_actors::CloseReason) {
        let code = match reason {
            omnihub_actors::CloseReason::SlowConsumer => close::SLOW_CONSUMER,
            _ => 1001,
        };
        self.close.send_replace(Some(code));
    }
}

async fn render(sink: &Sink, push: ServerPush) -> ApiResult<Option<String>> {
    Ok(match push {
        ServerPush::Event(e) => match e.kind {
            EventKind::MessageCreated => {
                let Ok(m) = serde_json::from_value::<Message>(e.payload.clone()) else {
                    return Ok(None);
                };
                let mut names = sink.names.lock().await;
                let Some(view) = public_message(&sink.state, &mut names, sink.visitor, &m).await?
                else {
                    return Ok(None);
                };
                if m.direction == Direction::Outbound
                    && matches!(m.status, DeliveryStatus::Pending | DeliveryStatus::Sent)
                {
                    // Reaching the visitor's socket is delivery.
                    let hub = sink.state.hub.clone();
                    tokio::spawn(async move {
                        let _ = hub
                            .message_receipt(m.client_id, m.id, DeliveryStatus::Delivered)
                            .await;
                    });
                }
                Some(json!({"v": 1, "type": "message", "seq": e.seq, "message": view}).to_string())
            }
            EventKind::MessageStatus => Some(
                json!({"v": 1, "type": "status", "seq": e.seq,
                    "message_id": e.payload["id"], "status": e.payload["status"]})
                .to_string(),
            ),
            _ => None,
        },
        ServerPush::Typing {
            conversation_id: _,
            user_id,
        } => {
            let client = sink
                .state
                .store
                .get_user(user_id)
                .await
                .ok()
                .and_then(|u| u.client_id);
            let operator = match client {
                Some(client) => {
                    sink.names
                        .lock()
                        .await
                        .get(&sink.state, client, user_id)
                        .await?
                }
                None => None,
            };
            Some(json!({"v": 1, "type": "typing", "operator": operator}).to_string())
        }
        _ => None,
    })
}

impl Conn {
    async fn run(mut self, mut stream: AggregatedMessageStream) {
        let hub = &self.state.config.hub;
        let interval = Duration::from_millis(hub.heartbeat_interval_ms);
        let timeout = Duration::from_millis(hub.heartbeat_timeout_ms);
        let mut beat = tokio::time::interval_at(Instant::now() + interval, interval);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let opened = Instant::now();
        let mut last_heard = Instant::now();
        let code = loop {
            tokio::select! {
                changed = self.close_rx.changed() => {
                    let asked = *self.close_rx.borrow_and_update();
                    match (changed, asked) {
                        (_, Some(code)) => break Some(code),
                        (Err(_), None) => break Some(close::INTERNAL),
                        (Ok(()), None) => {}
                    }
                }
                frame = stream.recv() => {
                    let Some(Ok(message)) = frame else { break None };
                    last_heard = Instant::now();
                    match message {
                        AggregatedMessage::Text(text) => {
                            if let Some(code) = self.on_text(&text).await {
                                break Some(code);
                            }
                        }
                        AggregatedMessage::Binary(_) => {
                            self.error(None, "invalid_message").await;
                        }
                        AggregatedMessage::Ping(payload) => {
                            let _ = self.session.pong(&payload).await;
                        }
                        AggregatedMessage::Pong(_) => {}
                        AggregatedMessage::Close(_) => break Some(close::NORMAL),
                    }
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() >= timeout {
                        break Some(close::HEARTBEAT_TIMEOUT);
                    }
                    if self.hub_session.is_none() && opened.elapsed() >= timeout {
                        break Some(close::HELLO_TIMEOUT);
                    }
                    if self.session.ping(b"").await.is_err() {
                        break None;
                    }
                }
            }
        };
        drop(self.hub_session.take());
        if let Some(code) = code {
            let frame = CloseReason {
                code: CloseCode::from(code),
                description: None,
            };
            let _ =
                tokio::time::timeout(CLOSE_GRACE, self.session.clone().close(Some(frame))).await;
        }
    }

    async fn send(&mut self, value: Value) {
        let _ = self.session.text(value.to_string()).await;
    }

    async fn error(&mut self, reference: Option<&Value>, code: &str) {
        self.send(json!({"v": 1, "type": "ack", "ref": reference, "ok": false,
            "error": {"code": code}}))
            .await;
    }

    async fn api_error(&mut self, reference: Option<&Value>, e: ApiError) {
        if let ApiError::Internal(detail) = &e {
            tracing::error!(error = %detail, "visitor socket: internal error");
        }
        let message = e.message("").render(self.lang);
        let mut error = json!({"code": e.code(), "message": message});
        if let ApiError::RateLimited(seconds) = e {
            error["retry_after"] = json!(seconds);
        }
        self.send(json!({"v": 1, "type": "ack", "ref": reference, "ok": false, "error": error}))
            .await;
    }

    async fn on_text(&mut self, text: &str) -> Option<u16> {
        // Every frame carries the protocol version `v`, which must be 1.
        let mut frame: serde_json::Map<String, Value> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(_) => {
                self.error(None, "invalid_message").await;
                return None;
            }
        };
        if frame.remove("v") != Some(json!(1)) {
            self.error(frame.get("ref"), "unsupported_version").await;
            return None;
        }
        let reference = frame.get("ref").cloned();
        let incoming: Incoming = match serde_json::from_value(Value::Object(frame)) {
            Ok(m) => m,
            Err(_) => {
                self.error(reference.as_ref(), "invalid_message").await;
                return None;
            }
        };
        match incoming {
            Incoming::Ping { reference } => {
                self.send(json!({"v": 1, "type": "pong", "ref": reference}))
                    .await;
                None
            }
            Incoming::Hello {
                token,
                resume_after,
            } => {
                if self.hub_session.is_some() {
                    self.error(None, "hello_repeated").await;
                    return None;
                }
                self.hello(&token, resume_after).await
            }
            _ if self.visitor.is_none() => {
                self.error(None, "hello_required").await;
                None
            }
            Incoming::Message {
                reference,
                client_message_id,
                text,
            } => {
                let answer = match message_text("text", &text, MAX_TEXT_CHARS) {
                    Ok(text) => match self.visitor.as_ref() {
                        Some(visitor) => {
                            ingest_visitor_message(
                                &self.state,
                                self.lang,
                                &self.widget,
                                visitor,
                                &client_message_id,
                                text,
                            )
                            .await
                        }
                        None => Err(ApiError::VisitorUnknown),
                    },
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(a) => {
                        self.send(json!({"v": 1, "type": "ack", "ref": reference, "ok": true,
                            "message": a.message, "duplicate": a.duplicate}))
                            .await;
                    }
                    Err(e) => self.api_error(reference.as_ref(), e).await,
                }
                None
            }
            Incoming::Typing {} => {
                if self.last_typing.is_some_and(|t| t.elapsed() < TYPING_EVERY) {
                    return None;
                }
                self.last_typing = Some(Instant::now());
                if let Err(e) = self.typing().await {
                    tracing::debug!(error = ?e, "visitor typing not passed on");
                }
                None
            }
            Incoming::Read {} => {
                if let Err(e) = self.read().await {
                    self.api_error(None, e).await;
                }
                None
            }
        }
    }

    async fn hello(&mut self, token: &str, resume_after: Option<i64>) -> Option<u16> {
        let visitor = match visitor_of(&self.state, &self.widget, Some(token)).await {
            Ok(v) => v,
            Err(ApiError::VisitorUnknown) => return Some(close::VISITOR_UNKNOWN),
            Err(e) => {
                self.api_error(None, e).await;
                return Some(close::INTERNAL);
            }
        };
        let sink = Arc::new(Sink {
            state: self.state.clone(),
            session: self.session.clone(),
            visitor: visitor.id,
            names: Mutex::new(Names::default()),
            close: self.close_tx.clone(),
        });
        let head = self.state.store.last_event_seq().await.unwrap_or(0);
        // A cursor from the future (another server's, a forged one) resumes from now.
        let resume = resume_after.map(|seq| seq.clamp(0, head));
        let opened = self
            .state
            .hub
            .open_visitor_session(
                self.widget.channel.client_id,
                self.widget.channel.id,
                visitor.id.to_string(),
                sink,
                resume,
            )
            .await;
        match opened {
            Ok(handle) => {
                let last_seq = handle.last_seq();
                self.hub_session = Some(handle);
                self.visitor = Some(visitor);
                self.send(json!({"v": 1, "type": "welcome", "last_seq": last_seq}))
                    .await;
                None
            }
            Err(e) => {
                self.api_error(None, e.into()).await;
                Some(close::INTERNAL)
            }
        }
    }

    async fn conversation(&self) -> ApiResult<Option<omnihub_core::model::Conversation>> {
        let Some(visitor) = &self.visitor else {
            return Ok(None);
        };
        let client = self.widget.channel.client_id;
        match self
            .state
            .store
            .conversation_by_external_id(client, self.widget.channel.id, &visitor.id.to_string())
            .await?
        {
            Some(id) => Ok(Some(self.state.store.get_conversation(client, id).await?)),
            None => Ok(None),
        }
    }

    async fn typing(&self) -> ApiResult<()> {
        if let Some(c) = self.conversation().await? {
            self.state.hub.contact_typing(
                c.client_id,
                ConversationScopeWithId {
                    conversation_id: c.id,
                    scope: ConversationScope {
                        channel_id: c.channel_id,
                        assignee_id: c.assignee_id,
                        group_id: c.group_id,
                    },
                },
            );
        }
        Ok(())
    }

    /// The visitor has seen the conversation: every operator message not read yet is read.
    async fn read(&self) -> ApiResult<()> {
        let Some(c) = self.conversation().await? else {
            return Ok(());
        };
        let mut after = None;
        loop {
            let page = self
                .state
                .store
                .conversation_messages(c.client_id, c.id, after, 500)
                .await?;
            for m in &page {
                if m.direction == Direction::Outbound
                    && matches!(
                        m.status,
                        DeliveryStatus::Pending | DeliveryStatus::Sent | DeliveryStatus::Delivered
                    )
                    && m.kind != omnihub_core::model::MessageKind::Note
                {
                    self.state
                        .hub
                        .message_receipt(c.client_id, m.id, DeliveryStatus::Read)
                        .await?;
                }
            }
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(last.id),
                _ => return Ok(()),
            }
        }
    }
}
