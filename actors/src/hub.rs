//! [`Hub`] starts, inspects and stops the tree; [`HubHandle`] is how the rest of omnihub (the
//! HTTP and WebSocket layer, the sandbox, the bench) talks to it. Everything here is plain
//! data and async functions: ractor's types stay inside the crate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use omnihub_connectors::media_link::MediaLinks;
use omnihub_core::access::{ConversationScope, Principal};
use omnihub_core::events::HubEvent;
use omnihub_core::model::{Conversation, DeliveryStatus, Message, MessageKind};
use omnihub_core::routing::Presence;
use omnihub_core::triggers::SocialItem;
use omnihub_core::{AttachmentId, ChannelId, ClientId, ConversationId, MessageId, UserId};
use omnihub_store::media::MediaStore;
use omnihub_store::{
    ConversationPatch, DynStore, InboundEvent, Ingest, OperatorState, StoreError, Task,
};
use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{ACTIVE_STATES, Actor, ActorRef};
use tokio::sync::watch;

use omnihub_connectors::registry::Endpoints;

use crate::clock::{Clock, SystemClock};
use crate::conversation::ConversationMsg;
use crate::ephemeral::{self, Ephemeral};
use crate::health::HubHealth;
use crate::ingest::IngestQueue;
use crate::janitor::{self, Janitor, JanitorArgs};
use crate::listener::{self, Listener};
use crate::publisher::PublisherMsg;
use crate::restart::RestartPolicy;
use crate::router::RouterMsg;
use crate::scheduler::{self, Scheduler, TaskHandlers};
use crate::session::{self, Audience, SessionControl, SessionLink, SessionStart};
use crate::shared::{CALL_TIMEOUT, ClientCtx, Shared};
use crate::supervisor::{ChildSpec, Root, RootArgs, RootMsg, supervised};

/// How long a delivery status for a provider id not recorded yet waits for it, in steps.
const STATUS_BEFORE_SEND_WAITS: [Duration; 5] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// How often the janitor deletes expired sessions, invites and reset tokens, and prunes
    /// the events log.
    pub janitor_interval: Duration,
    /// How long events are kept for consoles to resume from; `None` keeps them for ever.
    pub events_retention: Option<Duration>,
    /// This node's name when it claims scheduled tasks; unique per process. Default: random.
    pub node_id: String,
    /// Events (and typing/presence pushes) waiting for one console socket; a socket that lets
    /// more pile up is closed with [`CloseReason::SlowConsumer`].
    pub session_queue: usize,
    /// The longest the scheduler sleeps between looks for due tasks (it also wakes at the next
    /// task's due time, and when a task is scheduled on this node).
    pub scheduler_tick: Duration,
    /// Where each messenger provider's API lives (the sandbox in the demo and tests).
    pub endpoints: Endpoints,
    /// The scheduler's task kinds handled outside the hub.
    pub task_handlers: TaskHandlers,
    /// Where attachments' bytes are kept; without one, inbound files stay described but are
    /// not downloaded, and replies with files fail.
    pub media: Option<Arc<dyn MediaStore>>,
    /// The largest attachment downloaded from a provider or sent to one, in bytes.
    pub max_attachment_bytes: u64,
    /// Where the scheduler gets the time (and waits for it): the system clock by default, a
    /// [`ManualClock`](crate::ManualClock) in tests.
    pub clock: Arc<dyn Clock>,
    /// How long the scheduler's claim on a task holds: a task its node did not finish (the
    /// node died) is claimed again after this. Longer than the slowest task.
    pub task_lease: Duration,
    /// Mints the signed public links of outgoing files, for providers that fetch media by URL
    /// (Viber); without it such providers refuse files.
    pub media_links: Option<MediaLinks>,
}

/// [`HubConfig::events_retention`] by default: 90 days.
pub const DEFAULT_EVENTS_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// [`HubConfig::max_attachment_bytes`] by default: 50 MiB (Telegram's bots may send up to
/// 50 MB and download up to 20 MB; WhatsApp's largest documents are 100 MB).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 50 * 1024 * 1024;

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            janitor_interval: Duration::from_secs(300),
            events_retention: Some(DEFAULT_EVENTS_RETENTION),
            node_id: format!("node-{}", uuid::Uuid::new_v4().simple()),
            session_queue: 1024,
            scheduler_tick: Duration::from_secs(1),
            endpoints: Endpoints::default(),
            task_handlers: TaskHandlers::default(),
            media: None,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            clock: Arc::new(SystemClock),
            task_lease: Duration::from_secs(60),
            media_links: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid hub configuration: {0}")]
    Config(&'static str),
    /// The root supervisor did not start. Carries ractor's message as text so ractor's types
    /// stay inside this crate.
    #[error("the actor tree did not start: {0}")]
    Start(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client's part of the tree is down (restarting, or given up on after failing too
    /// often), or an actor died while handling the request. Nothing was acknowledged that
    /// is not committed: the caller may retry.
    #[error("the realtime hub is unavailable for this client")]
    Unavailable,
    /// The request breaks a conversation rule (a status change operators may not make, a
    /// snooze time in the past); nothing changed.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Handle to the running tree. Dropping it without [`Hub::stop`] still asks the tree to stop,
/// but does not wait for it.
pub struct Hub {
    root: ActorRef<RootMsg>,
    /// Taken by `stop`; still present on drop means nobody waited for the tree.
    join: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    ingest: IngestQueue,
}

impl Hub {
    /// Starts the root supervisor and its children. Call it from the main multi-threaded
    /// runtime, not from inside an actix handler (those run on per-worker single-threaded
    /// runtimes, and the tree would die with that worker).
    pub async fn start(store: DynStore, config: HubConfig) -> Result<Hub, HubError> {
        if config.janitor_interval.is_zero() {
            return Err(HubError::Config("janitor_interval must be above zero"));
        }
        if config.scheduler_tick.is_zero() {
            return Err(HubError::Config("scheduler_tick must be above zero"));
        }
        if config.task_lease.is_zero() {
            return Err(HubError::Config("task_lease must be above zero"));
        }
        if config.session_queue == 0 {
            return Err(HubError::Config("session_queue must be above zero"));
        }
        if config.node_id.trim().is_empty() {
            return Err(HubError::Config("node_id must not be empty"));
        }
        let shared = Arc::new(Shared::new(store.clone(), config.clone()));
        let interval = config.janitor_interval;
        let events_retention = config.events_retention;
        let janitor = supervised(janitor::NAME, move || {
            let args = JanitorArgs {
                store: store.clone(),
                interval,
                events_retention,
            };
            (Janitor, args)
        });
        let for_scheduler = shared.clone();
        let scheduler = supervised(scheduler::NAME, move || (Scheduler, for_scheduler.clone()));
        let for_listener = shared.clone();
        let listener = supervised(listener::NAME, move || (Listener, for_listener.clone()));
        Hub::start_with(
            vec![janitor, scheduler, listener],
            RestartPolicy::default(),
            shared,
        )
        .await
    }

    /// Starts a root over exactly these children; `start` uses it, and tests use it to put
    /// misbehaving children under a real root. Client subtrees get `policy` too.
    pub(crate) async fn start_with(
        children: Vec<Box<dyn ChildSpec>>,
        policy: RestartPolicy,
        shared: Arc<Shared>,
    ) -> Result<Hub, HubError> {
        let (health_tx, health) = watch::channel(HubHealth {
            root_running: false,
            children: Vec::new(),
            clients: Vec::new(),
        });
        shared.set_health(health);
        let args = RootArgs {
            children,
            policy,
            health: health_tx,
            shared: shared.clone(),
        };
        let (root, join) = Actor::spawn(None, Root, args)
            .await
            .map_err(|err| HubError::Start(err.to_string()))?;
        shared.set_root(root.clone());
        tracing::info!(node = %shared.config.node_id, "actor tree started");
        let ingest = IngestQueue::start(shared.store.clone());
        Ok(Hub {
            root,
            join: tokio::sync::Mutex::new(Some(join)),
            shared,
            ingest,
        })
    }

    /// The handle the rest of omnihub calls the hub through; cheap to clone.
    pub fn handle(&self) -> HubHandle {
        HubHandle {
            shared: self.shared.clone(),
            ingest: self.ingest.clone(),
        }
    }

    /// Stops the whole tree and waits until it has stopped: children get a few seconds to
    /// finish their current message, then whatever is left is killed. Open console sessions
    /// are closed with [`CloseReason::Shutdown`]. Calling it again (or concurrently) waits for
    /// the same stop and does nothing more.
    pub async fn stop(&self) {
        let mut join = self.join.lock().await;
        let Some(handle) = join.take() else {
            return;
        };
        self.root.stop(Some("hub stopped".to_string()));
        if let Err(err) = handle.await {
            tracing::warn!(error = %err, "root supervisor task ended abnormally");
        }
        tracing::info!("actor tree stopped");
    }

    /// Which children run, how often each was restarted, which were given up on, and the same
    /// for every client subtree started on this node.
    pub fn health(&self) -> HubHealth {
        self.shared.health()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if self.join.get_mut().is_some() {
            self.root.stop(Some("hub dropped".to_string()));
        }
    }
}

impl Shared {
    pub(crate) fn health(&self) -> HubHealth {
        let mut health = self
            .health_watch()
            .map(|w| w.borrow().clone())
            .unwrap_or(HubHealth {
                root_running: false,
                children: Vec::new(),
                clients: Vec::new(),
            });
        // The root's own liveness comes from ractor, not from the root: a dead root cannot
        // report its own death. "Active" rather than `Running`: ractor returns from spawn
        // before the actor's task has run post_start and flipped it from `Starting`.
        health.root_running = self
            .root()
            .is_some_and(|r| ACTIVE_STATES.contains(&r.get_status()));
        health.clients = self.entries().iter().map(|e| e.health()).collect();
        health
    }
}

/// A conversation's id with what decides who may see it; typing indicators carry it so that
/// each session can filter without asking the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationScopeWithId {
    pub conversation_id: ConversationId,
    pub scope: ConversationScope,
}

/// One server message to a console socket. Not serialisable on purpose: the HTTP layer owns
/// the wire format (`docs/ws-protocol.md`).
#[derive(Clone, Debug)]
pub enum ServerPush {
    Event(Arc<HubEvent>),
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    Presence {
        user_id: UserId,
        presence: Presence,
    },
    /// The customer is typing (a widget visitor); only operators are told.
    ContactTyping {
        conversation_id: ConversationId,
    },
    /// The event `seq` moved a conversation out of the operator's sight (another assignee or
    /// group): the console should let it go. Stands in for that event in the cursor.
    Hidden {
        seq: i64,
        conversation_id: ConversationId,
    },
}

/// Who is typing in a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typist {
    Operator(UserId),
    /// The customer, through a channel that says so (the website widget).
    Contact,
}

/// Why the hub closes a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The socket did not keep up: its queue of `session_queue` pushes filled up.
    SlowConsumer,
    /// The hub (or the client's subtree) is stopping; reconnect and resume.
    Shutdown,
    /// The caller's rights or session were revoked.
    Revoked,
}

impl CloseReason {
    /// The stable code for the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Revoked => "revoked",
        }
    }
}

/// The socket behind a [`SessionSink`] is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the session's socket is closed")]
pub struct SinkClosed;

/// Where a session's pushes go: one console socket. Implemented by the HTTP layer.
#[async_trait]
pub trait SessionSink: Send + Sync + 'static {
    /// Sends one server message. Err means the socket is gone.
    async fn send(&self, message: ServerPush) -> Result<(), SinkClosed>;
    async fn close(&self, reason: CloseReason);
}

/// One open operator session. Dropping it closes the session.
pub struct SessionHandle {
    control: Arc<SessionControl>,
}

impl SessionHandle {
    /// The caller's rights changed: filter from now on with these.
    pub fn update_principal(&self, principal: Arc<Principal>) {
        self.control.set_principal(principal);
    }

    /// Closes the session: the sink is told `reason` and receives nothing more.
    pub fn close(&self, reason: CloseReason) {
        self.control.close(reason);
    }

    /// The seq of the last event the sink accepted (or the cursor the session started from):
    /// what a reconnecting console resumes after.
    pub fn last_seq(&self) -> i64 {
        self.control.last_seq.load(Ordering::Acquire)
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.control.close(CloseReason::Shutdown);
    }
}

/// How the rest of omnihub calls the hub. Cheap to clone; every method may be called from any
/// tokio runtime (actix workers included): actors are only ever started from inside the tree.
#[derive(Clone)]
pub struct HubHandle {
    shared: Arc<Shared>,
    ingest: IngestQueue,
}

impl HubHandle {
    /// Commits the event (grouped with whatever else arrives meanwhile, see `ingest.rs`) and
    /// returns right after the commit (the caller answers the provider 2xx then); a `New` is
    /// then handed to the client's conversation actor (routing, auto-reply) and published.
    /// Consoles get the `New`'s event from the publisher, never from here.
    pub async fn ingest(&self, event: InboundEvent) -> Result<Ingest, HubError> {
        // The subtree first: its publisher must know where it starts before this commit.
        let (entry, refs) = self.shared.client(event.client_id).await?;
        let with_files = !event.attachments.is_empty();
        let ingested = self.ingest.ingest(event, entry, refs).await?;
        if with_files && matches!(ingested, Ingest::New { .. }) {
            // Its files' downloads were scheduled in the same commit.
            self.shared.poke_scheduler();
        }
        Ok(ingested)
    }

    /// Commits a reply as pending (idempotent per key), publishes it, and has the
    /// channel-account actor send it with the key; delivery statuses follow as events.
    pub async fn send_reply(
        &self,
        client: ClientId,
        conversation: ConversationId,
        author: UserId,
        text: String,
        idempotency_key: String,
    ) -> Result<Message, HubError> {
        self.send_reply_with_attachments(
            client,
            conversation,
            author,
            text,
            idempotency_key,
            Vec::new(),
        )
        .await
    }

    /// [`send_reply`](HubHandle::send_reply) carrying uploads of the conversation, in order:
    /// they are linked to the reply in its transaction and sent with it.
    pub async fn send_reply_with_attachments(
        &self,
        client: ClientId,
        conversation: ConversationId,
        author: UserId,
        text: String,
        idempotency_key: String,
        attachments: Vec<AttachmentId>,
    ) -> Result<Message, HubError> {
        self.shared
            .conversation_call(client, conversation, |reply| ConversationMsg::Outbound {
                author: Some(author),
                text,
                idempotency_key,
                kind: MessageKind::Message,
                attachments,
                reply,
            })
            .await
    }

    /// Commits an internal note (never sent to the customer) and publishes it.
    pub async fn add_note(
        &self,
        client: ClientId,
        conversation: ConversationId,
        author: UserId,
        text: String,
        idempotency_key: String,
    ) -> Result<Message, HubError> {
        self.outbound(
            client,
            conversation,
            Some(author),
            text,
            idempotency_key,
            MessageKind::Note,
        )
        .await
    }

    /// Commits a note of the system itself (no author), such as a call-back's attempt and its
    /// outcome, and publishes it. The same key on the same conversation is the same note, so a
    /// provider's redelivered event adds nothing.
    pub async fn add_system_note(
        &self,
        client: ClientId,
        conversation: ConversationId,
        text: String,
        idempotency_key: String,
    ) -> Result<Message, HubError> {
        self.outbound(
            client,
            conversation,
            None,
            text,
            idempotency_key,
            MessageKind::Note,
        )
        .await
    }

    async fn outbound(
        &self,
        client: ClientId,
        conversation: ConversationId,
        author: Option<UserId>,
        text: String,
        idempotency_key: String,
        kind: MessageKind,
    ) -> Result<Message, HubError> {
        self.shared
            .conversation_call(client, conversation, |reply| ConversationMsg::Outbound {
                author,
                text,
                idempotency_key,
                kind,
                attachments: Vec::new(),
                reply,
            })
            .await
    }

    /// Status, snooze, assignment, transfer to a user or group; the router reacts (a freed
    /// slot takes the next queued conversation; a transfer to a group routes within it).
    pub async fn update_conversation(
        &self,
        client: ClientId,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> Result<Conversation, HubError> {
        self.shared
            .conversation_call(client, id, |reply| ConversationMsg::Update {
                patch: Box::new(patch),
                reply,
            })
            .await
    }

    pub async fn mark_read(
        &self,
        client: ClientId,
        id: ConversationId,
        user: UserId,
        up_to: MessageId,
    ) -> Result<(), HubError> {
        let (entry, _) = self.shared.client(client).await?;
        self.shared.store.mark_read(client, id, user, up_to).await?;
        entry.wake();
        Ok(())
    }

    /// Tags a conversation; consoles are told at once.
    pub async fn add_tag(
        &self,
        client: ClientId,
        id: ConversationId,
        tag: &str,
    ) -> Result<Conversation, HubError> {
        let (entry, _) = self.shared.client(client).await?;
        let (conversation, _) = self.shared.store.add_tag(client, id, tag).await?;
        entry.wake();
        Ok(conversation)
    }

    /// Removes a tag; consoles are told at once.
    pub async fn remove_tag(
        &self,
        client: ClientId,
        id: ConversationId,
        tag: &str,
    ) -> Result<Conversation, HubError> {
        let (entry, _) = self.shared.client(client).await?;
        let (conversation, _) = self.shared.store.remove_tag(client, id, tag).await?;
        entry.wake();
        Ok(conversation)
    }

    /// Presence / capacity / no-new-chats; the router reacts (an operator coming online takes
    /// queued conversations).
    pub async fn set_operator(
        &self,
        client: ClientId,
        user: UserId,
        capacity: Option<u32>,
        accepting_new: Option<bool>,
        presence: Option<Presence>,
    ) -> Result<OperatorState, HubError> {
        let (entry, refs) = self.shared.client(client).await?;
        let state = self
            .shared
            .store
            .set_operator(client, user, capacity, accepting_new, presence)
            .await?;
        let _ = refs.router.cast(RouterMsg::ForgetReaders);
        entry.request_drain();
        if let Some(presence) = presence {
            ephemeral::publish(
                &self.shared,
                client,
                Ephemeral::Presence {
                    user_id: user,
                    presence,
                },
            );
        }
        Ok(state)
    }

    /// The provider says the customer of this conversation (by the provider's id) blocked the
    /// bot or unsubscribed: the conversation is marked so, and replies fail fast until the
    /// customer writes again. Nothing happens for a conversation omnihub does not have.
    pub async fn customer_blocked(
        &self,
        client: ClientId,
        channel: ChannelId,
        external_conversation: &str,
        reason: &str,
    ) -> Result<(), HubError> {
        let (entry, _) = self.shared.client(client).await?;
        let store = &self.shared.store;
        let Some(conversation) = store
            .conversation_by_external_id(client, channel, external_conversation)
            .await?
        else {
            return Ok(());
        };
        let (_, event) = store
            .set_blocked(client, conversation, Some(reason))
            .await?;
        if event.is_some() {
            entry.wake();
        }
        Ok(())
    }

    /// The provider says the customer of this conversation unblocked the bot: the mark goes,
    /// and replies are sent again. Nothing happens for a conversation omnihub does not have or
    /// that is not blocked.
    pub async fn customer_unblocked(
        &self,
        client: ClientId,
        channel: ChannelId,
        external_conversation: &str,
    ) -> Result<(), HubError> {
        let (entry, _) = self.shared.client(client).await?;
        let store = &self.shared.store;
        let Some(conversation) = store
            .conversation_by_external_id(client, channel, external_conversation)
            .await?
        else {
            return Ok(());
        };
        let (_, event) = store.set_blocked(client, conversation, None).await?;
        if event.is_some() {
            entry.wake();
        }
        Ok(())
    }

    /// Provider delivery callbacks (by the provider's message id).
    pub async fn delivery_status(
        &self,
        client: ClientId,
        channel: ChannelId,
        provider_message_id: String,
        status: DeliveryStatus,
        reason: Option<String>,
    ) -> Result<(), HubError> {
        let (entry, _) = self.shared.client(client).await?;
        let store = &self.shared.store;
        // A provider may report a status before the channel actor has recorded the id its
        // send was answered with: that id is moments away, so it is looked for a little longer
        // before the status is refused as unknown.
        let mut waits = STATUS_BEFORE_SEND_WAITS.iter();
        let message = loop {
            match store
                .message_by_provider_id(client, channel, &provider_message_id)
                .await
            {
                Err(StoreError::NotFound) => match waits.next() {
                    Some(wait) => tokio::time::sleep(*wait).await,
                    None => return Err(StoreError::NotFound.into()),
                },
                found => break found?,
            }
        };
        let (_, event) = store
            .set_delivery(client, message.id, status, reason.as_deref(), None)
            .await?;
        if event.is_some() {
            entry.wake();
        }
        Ok(())
    }

    /// Ephemeral: typing indicators are published to the sessions of every node that may see
    /// the conversation (not to the typist's own), and not stored.
    pub fn typing(&self, client: ClientId, conversation: ConversationScopeWithId, user: UserId) {
        let push = Ephemeral::typing(&conversation, Typist::Operator(user));
        ephemeral::publish(&self.shared, client, push);
    }

    /// Opens an operator-session actor for one console socket: it replays stored events after
    /// `resume_after` (when given) that `may_see` allows, then forwards live ones, in seq
    /// order, never repeating one; its queue holds `session_queue` pushes, and a consumer that
    /// falls behind is closed with [`CloseReason::SlowConsumer`]. The principal must belong to
    /// a client (platform staff have no console stream): otherwise `Store(NotFound)`.
    pub async fn open_session(
        &self,
        principal: Arc<Principal>,
        sink: Arc<dyn SessionSink>,
        resume_after: Option<i64>,
    ) -> Result<SessionHandle, HubError> {
        let client = principal
            .client_id
            .ok_or(HubError::Store(StoreError::NotFound))?;
        let audience = Audience::Operator(principal);
        self.start_session(client, audience, sink, resume_after)
            .await
    }

    /// Opens a session for one widget visitor's socket: the messages (not notes) and delivery
    /// statuses of the conversation of `channel` whose external id is `external_id` (the
    /// visitor's; it may not exist yet), and operators typing in it; replayed after
    /// `resume_after` when given, then live, like an operator session.
    pub async fn open_visitor_session(
        &self,
        client: ClientId,
        channel: ChannelId,
        external_id: String,
        sink: Arc<dyn SessionSink>,
        resume_after: Option<i64>,
    ) -> Result<SessionHandle, HubError> {
        let conversation = self
            .shared
            .store
            .conversation_by_external_id(client, channel, &external_id)
            .await?;
        let audience = Audience::Visitor {
            channel,
            external_id,
            conversation,
        };
        self.start_session(client, audience, sink, resume_after)
            .await
    }

    /// The customer is typing (a widget visitor): the operators of every node who may see the
    /// conversation are told; not stored.
    pub fn contact_typing(&self, client: ClientId, conversation: ConversationScopeWithId) {
        let push = Ephemeral::typing(&conversation, Typist::Contact);
        ephemeral::publish(&self.shared, client, push);
    }

    /// A delivery or read receipt for an outbound message, by its own id (the widget's visitor
    /// sockets, which saw the message); moves forward only and is published.
    pub async fn message_receipt(
        &self,
        client: ClientId,
        message: MessageId,
        status: DeliveryStatus,
    ) -> Result<(), HubError> {
        let (entry, _) = self.shared.client(client).await?;
        let (_, event) = self
            .shared
            .store
            .set_delivery(client, message, status, None, None)
            .await?;
        if event.is_some() {
            entry.wake();
        }
        Ok(())
    }

    async fn start_session(
        &self,
        client: ClientId,
        audience: Audience,
        sink: Arc<dyn SessionSink>,
        resume_after: Option<i64>,
    ) -> Result<SessionHandle, HubError> {
        let (entry, refs) = self.shared.client(client).await?;
        let control = Arc::new(SessionControl::new(
            audience,
            resume_after,
            self.shared.config.session_queue,
        ));
        let link = SessionLink(control.clone());
        // Subscribed before this returns, so every event committed after it reaches the
        // session. Subscribe first, replay second (in the session's task): every event after
        // `published` comes live, and every event up to it is committed, so the replay sees
        // it. Together they miss nothing.
        let published = match refs
            .publisher
            .call(
                |reply| PublisherMsg::Subscribe(link, reply),
                Some(CALL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(seq)) => seq,
            _ => return Err(HubError::Unavailable),
        };
        let ctx = ClientCtx {
            shared: self.shared.clone(),
            entry,
        };
        let start = SessionStart {
            published,
            resume_after,
        };
        tokio::spawn(session::run(ctx, control.clone(), sink, start));
        Ok(SessionHandle { control })
    }

    pub fn health(&self) -> HubHealth {
        self.shared.health()
    }

    /// Triggered tasks: social ingestion calls this with every new post or comment it
    /// committed. Schedules one task per rule of the client that matches the item (see
    /// `omnihub_core::triggers`), due now, with an id made of the rule's and the item's, and
    /// answers them; an item delivered again answers the same tasks and schedules nothing.
    pub async fn social_item_arrived(&self, item: &SocialItem) -> Result<Vec<Task>, HubError> {
        crate::triggers::evaluate(&self.shared, item).await
    }

    /// Wakes this node's scheduler to look for due tasks now: after a task was scheduled,
    /// rescheduled or retried through the store.
    pub fn poke_scheduler(&self) {
        self.shared.poke_scheduler();
    }

    /// The time by the scheduler's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.config.clock.now()
    }

    /// Test hook: the next inbound message of this client makes its conversation actor panic
    /// (after the commit, before routing), as a crash mid-work would.
    #[doc(hidden)]
    pub fn inject_panic_on_next_inbound(&self, client: ClientId) {
        self.shared.hooks.arm_inbound_panic(client);
    }

    /// Test hook: this client's publisher fails at every start from now on (and crashes now if
    /// it runs), so the client's subtree crash-loops until it is given up on.
    #[doc(hidden)]
    pub fn inject_client_crash_loop(&self, client: ClientId) {
        self.shared.hooks.arm_client_crash(client);
        if let Some(entry) = self.shared.entry(client) {
            entry.wake();
        }
    }

    /// Test hook: how many injected faults have fired.
    #[doc(hidden)]
    pub fn injected_faults(&self) -> usize {
        self.shared.hooks.fired()
    }
}
