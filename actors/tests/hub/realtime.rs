//! The realtime hub through `HubHandle`, on a real SQLite store, with console sessions that
//! record what they are pushed and a small HTTP server (hand-rolled on tokio: it speaks
//! HTTP/1.1 and records every request) standing in for an API channel's receiver.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use omnihub_actors::{
    ChildStatus, CloseReason, Hub, HubConfig, HubError, HubHandle, ServerPush, SessionHandle,
    SessionSink, SinkClosed,
};
use omnihub_core::access::Principal;
use omnihub_core::events::{EventKind, HubEvent};
use omnihub_core::model::{
    Channel, ChannelGrant, ChannelKind, Conversation, ConversationStatus, DeliveryStatus,
    Direction, Message, MessageKind, Provider, User,
};
use omnihub_core::routing::{AutoReplies, Presence, RoutingMode, WeeklyHours};
use omnihub_core::{
    ChannelId, ChannelRights, ClientId, ConversationId, GlobalRights, Role, UserId,
};
use omnihub_store::{
    ChannelPatch, ConversationPatch, DynStore, GroupRouting, InboundEvent, Ingest, NewChannel,
    NewUser,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::TempStore;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// An HTTP receiver for the API channel's outbound POSTs.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: serde_json::Value,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

#[derive(Default)]
struct ReceiverState {
    requests: Mutex<Vec<Received>>,
    /// Answers for the next requests, in order; afterwards `200 {"id":"p-<n>"}`.
    script: Mutex<VecDeque<Reply>>,
}

struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/outbound", listener.local_addr().unwrap());
        let state = Arc::new(ReceiverState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Receiver { url, state, task }
    }

    fn then_reply(&self, status: u16, headers: Vec<(&'static str, String)>, body: &str) {
        self.state.script.lock().unwrap().push_back(Reply {
            status,
            headers,
            body: body.to_string(),
        });
    }

    fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} requests at the receiver"), || async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One connection: requests one after another (keep-alive), each recorded and answered.
async fn serve(mut stream: TcpStream, state: Arc<ReceiverState>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(at) = find(&buf, b"\r\n\r\n") {
                break at;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_string();
        let path = request_line.next().unwrap_or_default().to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buf.len() < body_start + len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = serde_json::from_slice(&buf[body_start..body_start + len])
            .unwrap_or(serde_json::Value::Null);
        buf.drain(..body_start + len);
        let reply = {
            let mut requests = state.requests.lock().unwrap();
            requests.push(Received {
                at: Instant::now(),
                method,
                path,
                headers,
                body,
            });
            let n = requests.len();
            state.script.lock().unwrap().pop_front().unwrap_or(Reply {
                status: 200,
                headers: vec![],
                body: json!({ "id": format!("p-{n}") }).to_string(),
            })
        };
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&reply.body);
        if stream.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Console sessions that record their pushes.
// ---------------------------------------------------------------------------------------------

struct Sink {
    pushes: mpsc::UnboundedSender<ServerPush>,
    closed: Mutex<Option<CloseReason>>,
    /// A consumer that never takes anything: `send` never completes.
    stuck: bool,
}

#[async_trait]
impl SessionSink for Sink {
    async fn send(&self, message: ServerPush) -> Result<(), SinkClosed> {
        if self.stuck {
            std::future::pending::<()>().await;
        }
        self.pushes.send(message).map_err(|_| SinkClosed)
    }

    async fn close(&self, reason: CloseReason) {
        *self.closed.lock().unwrap() = Some(reason);
    }
}

struct Console {
    handle: SessionHandle,
    pushes: mpsc::UnboundedReceiver<ServerPush>,
    sink: Arc<Sink>,
}

impl Console {
    fn closed(&self) -> Option<CloseReason> {
        *self.sink.closed.lock().unwrap()
    }

    /// The next pushed event matching `pred`, skipping anything else.
    async fn next_event(&mut self, what: &str, pred: impl Fn(&HubEvent) -> bool) -> Arc<HubEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.pushes.recv()).await {
                Ok(Some(ServerPush::Event(event))) if pred(&event) => return event,
                Ok(Some(_)) => {}
                Ok(None) => panic!("session closed while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// The next push of any kind matching `pred`, skipping anything else.
    async fn next_push(&mut self, what: &str, pred: impl Fn(&ServerPush) -> bool) -> ServerPush {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.pushes.recv()).await {
                Ok(Some(push)) if pred(&push) => return push,
                Ok(Some(_)) => {}
                Ok(None) => panic!("session closed while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Every push until nothing came for `quiet`.
    async fn pushes_until_quiet(&mut self, quiet: Duration) -> Vec<ServerPush> {
        let mut pushes = Vec::new();
        while let Ok(Some(push)) = tokio::time::timeout(quiet, self.pushes.recv()).await {
            pushes.push(push);
        }
        pushes
    }

    /// Every event pushed until nothing came for `quiet`.
    async fn events_until_quiet(&mut self, quiet: Duration) -> Vec<Arc<HubEvent>> {
        let mut events = Vec::new();
        while let Ok(Some(push)) = tokio::time::timeout(quiet, self.pushes.recv()).await {
            if let ServerPush::Event(event) = push {
                events.push(event);
            }
        }
        events
    }
}

fn message_id(event: &HubEvent) -> Option<&str> {
    event.payload.get("id").and_then(|v| v.as_str())
}

fn is_message(event: &HubEvent, message: &Message) -> bool {
    event.kind == EventKind::MessageCreated && message_id(event) == Some(&message.id.to_string())
}

fn is_status(event: &HubEvent, message: &Message, status: &str) -> bool {
    event.kind == EventKind::MessageStatus
        && message_id(event) == Some(&message.id.to_string())
        && event.payload.get("status").and_then(|s| s.as_str()) == Some(status)
}

// ---------------------------------------------------------------------------------------------
// One client with one API channel pointed at a receiver, and a running hub.
// ---------------------------------------------------------------------------------------------

struct World {
    _db: TempStore,
    store: DynStore,
    hub: Hub,
    h: HubHandle,
    client: ClientId,
    owner: User,
    channel: Channel,
    receiver: Receiver,
}

fn config() -> HubConfig {
    HubConfig {
        scheduler_tick: Duration::from_millis(50),
        ..HubConfig::default()
    }
}

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn user(store: &DynStore, client: ClientId, name: &str, role: Role) -> User {
    store
        .create_user(&NewUser {
            email: format!("{name}-{}@client.test", uuid::Uuid::new_v4().simple()),
            display_name: name.into(),
            password_hash: "not a real hash".into(),
            role,
            client_id: Some(client),
            global_rights: role.default_global_rights(),
            locale: "en".into(),
        })
        .await
        .unwrap()
}

async fn world(config: HubConfig) -> World {
    let db = super::sqlite().await;
    let store = db.store.clone();
    let client = store.create_client("Acme", None).await.unwrap();
    let owner = user(&store, client.id, "owner", Role::ClientOwner).await;
    let receiver = Receiver::start().await;
    let channel = store
        .create_channel(&NewChannel {
            client_id: client.id,
            kind: ChannelKind::Messaging,
            provider: Provider::Api,
            name: "Website API".into(),
            settings: json!({ "outbound_url": receiver.url }),
            credentials: Some(json!({ "outbound_token": "secret-token" })),
        })
        .await
        .unwrap();
    let hub = Hub::start(store.clone(), config).await.unwrap();
    let h = hub.handle();
    World {
        _db: db,
        store,
        hub,
        h,
        client: client.id,
        owner,
        channel,
        receiver,
    }
}

impl World {
    /// An employee with READ and REPLY on the channel; online with `capacity` when asked.
    async fn operator(&self, name: &str, capacity: u32, online: bool) -> User {
        let op = user(&self.store, self.client, name, Role::Employee).await;
        self.store
            .set_channel_grants(
                self.client,
                op.id,
                &[ChannelGrant {
                    channel_id: self.channel.id,
                    rights: ChannelRights::READ | ChannelRights::REPLY,
                }],
            )
            .await
            .unwrap();
        let presence = if online {
            Presence::Online
        } else {
            Presence::Offline
        };
        self.h
            .set_operator(
                self.client,
                op.id,
                Some(capacity),
                Some(true),
                Some(presence),
            )
            .await
            .unwrap();
        op
    }

    fn principal(&self, who: &User) -> Arc<Principal> {
        let mut channels = HashMap::new();
        channels.insert(self.channel.id, ChannelRights::READ | ChannelRights::REPLY);
        Arc::new(Principal {
            user_id: who.id,
            role: who.role,
            client_id: Some(self.client),
            client_active: true,
            global: GlobalRights::empty(),
            channels,
            groups: Vec::new(),
        })
    }

    async fn console(&self, who: &User, resume_after: Option<i64>) -> Console {
        self.console_with(self.principal(who), resume_after, false)
            .await
    }

    async fn console_with(
        &self,
        principal: Arc<Principal>,
        resume_after: Option<i64>,
        stuck: bool,
    ) -> Console {
        let (tx, pushes) = mpsc::unbounded_channel();
        let sink = Arc::new(Sink {
            pushes: tx,
            closed: Mutex::new(None),
            stuck,
        });
        let handle = self
            .h
            .open_session(principal, sink.clone(), resume_after)
            .await
            .unwrap();
        Console {
            handle,
            pushes,
            sink,
        }
    }

    fn inbound(&self, chat: &str, event: &str, text: &str) -> InboundEvent {
        InboundEvent {
            attachments: Vec::new(),
            client_id: self.client,
            channel_id: self.channel.id,
            external_conversation_id: chat.into(),
            external_user_id: format!("customer-{chat}"),
            contact_name: format!("Ann {chat}"),
            provider_event_id: event.into(),
            text: text.into(),
        }
    }

    async fn ingest(&self, chat: &str, event: &str, text: &str) -> (Message, Conversation, bool) {
        match self
            .h
            .ingest(self.inbound(chat, event, text))
            .await
            .unwrap()
        {
            Ingest::New {
                message,
                conversation,
                new_request,
                ..
            } => (message, conversation, new_request),
            Ingest::Duplicate(id) => panic!("unexpected duplicate {id}"),
        }
    }

    async fn conversation(&self, id: ConversationId) -> Conversation {
        self.store.get_conversation(self.client, id).await.unwrap()
    }

    async fn assigned(&self, id: ConversationId, to: UserId) {
        eventually("the assignment", || async {
            (self.conversation(id).await.assignee_id == Some(to)).then_some(())
        })
        .await;
    }

    async fn queue(&self) -> Vec<ConversationId> {
        self.store
            .routing_snapshot(self.client)
            .await
            .unwrap()
            .queue
            .iter()
            .map(|q| q.conversation_id)
            .collect()
    }

    async fn messages(&self, id: ConversationId) -> Vec<Message> {
        self.store
            .conversation_messages(self.client, id, None, 500)
            .await
            .unwrap()
    }

    async fn resolve(&self, id: ConversationId) -> Conversation {
        self.h
            .update_conversation(
                self.client,
                id,
                ConversationPatch {
                    status: Some(ConversationStatus::Resolved),
                    ..ConversationPatch::default()
                },
            )
            .await
            .unwrap()
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(5), self.hub.stop())
            .await
            .expect("the hub did not stop promptly");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_goes_in_and_a_reply_goes_out_with_every_status_pushed() {
    let w = world(config()).await;
    let op = w.operator("operator", 5, true).await;
    let mut console = w.console(&op, None).await;

    let (inbound, conversation, new_request) = w.ingest("chat-1", "evt-1", "Hello!").await;
    assert!(new_request);
    assert_eq!(inbound.direction, Direction::Inbound);
    assert_eq!(conversation.channel_id, w.channel.id);
    // Acknowledged means committed: the message is in the store when ingest returns.
    assert_eq!(w.messages(conversation.id).await.len(), 1);

    console
        .next_event("the inbound message", |e| is_message(e, &inbound))
        .await;
    let assigned = console
        .next_event("the assignment", |e| {
            e.kind == EventKind::ConversationUpdated && e.assignee_id == Some(op.id)
        })
        .await;
    assert_eq!(assigned.conversation_id, Some(conversation.id));
    assert_eq!(
        w.conversation(conversation.id).await.assignee_id,
        Some(op.id)
    );

    let reply =
        w.h.send_reply(
            w.client,
            conversation.id,
            op.id,
            "Hi! How can I help?".into(),
            "reply-1".into(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, DeliveryStatus::Pending);
    assert_eq!(reply.kind, MessageKind::Message);
    console
        .next_event("the reply", |e| is_message(e, &reply))
        .await;

    let request = w.receiver.wait_for(1).await.remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/outbound");
    assert_eq!(request.headers["idempotency-key"], "reply-1");
    assert_eq!(request.headers["authorization"], "Bearer secret-token");
    assert_eq!(
        request.body,
        json!({
            "message_id": reply.id,
            "conversation": "chat-1",
            "text": "Hi! How can I help?",
            "idempotency_key": "reply-1",
        })
    );
    console
        .next_event("sent", |e| is_status(e, &reply, "sent"))
        .await;

    // The receiver answered with id p-1; its delivery callback refers to it.
    w.h.delivery_status(
        w.client,
        w.channel.id,
        "p-1".into(),
        DeliveryStatus::Delivered,
        None,
    )
    .await
    .unwrap();
    console
        .next_event("delivered", |e| is_status(e, &reply, "delivered"))
        .await;

    // The same reply again (a retried request): the same message, and no second send.
    let again =
        w.h.send_reply(
            w.client,
            conversation.id,
            op.id,
            "Hi! How can I help?".into(),
            "reply-1".into(),
        )
        .await
        .unwrap();
    assert_eq!(again.id, reply.id);
    // A note is published but never sent.
    let note =
        w.h.add_note(
            w.client,
            conversation.id,
            op.id,
            "VIP customer".into(),
            "note-1".into(),
        )
        .await
        .unwrap();
    assert_eq!(note.kind, MessageKind::Note);
    console
        .next_event("the note", |e| is_message(e, &note))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.receiver.requests().len(), 1);

    let health = w.h.health();
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(
        health.client(w.client).unwrap().status,
        ChildStatus::Running
    );
    drop(console);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_concurrent_identical_ingests_make_one_message_and_one_push() {
    let w = world(config()).await;
    let mut console = w.console(&w.owner, None).await;
    let ingests: Vec<_> = (0..5)
        .map(|_| {
            let h = w.h.clone();
            let event = w.inbound("chat-dup", "evt-dup", "only once");
            tokio::spawn(async move { h.ingest(event).await.unwrap() })
        })
        .collect();
    let mut new = Vec::new();
    let mut duplicates = Vec::new();
    for ingest in ingests {
        match ingest.await.unwrap() {
            Ingest::New { message, .. } => new.push(message),
            Ingest::Duplicate(id) => duplicates.push(id),
        }
    }
    assert_eq!(new.len(), 1);
    assert_eq!(duplicates.len(), 4);
    assert!(duplicates.iter().all(|id| *id == new[0].id));
    assert_eq!(w.messages(new[0].conversation_id).await.len(), 1);

    console
        .next_event("the message", |e| is_message(e, &new[0]))
        .await;
    let more = console.events_until_quiet(Duration::from_millis(500)).await;
    assert!(
        !more.iter().any(|e| e.kind == EventKind::MessageCreated),
        "pushed again: {more:?}"
    );
    drop(console);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_first_come_first_served_as_capacity_frees() {
    let w = world(config()).await;
    let op = w.operator("solo", 1, true).await;

    let (_, a, _) = w.ingest("chat-a", "a-1", "first").await;
    w.assigned(a.id, op.id).await;
    let (_, b, _) = w.ingest("chat-b", "b-1", "second").await;
    eventually("b to wait", || async {
        (w.queue().await == vec![b.id]).then_some(())
    })
    .await;
    let (_, c, _) = w.ingest("chat-c", "c-1", "third").await;
    eventually("c to wait behind b", || async {
        (w.queue().await == vec![b.id, c.id]).then_some(())
    })
    .await;
    assert_eq!(w.conversation(b.id).await.assignee_id, None);

    // Resolving a frees the operator's one slot: b, not c, goes next.
    w.resolve(a.id).await;
    w.assigned(b.id, op.id).await;
    assert_eq!(w.queue().await, vec![c.id]);
    assert_eq!(w.conversation(c.id).await.assignee_id, None);

    w.resolve(b.id).await;
    w.assigned(c.id, op.id).await;
    assert!(w.queue().await.is_empty());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_coming_online_takes_the_waiting_conversation() {
    let w = world(config()).await;
    let op = w.operator("late", 3, false).await;
    let (_, a, _) = w.ingest("chat-late", "late-1", "anyone?").await;
    eventually("a to wait", || async {
        (w.queue().await == vec![a.id]).then_some(())
    })
    .await;
    let state =
        w.h.set_operator(w.client, op.id, None, None, Some(Presence::Online))
            .await
            .unwrap();
    assert_eq!(state.presence, Presence::Online);
    w.assigned(a.id, op.id).await;
    assert!(w.queue().await.is_empty());

    // A transfer to a group routes within it: only its member may take it.
    let other = w.operator("specialist", 3, true).await;
    let group = w.store.create_group(w.client, "Specialists").await.unwrap();
    w.store
        .set_group_members(w.client, group.id, &[other.id])
        .await
        .unwrap();
    let moved =
        w.h.update_conversation(
            w.client,
            a.id,
            ConversationPatch {
                assignee_id: Some(None),
                group_id: Some(Some(group.id)),
                ..ConversationPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.group_id, Some(group.id));
    // The readers cache may predate `other`'s grant by a few seconds; routing catches up.
    w.assigned(a.id, other.id).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_modes_pick_by_skill_load_and_turn() {
    let w = world(config()).await;
    let a = w.operator("skilled", 10, true).await;
    let b = w.operator("middling", 10, true).await;
    let c = w.operator("novice", 10, true).await;
    let group = w.store.create_group(w.client, "Support").await.unwrap();
    w.store
        .set_group_members(w.client, group.id, &[a.id, b.id, c.id])
        .await
        .unwrap();
    for (user, level) in [(a.id, 90), (b.id, 50), (c.id, 10)] {
        w.store
            .set_competency(w.client, group.id, user, level)
            .await
            .unwrap();
    }
    let set_mode = |mode| {
        let store = w.store.clone();
        let client = w.client;
        async move {
            store
                .set_group_routing(
                    client,
                    group.id,
                    &GroupRouting {
                        mode,
                        hours: WeeklyHours::default(),
                        auto_replies: AutoReplies::default(),
                    },
                )
                .await
                .unwrap();
        }
    };
    w.store
        .update_channel(
            w.client,
            w.channel.id,
            &ChannelPatch {
                settings: Some(json!({
                    "outbound_url": w.receiver.url,
                    "group_id": group.id,
                })),
                ..ChannelPatch::default()
            },
        )
        .await
        .unwrap();

    let mut n = 0;
    let mut next = async || {
        n += 1;
        let (_, conversation, _) = w
            .ingest(&format!("chat-{n}"), &format!("m-{n}"), "help")
            .await;
        eventually("an assignment", || async {
            w.conversation(conversation.id).await.assignee_id
        })
        .await
    };

    // Most skilled: the 90 takes both, capacity allowing.
    set_mode(RoutingMode::MostSkilled).await;
    assert_eq!(next().await, a.id);
    assert_eq!(next().await, a.id);

    // Least busy: the two idle ones, one each, never the one holding two.
    set_mode(RoutingMode::LeastBusy).await;
    let third = next().await;
    let fourth = next().await;
    assert_eq!(HashSet::from([third, fourth]), HashSet::from([b.id, c.id]));

    // Round robin: whoever was assigned longest ago: a, then the third's, then the fourth's.
    set_mode(RoutingMode::RoundRobin).await;
    assert_eq!(next().await, a.id);
    assert_eq!(next().await, third);
    assert_eq!(next().await, fourth);

    // Conversations routed through the channel's group joined it.
    let filter = omnihub_store::ConversationFilter {
        limit: 100,
        ..Default::default()
    };
    let all = w
        .store
        .list_conversations(w.client, Some(w.owner.id), &filter)
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    assert!(
        all.iter()
            .all(|s| s.conversation.group_id == Some(group.id))
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_hours_auto_replies_pick_the_variant_for_the_customer() {
    let w = world(config()).await;
    let op = w.operator("operator", 5, true).await;
    let group = w.store.create_group(w.client, "Support").await.unwrap();
    w.store
        .set_group_members(w.client, group.id, &[op.id])
        .await
        .unwrap();
    let replies = AutoReplies {
        new_in_hours: Some("Welcome, {{contact.name}}!".into()),
        new_off_hours: Some("We are closed, {{contact.name}}; we answer tomorrow.".into()),
        returning_in_hours: Some("Welcome back!".into()),
        returning_off_hours: Some("Good to hear from you again; we are closed now.".into()),
    };
    let closed = WeeklyHours {
        timezone: "UTC".into(),
        always_open: false,
        days: Default::default(),
    };
    w.store
        .set_group_routing(
            w.client,
            group.id,
            &GroupRouting {
                mode: RoutingMode::LeastBusy,
                hours: closed,
                auto_replies: replies.clone(),
            },
        )
        .await
        .unwrap();
    w.store
        .update_channel(
            w.client,
            w.channel.id,
            &ChannelPatch {
                settings: Some(json!({
                    "outbound_url": w.receiver.url,
                    "group_id": group.id,
                })),
                ..ChannelPatch::default()
            },
        )
        .await
        .unwrap();

    // A new customer, out of hours.
    let (_, conversation, _) = w.ingest("chat-night", "n-1", "Are you there?").await;
    let sent = w.receiver.wait_for(1).await;
    assert_eq!(
        sent[0].body["text"],
        "We are closed, Ann chat-night; we answer tomorrow."
    );
    assert_eq!(sent[0].body["conversation"], "chat-night");
    let auto = eventually("the auto-reply to be sent", || async {
        w.messages(conversation.id)
            .await
            .into_iter()
            .find(|m| m.kind == MessageKind::AutoReply && m.status == DeliveryStatus::Sent)
    })
    .await;
    assert_eq!(auto.direction, Direction::Outbound);
    assert_eq!(auto.author_id, None);
    w.assigned(conversation.id, op.id).await;

    // Another message in the same request: no second auto-reply.
    w.ingest("chat-night", "n-2", "Hello?").await;
    // After resolve the next message opens a new request, from a returning customer.
    w.resolve(conversation.id).await;
    let (_, _, new_request) = w.ingest("chat-night", "n-3", "Me again").await;
    assert!(new_request);
    let sent = w.receiver.wait_for(2).await;
    assert_eq!(
        sent[1].body["text"],
        "Good to hear from you again; we are closed now."
    );

    // In hours, a new customer gets the greeting.
    w.store
        .set_group_routing(
            w.client,
            group.id,
            &GroupRouting {
                mode: RoutingMode::LeastBusy,
                hours: WeeklyHours::default(),
                auto_replies: replies,
            },
        )
        .await
        .unwrap();
    w.ingest("chat-day", "d-1", "Hi").await;
    let sent = w.receiver.wait_for(3).await;
    assert_eq!(sent[2].body["text"], "Welcome, Ann chat-day!");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.receiver.requests().len(), 3, "one auto-reply per request");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_actor_killed_mid_work_recovers_and_the_next_message_flows() {
    let w = world(config()).await;
    let op = w.operator("operator", 5, true).await;
    let mut console = w.console(&w.owner, None).await;

    // The conversation actor panics while handling the first message, before routing it.
    w.h.inject_panic_on_next_inbound(w.client);
    let (first, conversation, _) = w.ingest("chat-crash", "x-1", "first").await;
    eventually("the injected panic", || async {
        (w.h.injected_faults() == 1).then_some(())
    })
    .await;
    // The message was committed and published regardless, and the crashed work (routing) is
    // picked up from the store.
    console
        .next_event("the first message", |e| is_message(e, &first))
        .await;
    w.assigned(conversation.id, op.id).await;

    // The next message and a reply flow through a fresh actor.
    let (second, _, _) = w.ingest("chat-crash", "x-2", "second").await;
    console
        .next_event("the second message", |e| is_message(e, &second))
        .await;
    let reply =
        w.h.send_reply(
            w.client,
            conversation.id,
            op.id,
            "still here".into(),
            "after-crash".into(),
        )
        .await
        .unwrap();
    console
        .next_event("sent", |e| is_status(e, &reply, "sent"))
        .await;
    assert_eq!(w.receiver.requests().len(), 1);

    // The crash stayed inside the conversation actor.
    let health = w.h.health();
    let client = health.client(w.client).unwrap();
    assert_eq!(client.status, ChildStatus::Running);
    assert_eq!(client.restarts, 0);
    assert!(health.is_healthy());
    drop(console);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_once_its_queue_is_full() {
    let w = world(HubConfig {
        session_queue: 4,
        ..config()
    })
    .await;
    let stuck = w.console_with(w.principal(&w.owner), None, true).await;
    let mut healthy = w.console(&w.owner, None).await;

    // One at a time, so that the healthy socket's queue never holds more than one: a burst
    // longer than the queue would cut off even a fast consumer.
    for i in 0..8 {
        let (message, _, _) = w
            .ingest(&format!("chat-slow-{i}"), &format!("s-{i}"), "hi")
            .await;
        healthy
            .next_event("a message on the healthy socket", |e| {
                is_message(e, &message)
            })
            .await;
    }
    // The stuck socket holds one push in `send` and four in its queue; the sixth overflowed.
    eventually("the slow consumer to be closed", || async {
        stuck.closed().filter(|r| *r == CloseReason::SlowConsumer)
    })
    .await;
    // Closing one socket touches nobody else.
    let (message, _, _) = w.ingest("chat-slow-last", "s-last", "hi").await;
    healthy
        .next_event("a message after the close", |e| is_message(e, &message))
        .await;
    assert_eq!(healthy.closed(), None);
    assert_eq!(CloseReason::SlowConsumer.as_str(), "slow_consumer");
    drop(stuck);
    drop(healthy);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_after_last_seq_replays_exactly_the_missed_events() {
    let w = world(config()).await;
    let mut first = w.console(&w.owner, None).await;
    let (m1, _, _) = w.ingest("chat-r", "r-1", "one").await;
    let (m2, _, _) = w.ingest("chat-r", "r-2", "two").await;
    first.next_event("m1", |e| is_message(e, &m1)).await;
    let seen = first.next_event("m2", |e| is_message(e, &m2)).await;
    eventually("the cursor to move", || async {
        (first.handle.last_seq() == seen.seq).then_some(())
    })
    .await;
    let cursor = first.handle.last_seq();
    drop(first);

    // Missed while disconnected.
    let (m3, _, _) = w.ingest("chat-r", "r-3", "three").await;
    let (m4, _, _) = w.ingest("chat-other", "r-4", "four").await;

    let mut second = w.console(&w.owner, Some(cursor)).await;
    // Live, racing the replay.
    let (m5, _, _) = w.ingest("chat-r", "r-5", "five").await;
    let mut got = Vec::new();
    loop {
        let event = second.next_event("the events up to m5", |_| true).await;
        let last = is_message(&event, &m5);
        got.push(event);
        if last {
            break;
        }
    }
    got.extend(second.events_until_quiet(Duration::from_millis(300)).await);

    // Exactly what the store holds after the cursor (the owner may see all of it), in order,
    // none repeated: the missed m3 and m4, then m5.
    let seqs: Vec<i64> = got.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = w
        .store
        .events_after(w.client, cursor, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, expected);
    for (message, wanted) in [
        (&m1, false),
        (&m2, false),
        (&m3, true),
        (&m4, true),
        (&m5, true),
    ] {
        assert_eq!(
            got.iter().any(|e| is_message(e, message)),
            wanted,
            "{}",
            message.text
        );
    }
    drop(second);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_conversation_is_reopened_once_by_its_task() {
    let w = world(config()).await;
    let op = w.operator("operator", 5, true).await;
    let (_, conversation, _) = w.ingest("chat-snooze", "z-1", "later please").await;
    w.assigned(conversation.id, op.id).await;

    let past = ConversationPatch {
        status: Some(ConversationStatus::Snoozed),
        snoozed_until: Some(Some(Utc::now() - chrono::Duration::minutes(1))),
        ..ConversationPatch::default()
    };
    let err =
        w.h.update_conversation(w.client, conversation.id, past)
            .await
            .unwrap_err();
    assert!(matches!(err, HubError::Invalid(_)), "{err:?}");

    let until = Utc::now() + chrono::Duration::milliseconds(700);
    let snooze = ConversationPatch {
        status: Some(ConversationStatus::Snoozed),
        snoozed_until: Some(Some(until)),
        ..ConversationPatch::default()
    };
    let before = w.store.last_event_seq().await.unwrap();
    for _ in 0..2 {
        // Snoozing twice to the same time schedules one task.
        let snoozed =
            w.h.update_conversation(w.client, conversation.id, snooze.clone())
                .await
                .unwrap();
        assert_eq!(snoozed.status, ConversationStatus::Snoozed);
    }
    let woken = eventually("the conversation to wake up", || async {
        let c = w.conversation(conversation.id).await;
        (c.status == ConversationStatus::Open).then_some(c)
    })
    .await;
    assert!(Utc::now() >= until);
    assert_eq!(woken.snoozed_until, None);
    assert_eq!(woken.assignee_id, Some(op.id));

    // Give a second firing every chance to happen, then count the reopenings.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reopened = w
        .store
        .events_after(w.client, before, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::ConversationUpdated && e.payload["status"] == "open")
        .count();
    assert_eq!(reopened, 1);
    // Nothing is left to fire, however late another node looks.
    let far = Utc::now() + chrono::Duration::days(1);
    let left = w
        .store
        .claim_due_tasks("probe", far, far + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_after_retry_after_and_sent_once() {
    let w = world(config()).await;
    let op = w.operator("operator", 5, true).await;
    let (_, conversation, _) = w.ingest("chat-503", "t-1", "hello").await;
    w.receiver
        .then_reply(503, vec![("retry-after", "1".into())], "busy");
    let reply =
        w.h.send_reply(
            w.client,
            conversation.id,
            op.id,
            "answer".into(),
            "key-503".into(),
        )
        .await
        .unwrap();
    let sent = eventually("the reply to be sent", || async {
        w.messages(conversation.id)
            .await
            .into_iter()
            .find(|m| m.id == reply.id && m.status == DeliveryStatus::Sent)
    })
    .await;
    assert_eq!(sent.failure_reason, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = w.receiver.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.headers["idempotency-key"] == "key-503")
    );
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_marks_the_message_failed_with_the_reason() {
    let w = world(config()).await;
    let op = w.operator("operator", 5, true).await;
    let (_, conversation, _) = w.ingest("chat-400", "f-1", "hello").await;
    w.receiver
        .then_reply(400, vec![], r#"{"error":"unknown conversation"}"#);
    let reply =
        w.h.send_reply(
            w.client,
            conversation.id,
            op.id,
            "answer".into(),
            "key-400".into(),
        )
        .await
        .unwrap();
    let failed = eventually("the reply to fail", || async {
        w.messages(conversation.id)
            .await
            .into_iter()
            .find(|m| m.id == reply.id && m.status == DeliveryStatus::Failed)
    })
    .await;
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("HTTP 400: unknown conversation")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.receiver.requests().len(), 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_crashing_is_given_up_on_alone() {
    let w = world(config()).await;
    let doomed = w.store.create_client("Doomed", None).await.unwrap();
    w.h.inject_client_crash_loop(doomed.id);
    let event = InboundEvent {
        attachments: Vec::new(),
        client_id: doomed.id,
        channel_id: ChannelId::new(),
        external_conversation_id: "x".into(),
        external_user_id: "x".into(),
        contact_name: "x".into(),
        provider_event_id: "x".into(),
        text: "x".into(),
    };
    let err = w.h.ingest(event).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable), "{err:?}");
    let health = w.h.health();
    let failed = health.client(doomed.id).unwrap();
    assert_eq!(failed.status, ChildStatus::Failed);
    assert!(failed.last_failure.as_deref().unwrap().contains("injected"));
    assert_eq!(health.failed_clients().count(), 1);
    // Given up on means answered at once from now on.
    let started = Instant::now();
    let err =
        w.h.set_operator(doomed.id, UserId::new(), None, None, None)
            .await
            .unwrap_err();
    assert!(matches!(err, HubError::Unavailable));
    assert!(started.elapsed() < Duration::from_secs(1));

    // The other client is untouched, and the node stays healthy.
    let (message, _, _) = w.ingest("chat-fine", "ok-1", "all good").await;
    assert_eq!(message.text, "all good");
    let health = w.h.health();
    assert!(health.is_healthy());
    assert_eq!(
        health.client(w.client).unwrap().status,
        ChildStatus::Running
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_hub_closes_sessions_and_refuses_further_calls() {
    let w = world(config()).await;
    let console = w.console(&w.owner, None).await;
    w.hub.stop().await;
    // Idempotent.
    w.hub.stop().await;
    eventually("the session to be closed", || async {
        console.closed().filter(|r| *r == CloseReason::Shutdown)
    })
    .await;
    let err = w.h.ingest(w.inbound("chat", "e", "t")).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consoles_see_only_what_their_principal_may_see() {
    let w = world(config()).await;
    let a = w.operator("alice", 5, true).await;
    // Bob reads the channel too but has no free slot, so the conversation goes to Alice.
    let b = w.operator("bob", 0, true).await;
    let mut alice = w.console(&a, None).await;
    let mut bob = w.console(&b, None).await;
    let mut owner = w.console(&w.owner, None).await;

    let (m1, conversation, _) = w.ingest("chat-v", "v-1", "one").await;
    w.assigned(conversation.id, a.id).await;
    let (m2, _, _) = w.ingest("chat-v", "v-2", "two").await;
    for console in [&mut alice, &mut owner] {
        console.next_event("m1", |e| is_message(e, &m1)).await;
        // Those who still see it get the assignment itself, naming where it was before.
        let assignment = console
            .next_event("the assignment", |e| e.assignee_id == Some(a.id))
            .await;
        let before = assignment.previous_scope().expect("the scope before");
        assert_eq!((before.assignee_id, before.group_id), (None, None));
        console.next_event("m2", |e| is_message(e, &m2)).await;
    }
    // Unassigned in no group, m1 was everyone's to see; once Alice holds the conversation,
    // Bob (without the all-conversations right) is told to let it go, and sees nothing more.
    let bobs = bob.pushes_until_quiet(Duration::from_millis(300)).await;
    let [
        ServerPush::Event(first),
        ServerPush::Hidden {
            conversation_id: hidden,
            seq,
        },
    ] = &bobs[..]
    else {
        panic!("{bobs:?}");
    };
    assert!(is_message(first, &m1));
    assert_eq!(*hidden, conversation.id);
    assert!(*seq > first.seq);

    // Typing reaches those who may see the conversation, never the typist.
    let scope = omnihub_actors::ConversationScopeWithId {
        conversation_id: conversation.id,
        scope: omnihub_core::access::ConversationScope {
            channel_id: w.channel.id,
            assignee_id: Some(a.id),
            group_id: None,
        },
    };
    w.h.typing(w.client, scope, a.id);
    let typing = owner
        .next_push("typing", |p| matches!(p, ServerPush::Typing { .. }))
        .await;
    let ServerPush::Typing {
        conversation_id,
        user_id,
    } = typing
    else {
        unreachable!()
    };
    assert_eq!((conversation_id, user_id), (conversation.id, a.id));

    // Presence reaches every console of the client.
    w.h.set_operator(w.client, b.id, None, None, Some(Presence::Away))
        .await
        .unwrap();
    for console in [&mut alice, &mut bob, &mut owner] {
        console
            .next_push("presence", |p| {
                matches!(p, ServerPush::Presence { user_id, presence: Presence::Away } if *user_id == b.id)
            })
            .await;
    }
    assert!(
        !alice
            .pushes_until_quiet(Duration::from_millis(200))
            .await
            .iter()
            .any(|p| matches!(p, ServerPush::Typing { .. }))
    );
    assert!(
        !bob.pushes_until_quiet(Duration::from_millis(200))
            .await
            .iter()
            .any(|p| matches!(p, ServerPush::Typing { .. }))
    );

    // A read mark is an event like any other.
    w.h.mark_read(w.client, conversation.id, a.id, m2.id)
        .await
        .unwrap();
    alice
        .next_event("the read mark", |e| e.kind == EventKind::ReadMark)
        .await;

    // Rights revoked: Alice's console sees nothing more.
    let mut revoked = (*w.principal(&a)).clone();
    revoked.channels.clear();
    alice.handle.update_principal(Arc::new(revoked));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (m3, _, _) = w.ingest("chat-v", "v-3", "three").await;
    owner.next_event("m3", |e| is_message(e, &m3)).await;
    assert!(
        alice
            .events_until_quiet(Duration::from_millis(300))
            .await
            .is_empty()
    );
    alice.handle.close(CloseReason::Revoked);
    eventually("alice's socket to be closed", || async {
        alice.closed().filter(|r| *r == CloseReason::Revoked)
    })
    .await;
    drop((alice, bob, owner));
    w.stop().await;
}
