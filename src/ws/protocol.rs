//! The operator WebSocket's wire format, version 1 (`docs/ws-protocol.md` is its reference):
//! what a console may send, what the server sends back, their error and close codes, and the
//! rendering of the hub's pushes into JSON.
//!
//! Every frame is one JSON object `{"v":1,"type":…}`. Client messages are parsed in two steps —
//! the envelope (`v`, `type`, `ref`) first, then the type's own fields with unknown fields
//! rejected — so a bad message can still be answered with its `ref`.

use std::sync::Mutex;

use bytestring::ByteString;
use omnihub_actors::ServerPush;
use omnihub_core::events::{EventKind, HubEvent};
use omnihub_core::routing::Presence;
use omnihub_core::{ConversationId, GroupId, MessageId, UserId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::i18n::{Lang, Msg};

/// The protocol version this server speaks; every frame carries it as `v`.
pub const VERSION: u64 = 1;

/// Largest frame (and largest message, continuations included) a client may send. A bigger
/// one closes the socket with [`close::TOO_BIG`].
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Longest `ref` echoed back; longer ones are refused as `invalid_message`.
pub const MAX_REF_CHARS: usize = 64;

/// Views one subscription may name.
pub const MAX_VIEWS: usize = 32;

/// Close codes the server uses (RFC 6455 codes and the 4000–4999 range left to applications).
pub mod close {
    /// The client closed, or the server is done with a well-behaved socket.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame the WebSocket protocol itself forbids (bad opcode, unmasked frame, bad UTF-8).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A frame or message over [`super::MAX_FRAME_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// The server failed in a way the client cannot fix.
    pub const INTERNAL: u16 = 1011;
    /// The client did not read its pushes fast enough and its queue overflowed.
    pub const SLOW_CONSUMER: u16 = 4000;
    /// Nothing arrived from the client (not even a pong) for the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: u16 = 4001;
    /// No `hello` within the heartbeat timeout of opening the socket.
    pub const HELLO_TIMEOUT: u16 = 4002;
    /// The session or token was revoked, the user disabled, or the client blocked.
    pub const REVOKED: u16 = 4403;
}

/// A close frame's code and reason; the reason is a stable snake_case word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    pub const NORMAL: Close = Close {
        code: close::NORMAL,
        reason: "normal",
    };
    pub const GOING_AWAY: Close = Close {
        code: close::GOING_AWAY,
        reason: "shutdown",
    };
    pub const PROTOCOL_ERROR: Close = Close {
        code: close::PROTOCOL_ERROR,
        reason: "protocol_error",
    };
    pub const TOO_BIG: Close = Close {
        code: close::TOO_BIG,
        reason: "message_too_big",
    };
    pub const INTERNAL: Close = Close {
        code: close::INTERNAL,
        reason: "internal",
    };
    pub const SLOW_CONSUMER: Close = Close {
        code: close::SLOW_CONSUMER,
        reason: "slow_consumer",
    };
    pub const HEARTBEAT_TIMEOUT: Close = Close {
        code: close::HEARTBEAT_TIMEOUT,
        reason: "heartbeat_timeout",
    };
    pub const HELLO_TIMEOUT: Close = Close {
        code: close::HELLO_TIMEOUT,
        reason: "hello_timeout",
    };
    pub const REVOKED: Close = Close {
        code: close::REVOKED,
        reason: "revoked",
    };

    pub fn of(reason: omnihub_actors::CloseReason) -> Close {
        match reason {
            omnihub_actors::CloseReason::SlowConsumer => Close::SLOW_CONSUMER,
            omnihub_actors::CloseReason::Shutdown => Close::GOING_AWAY,
            omnihub_actors::CloseReason::Revoked => Close::REVOKED,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------

/// Which conversations' pushes a session wants; the union of its views, always within what
/// the operator may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// Assigned to the operator.
    Mine,
    /// Assigned to nobody.
    Unassigned,
    /// In this group of the operator's client.
    Group(GroupId),
    /// Everything the operator may see.
    All,
}

impl View {
    pub fn parse(s: &str) -> Option<View> {
        match s {
            "mine" => Some(View::Mine),
            "unassigned" => Some(View::Unassigned),
            "all" => Some(View::All),
            _ => s
                .strip_prefix("group:")
                .and_then(|id| id.parse().ok())
                .map(View::Group),
        }
    }

    /// Whether a conversation with this assignee and group is in the view.
    pub fn contains(self, me: UserId, assignee: Option<UserId>, group: Option<GroupId>) -> bool {
        match self {
            View::Mine => assignee == Some(me),
            View::Unassigned => assignee.is_none(),
            View::Group(g) => group == Some(g),
            View::All => true,
        }
    }
}

impl<'de> Deserialize<'de> for View {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        View::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown view `{s}`: expected `mine`, `unassigned`, `all` or `group:<uuid>`"
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Replay every event after this `seq` (the last one the console saw) before live pushes.
    pub resume_after: Option<i64>,
    /// The initial subscription; `["all"]` when absent.
    pub views: Option<Vec<View>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    pub views: Vec<View>,
}

/// A reply to the customer, or (as `note`) an internal note.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    pub conversation_id: ConversationId,
    pub text: String,
    /// The same key on the same conversation is the same message, however often it is sent.
    pub idempotency_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Typing {
    pub conversation_id: ConversationId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Read {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPresence {
    pub presence: Presence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug)]
pub enum ClientMessage {
    Hello(Hello),
    Subscribe(Subscribe),
    Reply(Write),
    Note(Write),
    Typing(Typing),
    Read(Read),
    Presence(SetPresence),
    Ping,
}

impl ClientMessage {
    pub const TYPES: [&'static str; 8] = [
        "hello",
        "subscribe",
        "reply",
        "note",
        "typing",
        "read",
        "presence",
        "ping",
    ];
}

/// A parsed client message and the `ref` to echo in its answer.
#[derive(Debug)]
pub struct Incoming {
    pub reference: Option<Value>,
    pub message: ClientMessage,
}

/// Why a frame is not a message; answered with an `ack` error, the socket stays open.
#[derive(Debug)]
pub struct Fault {
    /// Echoed when the envelope was readable enough to find it.
    pub reference: Option<Value>,
    pub error: AckError,
}

fn invalid(reference: Option<Value>, detail: impl Into<String>) -> Fault {
    Fault {
        reference,
        error: AckError::msg(
            "invalid_message",
            Msg::WsInvalidMessage {
                detail: detail.into(),
            },
        ),
    }
}

fn fields<T: DeserializeOwned>(rest: Map<String, Value>) -> Result<T, String> {
    serde_json::from_value(Value::Object(rest)).map_err(|e| e.to_string())
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Incoming, Fault> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| invalid(None, format!("not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(invalid(None, "expected a JSON object"));
    };
    let reference = match map.remove("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_REF_CHARS => Some(Value::String(s)),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        Some(_) => {
            return Err(invalid(
                None,
                format!(
                    "`ref` must be a string of at most {MAX_REF_CHARS} characters or an integer"
                ),
            ));
        }
    };
    match map.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(_) => {
            return Err(Fault {
                reference,
                error: AckError::msg("unsupported_version", Msg::WsUnsupportedVersion),
            });
        }
        None => return Err(invalid(reference, "missing field `v`")),
    }
    let kind = match map.remove("type") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid(reference, "`type` must be a string")),
        None => return Err(invalid(reference, "missing field `type`")),
    };
    let parsed = match kind.as_str() {
        "hello" => fields(map).map(ClientMessage::Hello),
        "subscribe" => fields(map).map(ClientMessage::Subscribe),
        "reply" => fields(map).map(ClientMessage::Reply),
        "note" => fields(map).map(ClientMessage::Note),
        "typing" => fields(map).map(ClientMessage::Typing),
        "read" => fields(map).map(ClientMessage::Read),
        "presence" => fields(map).map(ClientMessage::Presence),
        "ping" => fields::<Empty>(map).map(|_| ClientMessage::Ping),
        other => Err(format!(
            "unknown type `{other}`, expected one of {}",
            ClientMessage::TYPES.join(", ")
        )),
    };
    match parsed {
        Ok(message) => Ok(Incoming { reference, message }),
        Err(detail) => Err(invalid(reference, detail)),
    }
}

// ---------------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------------

/// The error of a failed `ack`: a stable code and a message in the language the socket was
/// opened with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckError {
    pub code: &'static str,
    pub message: Msg,
}

impl AckError {
    pub fn msg(code: &'static str, message: Msg) -> AckError {
        AckError { code, message }
    }
}

#[derive(Serialize)]
struct WireError<'a> {
    code: &'a str,
    message: String,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    Welcome {
        session_id: uuid::Uuid,
        last_seq: i64,
        heartbeat_interval_ms: u64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stale_cursor: bool,
    },
    Event {
        seq: i64,
        kind: EventKind,
        conversation_id: Option<ConversationId>,
        payload: &'a Value,
    },
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    Presence {
        user_id: UserId,
        presence: Presence,
    },
    ContactTyping {
        conversation_id: ConversationId,
    },
    ConversationHidden {
        seq: i64,
        conversation_id: ConversationId,
    },
    Ack {
        #[serde(rename = "ref")]
        reference: Option<&'a Value>,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<WireError<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
    },
    Pong {
        #[serde(rename = "ref")]
        reference: Option<&'a Value>,
    },
}

#[derive(Serialize)]
struct Frame<'a> {
    v: u64,
    #[serde(flatten)]
    message: ServerMessage<'a>,
}

fn frame(message: ServerMessage<'_>) -> String {
    // Serialising these types cannot fail: string keys, no maps with non-string keys.
    serde_json::to_string(&Frame {
        v: VERSION,
        message,
    })
    .unwrap_or_default()
}

/// `stale_cursor`: the cursor the client resumes from is older than the pruned part of the
/// events log, so it may have missed events and must reload instead.
pub fn welcome(
    session_id: uuid::Uuid,
    last_seq: i64,
    heartbeat_interval_ms: u64,
    stale_cursor: bool,
) -> String {
    frame(ServerMessage::Welcome {
        session_id,
        last_seq,
        heartbeat_interval_ms,
        stale_cursor,
    })
}

pub fn event(e: &HubEvent) -> String {
    frame(ServerMessage::Event {
        seq: e.seq,
        kind: e.kind,
        conversation_id: e.conversation_id,
        payload: &e.payload,
    })
}

pub fn typing(conversation_id: ConversationId, user_id: UserId) -> String {
    frame(ServerMessage::Typing {
        conversation_id,
        user_id,
    })
}

pub fn presence(user_id: UserId, presence: Presence) -> String {
    frame(ServerMessage::Presence { user_id, presence })
}

pub fn ack_ok(reference: Option<&Value>, message_id: Option<MessageId>) -> String {
    frame(ServerMessage::Ack {
        reference,
        ok: true,
        error: None,
        message_id,
    })
}

pub fn ack_error(reference: Option<&Value>, error: &AckError, lang: Lang) -> String {
    frame(ServerMessage::Ack {
        reference,
        ok: false,
        error: Some(WireError {
            code: error.code,
            message: error.message.render(lang),
        }),
        message_id: None,
    })
}

pub fn pong(reference: Option<&Value>) -> String {
    frame(ServerMessage::Pong { reference })
}

/// Renders the JSON of recent events once for every socket they fan out to: a broadcast to
/// thousands of consoles serialises each event once, not once per socket. Keyed by `seq`,
/// which is unique per store, and an application has one store.
pub struct EventCache {
    slots: Vec<Mutex<Option<(i64, ByteString)>>>,
}

impl Default for EventCache {
    fn default() -> Self {
        EventCache {
            slots: (0..64).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl EventCache {
    pub fn render(&self, e: &HubEvent) -> ByteString {
        let slot = &self.slots[e.seq.rem_euclid(self.slots.len() as i64) as usize];
        if let Ok(guard) = slot.lock()
            && let Some((seq, text)) = guard.as_ref()
            && *seq == e.seq
        {
            return text.clone();
        }
        let text = ByteString::from(event(e));
        if let Ok(mut guard) = slot.lock() {
            *guard = Some((e.seq, text.clone()));
        }
        text
    }
}

/// The wire form of a push.
pub fn render_push(push: &ServerPush, cache: &EventCache) -> ByteString {
    match push {
        ServerPush::Event(e) => cache.render(e),
        ServerPush::Typing {
            conversation_id,
            user_id,
        } => typing(*conversation_id, *user_id).into(),
        ServerPush::Presence { user_id, presence } => self::presence(*user_id, *presence).into(),
        ServerPush::ContactTyping { conversation_id } => frame(ServerMessage::ContactTyping {
            conversation_id: *conversation_id,
        })
        .into(),
        ServerPush::Hidden {
            seq,
            conversation_id,
        } => frame(ServerMessage::ConversationHidden {
            seq: *seq,
            conversation_id: *conversation_id,
        })
        .into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use omnihub_core::ClientId;
    use serde_json::json;

    use super::*;

    fn parse_err(text: &str) -> Fault {
        match parse(text) {
            Err(f) => f,
            Ok(m) => panic!("{text} parsed as {m:?}"),
        }
    }

    #[test]
    fn every_type_parses() {
        let c = ConversationId::new();
        let m = MessageId::new();
        let g = GroupId::new();
        let cases = [
            json!({"v":1,"type":"hello"}),
            json!({"v":1,"type":"hello","resume_after":17,"views":["mine",format!("group:{g}")]}),
            json!({"v":1,"type":"subscribe","views":["all","unassigned"]}),
            json!({"v":1,"type":"reply","ref":"r1","conversation_id":c,"text":"hi","idempotency_key":"k"}),
            json!({"v":1,"type":"note","ref":2,"conversation_id":c,"text":"hi","idempotency_key":"k"}),
            json!({"v":1,"type":"typing","conversation_id":c}),
            json!({"v":1,"type":"read","ref":"x","conversation_id":c,"message_id":m}),
            json!({"v":1,"type":"presence","presence":"away"}),
            json!({"v":1,"type":"ping","ref":null}),
        ];
        for case in cases {
            let parsed = parse(&case.to_string()).unwrap_or_else(|f| panic!("{case}: {f:?}"));
            assert_eq!(
                parsed.reference,
                case.get("ref").filter(|r| !r.is_null()).cloned()
            );
        }
        match parse(&json!({"v":1,"type":"hello","views":[format!("group:{g}")]}).to_string())
            .unwrap()
            .message
        {
            ClientMessage::Hello(h) => assert_eq!(h.views, Some(vec![View::Group(g)])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_frames_are_invalid_messages_that_keep_their_ref() {
        let c = ConversationId::new();
        for (text, code, keeps_ref) in [
            ("not json".to_string(), "invalid_message", false),
            ("[1,2]".to_string(), "invalid_message", false),
            (
                json!({"v":1,"type":"teleport","ref":"a"}).to_string(),
                "invalid_message",
                true,
            ),
            (
                json!({"v":1,"type":"typing","ref":"a","conversation_id":c,"extra":1}).to_string(),
                "invalid_message",
                true,
            ),
            (
                json!({"v":1,"type":"typing","ref":"a"}).to_string(),
                "invalid_message",
                true,
            ),
            (
                json!({"v":1,"type":"typing","ref":"a","conversation_id":"nope"}).to_string(),
                "invalid_message",
                true,
            ),
            (
                json!({"type":"ping","ref":"a"}).to_string(),
                "invalid_message",
                true,
            ),
            (
                json!({"v":2,"type":"ping","ref":"a"}).to_string(),
                "unsupported_version",
                true,
            ),
            (
                json!({"v":1,"type":"subscribe","ref":"a","views":["everything"]}).to_string(),
                "invalid_message",
                true,
            ),
            (
                json!({"v":1,"type":"ping","ref":"x".repeat(65)}).to_string(),
                "invalid_message",
                false,
            ),
            (
                json!({"v":1,"type":"ping","ref":{"a":1}}).to_string(),
                "invalid_message",
                false,
            ),
        ] {
            let f = parse_err(&text);
            assert_eq!(f.error.code, code, "{text}");
            assert_eq!(f.reference.is_some(), keeps_ref, "{text}");
        }
    }

    #[test]
    fn server_frames_carry_the_version_and_their_fields() {
        let r = json!("r1");
        let ack: Value = serde_json::from_str(&ack_ok(Some(&r), None)).unwrap();
        assert_eq!(ack, json!({"v":1,"type":"ack","ref":"r1","ok":true}));
        let err = AckError::msg("not_found", Msg::NotFound);
        let ack: Value = serde_json::from_str(&ack_error(None, &err, Lang::En)).unwrap();
        assert_eq!(
            ack,
            json!({"v":1,"type":"ack","ref":null,"ok":false,"error":{"code":"not_found","message":"not found"}})
        );
        let e = HubEvent {
            seq: 5,
            client_id: ClientId::new(),
            conversation_id: Some(ConversationId::new()),
            channel_id: None,
            assignee_id: None,
            group_id: None,
            kind: EventKind::MessageStatus,
            payload: json!({"status":"read"}),
            created_at: Utc::now(),
        };
        let cache = EventCache::default();
        let first = cache.render(&e);
        assert_eq!(
            first.as_bytes().as_ptr(),
            cache.render(&e).as_bytes().as_ptr(),
            "rendered once"
        );
        let v: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(
            v,
            json!({"v":1,"type":"event","seq":5,"kind":"message_status",
                "conversation_id":e.conversation_id,"payload":{"status":"read"}})
        );
        let hidden = render_push(
            &ServerPush::Hidden {
                seq: 6,
                conversation_id: e.conversation_id.unwrap(),
            },
            &cache,
        );
        let h: Value = serde_json::from_str(&hidden).unwrap();
        assert_eq!(
            h,
            json!({"v":1,"type":"conversation_hidden","seq":6,"conversation_id":e.conversation_id})
        );
        let w: Value = serde_json::from_str(&welcome(uuid::Uuid::nil(), 9, 15_000, false)).unwrap();
        assert_eq!(w["type"], "welcome");
        assert_eq!(w["last_seq"], 9);
        assert!(w.get("stale_cursor").is_none(), "{w}");
        let w: Value = serde_json::from_str(&welcome(uuid::Uuid::nil(), 9, 15_000, true)).unwrap();
        assert_eq!(w["stale_cursor"], true);
        let p: Value = serde_json::from_str(&pong(None)).unwrap();
        assert_eq!(p, json!({"v":1,"type":"pong","ref":null}));
    }

    #[test]
    fn views_contain() {
        let me = UserId::new();
        let g = GroupId::new();
        assert!(View::Mine.contains(me, Some(me), None));
        assert!(!View::Mine.contains(me, None, None));
        assert!(View::Unassigned.contains(me, None, Some(g)));
        assert!(View::Group(g).contains(me, Some(UserId::new()), Some(g)));
        assert!(!View::Group(g).contains(me, None, None));
        assert!(View::All.contains(me, None, None));
    }
}
