//! What the hub's handle and its actors share: the store, the configuration, the root's
//! address, and one [`ClientEntry`] per started client — the addresses of that client's
//! publisher, router and supervisor (replaced on every restart), its publishing cursor (kept
//! across restarts), and its health. Lookups here are plain locks held for a moment, so the
//! HTTP layer's calls do not queue behind any actor to find where to go.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use omnihub_core::{ChannelId, ClientId, ConversationId};
use omnihub_store::DynStore;
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use tokio::sync::watch;

use crate::client::ClientMsg;
use crate::conversation::ConversationMsg;
use crate::health::{ChildStatus, ClientHealth, HubHealth};
use crate::hub::{HubConfig, HubError};
use crate::publisher::PublisherMsg;
use crate::router::RouterMsg;
use crate::scheduler::SchedulerMsg;
use crate::supervisor::RootMsg;

/// How long a call into an actor may take before the caller gets `Unavailable`. Generous: it
/// covers store round trips under load, and an actor that died answers at once anyway.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a call waits for a client's subtree that is starting or restarting.
const START_WAIT: Duration = Duration::from_secs(10);

/// `last_published` before the publisher first read the store's position.
pub(crate) const UNKNOWN_SEQ: i64 = i64::MIN;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn write<T>(l: &RwLock<T>, value: T) {
    *l.write().unwrap_or_else(PoisonError::into_inner) = value;
}

/// Attachment downloads in flight at once (a scheduler round runs many tasks side by side).
const DOWNLOADS: usize = 4;

pub(crate) struct Shared {
    pub store: DynStore,
    pub config: HubConfig,
    root: OnceLock<ActorRef<RootMsg>>,
    health: OnceLock<watch::Receiver<HubHealth>>,
    clients: RwLock<HashMap<ClientId, Arc<ClientEntry>>>,
    /// The scheduler's current incarnation, to wake it when a task is scheduled.
    scheduler: Mutex<Option<ActorRef<SchedulerMsg>>>,
    /// Attachment downloads in flight at once: each holds its file in memory.
    pub downloads: tokio::sync::Semaphore,
    pub hooks: Hooks,
}

impl Shared {
    pub fn new(store: DynStore, config: HubConfig) -> Shared {
        Shared {
            store,
            config,
            root: OnceLock::new(),
            health: OnceLock::new(),
            clients: RwLock::new(HashMap::new()),
            scheduler: Mutex::new(None),
            downloads: tokio::sync::Semaphore::new(DOWNLOADS),
            hooks: Hooks::default(),
        }
    }

    pub fn set_root(&self, root: ActorRef<RootMsg>) {
        let _ = self.root.set(root);
    }

    pub fn root(&self) -> Option<&ActorRef<RootMsg>> {
        self.root.get()
    }

    pub fn set_health(&self, health: watch::Receiver<HubHealth>) {
        let _ = self.health.set(health);
    }

    pub fn health_watch(&self) -> Option<&watch::Receiver<HubHealth>> {
        self.health.get()
    }

    pub fn entry(&self, id: ClientId) -> Option<Arc<ClientEntry>> {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub fn entries(&self) -> Vec<Arc<ClientEntry>> {
        let mut all: Vec<_> = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|e| e.id);
        all
    }

    /// Only the root calls this, from its own handler, so two callers never race to create
    /// the same client.
    pub fn insert_entry(&self, id: ClientId) -> Arc<ClientEntry> {
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(id)
            .or_insert_with(|| Arc::new(ClientEntry::new(id)))
            .clone()
    }

    pub fn set_scheduler(&self, scheduler: Option<ActorRef<SchedulerMsg>>) {
        *lock(&self.scheduler) = scheduler;
    }

    pub fn clear_scheduler(&self, id: ractor::ActorId) {
        let mut current = lock(&self.scheduler);
        if current.as_ref().is_some_and(|s| s.get_id() == id) {
            *current = None;
        }
    }

    /// Asks the scheduler to look for due tasks now rather than at its next tick.
    pub fn poke_scheduler(&self) {
        if let Some(s) = lock(&self.scheduler).as_ref() {
            let _ = s.cast(SchedulerMsg::Poke);
        }
    }

    /// The running subtree of a client, started on first use. Waits while it is (re)starting;
    /// `Unavailable` when it was given up on, or the tree is stopping.
    pub async fn client(&self, id: ClientId) -> Result<(Arc<ClientEntry>, ClientRefs), HubError> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            // A stopping or stopped tree takes no more work.
            if !self
                .root
                .get()
                .is_some_and(|r| ractor::ACTIVE_STATES.contains(&r.get_status()))
            {
                return Err(HubError::Unavailable);
            }
            match self.entry(id) {
                Some(entry) => match entry.status() {
                    ChildStatus::Running => {
                        if let Some(refs) = entry.refs() {
                            return Ok((entry, refs));
                        }
                    }
                    ChildStatus::Failed => return Err(HubError::Unavailable),
                    ChildStatus::Restarting => {}
                },
                None => {
                    let root = self.root.get().ok_or(HubError::Unavailable)?;
                    match root
                        .call(|port| RootMsg::EnsureClient(id, port), Some(CALL_TIMEOUT))
                        .await
                    {
                        Ok(CallResult::Success(Ok(()))) => continue,
                        Ok(CallResult::Success(Err(err))) => return Err(err),
                        _ => return Err(HubError::Unavailable),
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(HubError::Unavailable);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends one request to a conversation's actor (through the client's supervisor, which
    /// starts the actor when needed) and waits for its answer.
    pub async fn conversation_call<T: Send + 'static>(
        &self,
        client: ClientId,
        conversation: ConversationId,
        build: impl FnOnce(RpcReplyPort<Result<T, HubError>>) -> ConversationMsg,
    ) -> Result<T, HubError> {
        let (_, refs) = self.client(client).await?;
        match refs
            .sup
            .call(
                |port| ClientMsg::Conversation(conversation, build(port)),
                Some(CALL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(result)) => result,
            // The actor died mid-request (its reply port was dropped) or did not answer.
            _ => Err(HubError::Unavailable),
        }
    }

    /// Reopens a snoozed conversation if it is still snoozed until `until`: the scheduler's
    /// `conversation.unsnooze` task.
    pub async fn unsnooze(
        &self,
        client: ClientId,
        conversation: ConversationId,
        until: DateTime<Utc>,
    ) -> Result<(), HubError> {
        self.conversation_call(client, conversation, |reply| ConversationMsg::Unsnooze {
            until,
            reply,
        })
        .await
    }
}

/// The addresses of one incarnation of a client's subtree.
#[derive(Clone)]
pub(crate) struct ClientRefs {
    pub sup: ActorRef<ClientMsg>,
    pub publisher: ActorRef<PublisherMsg>,
    pub router: ActorRef<RouterMsg>,
}

pub(crate) struct ClientEntry {
    pub id: ClientId,
    status: AtomicU8,
    refs: RwLock<Option<ClientRefs>>,
    /// The highest seq the publisher has broadcast; survives restarts of the subtree, so a new
    /// publisher carries on where the old one stopped.
    pub last_published: AtomicI64,
    /// A wake-up is queued at the publisher: further ones are coalesced into it.
    wake_pending: AtomicBool,
    /// A queue drain is queued at the router: further ones are coalesced into it.
    drain_pending: AtomicBool,
    /// Conversations waiting for the router to look at them, taken all at once.
    routes: Mutex<PendingRoutes>,
    health: Mutex<HealthRecord>,
}

/// Conversations the router is asked to look at, in the order asked, each once.
#[derive(Default)]
pub(crate) struct PendingRoutes {
    order: Vec<ConversationId>,
    new_request: HashMap<ConversationId, Option<bool>>,
    /// A `RouterMsg::RoutePending` is on its way: further requests join it.
    queued: bool,
}

impl PendingRoutes {
    /// Adds a request; true when the router must be told (nothing was pending).
    fn add(&mut self, conversation: ConversationId, new_request: Option<bool>) -> bool {
        match self.new_request.get_mut(&conversation) {
            // A new request's auto-reply must not be lost to a later plain request.
            Some(known) => *known = known.or(new_request),
            None => {
                self.order.push(conversation);
                self.new_request.insert(conversation, new_request);
            }
        }
        !std::mem::replace(&mut self.queued, true)
    }

    /// Everything pending, in order; the next request tells the router again.
    fn take(&mut self) -> Vec<(ConversationId, Option<bool>)> {
        self.queued = false;
        let mut flags = std::mem::take(&mut self.new_request);
        std::mem::take(&mut self.order)
            .into_iter()
            .map(|id| (id, flags.remove(&id).flatten()))
            .collect()
    }
}

#[derive(Default)]
struct HealthRecord {
    restarts: u32,
    last_failure: Option<String>,
    failed_channels: BTreeSet<ChannelId>,
}

const RUNNING: u8 = 0;
const RESTARTING: u8 = 1;
const FAILED: u8 = 2;

impl ClientEntry {
    fn new(id: ClientId) -> ClientEntry {
        ClientEntry {
            id,
            status: AtomicU8::new(RESTARTING),
            refs: RwLock::new(None),
            last_published: AtomicI64::new(UNKNOWN_SEQ),
            wake_pending: AtomicBool::new(false),
            drain_pending: AtomicBool::new(false),
            routes: Mutex::new(PendingRoutes::default()),
            health: Mutex::new(HealthRecord::default()),
        }
    }

    /// Sets where publishing starts, unless it is known already.
    pub fn init_published(&self, seq: i64) {
        let _ = self.last_published.compare_exchange(
            UNKNOWN_SEQ,
            seq,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    pub fn status(&self) -> ChildStatus {
        match self.status.load(Ordering::Acquire) {
            RUNNING => ChildStatus::Running,
            FAILED => ChildStatus::Failed,
            _ => ChildStatus::Restarting,
        }
    }

    /// Called by the root whenever its slot for this client changes.
    pub fn record(&self, status: ChildStatus, restarts: u32, last_failure: Option<&str>) {
        if status != ChildStatus::Running {
            write(&self.refs, None);
        }
        {
            let mut h = lock(&self.health);
            h.restarts = restarts;
            h.last_failure = last_failure.map(str::to_string);
        }
        let code = match status {
            ChildStatus::Running => RUNNING,
            ChildStatus::Restarting => RESTARTING,
            ChildStatus::Failed => FAILED,
        };
        self.status.store(code, Ordering::Release);
    }

    pub fn refs(&self) -> Option<ClientRefs> {
        read(&self.refs)
    }

    /// The client supervisor registers its children here before the root marks it running.
    pub fn set_refs(&self, refs: Option<ClientRefs>) {
        write(&self.refs, refs);
    }

    pub fn set_channel_failed(&self, channel: ChannelId, failed: bool) {
        let mut h = lock(&self.health);
        if failed {
            h.failed_channels.insert(channel);
        } else {
            h.failed_channels.remove(&channel);
        }
    }

    pub fn health(&self) -> ClientHealth {
        let h = lock(&self.health);
        ClientHealth {
            client_id: self.id,
            status: self.status(),
            restarts: h.restarts,
            last_failure: h.last_failure.clone(),
            failed_channels: h.failed_channels.iter().copied().collect(),
        }
    }

    /// Tells the publisher that events were committed. Coalesced: while one wake-up is queued
    /// and not yet taken, further calls send nothing (the publisher reads everything new when
    /// it takes the one queued).
    pub fn wake(&self) {
        let Some(refs) = self.refs() else {
            // The subtree is restarting; its new publisher starts with a read of its own.
            return;
        };
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && refs.publisher.cast(PublisherMsg::Wake).is_err()
        {
            self.wake_pending.store(false, Ordering::Release);
        }
    }

    /// The publisher takes the queued wake-up before it reads, so a commit after this point
    /// queues another.
    pub fn take_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    /// Asks the router to hand queued conversations to whoever can take them; coalesced like
    /// [`ClientEntry::wake`].
    pub fn request_drain(&self) {
        let Some(refs) = self.refs() else {
            return;
        };
        if !self.drain_pending.swap(true, Ordering::AcqRel)
            && refs.router.cast(RouterMsg::Drain).is_err()
        {
            self.drain_pending.store(false, Ordering::Release);
        }
    }

    pub fn take_drain(&self) {
        self.drain_pending.store(false, Ordering::Release);
    }

    /// Asks the router to look at one conversation (route it if it is unassigned; send the
    /// auto-reply of a new request). Requests made while the router is busy are handed to it
    /// together, so a burst of messages costs one read of the routing state, not one each.
    pub fn route(&self, conversation: ConversationId, new_request: Option<bool>) {
        let Some(refs) = self.refs() else {
            // The subtree is restarting; its new router reconciles with the store at start.
            return;
        };
        let mut routes = lock(&self.routes);
        if routes.add(conversation, new_request)
            && refs.router.cast(RouterMsg::RoutePending).is_err()
        {
            routes.queued = false;
        }
    }

    /// The router takes every pending request at once.
    pub fn take_routes(&self) -> Vec<(ConversationId, Option<bool>)> {
        lock(&self.routes).take()
    }

    /// Has the client's channel-account actor send a committed, pending message.
    pub fn send_outbound(&self, channel: ChannelId, message: omnihub_core::model::Message) {
        if let Some(refs) = self.refs() {
            let _ = refs.sup.cast(ClientMsg::Channel(
                channel,
                crate::channel::ChannelMsg::Send(Box::new(message)),
            ));
        }
    }
}

/// What a client's actors get: the shared state and their client's entry.
#[derive(Clone)]
pub(crate) struct ClientCtx {
    pub shared: Arc<Shared>,
    pub entry: Arc<ClientEntry>,
}

impl ClientCtx {
    pub fn id(&self) -> ClientId {
        self.entry.id
    }

    pub fn store(&self) -> &DynStore {
        &self.shared.store
    }
}

/// Fault injection for tests of the tree's recovery. Costs one atomic load per checked point
/// when nothing is armed.
#[derive(Default)]
pub(crate) struct Hooks {
    armed: AtomicBool,
    panic_on_inbound: Mutex<HashSet<ClientId>>,
    crash_clients: Mutex<HashSet<ClientId>>,
    fired: AtomicUsize,
}

impl Hooks {
    pub fn arm_inbound_panic(&self, client: ClientId) {
        lock(&self.panic_on_inbound).insert(client);
        self.armed.store(true, Ordering::Release);
    }

    /// True once per arming: the caller panics.
    pub fn take_inbound_panic(&self, client: ClientId) -> bool {
        let fire =
            self.armed.load(Ordering::Acquire) && lock(&self.panic_on_inbound).remove(&client);
        if fire {
            self.fired.fetch_add(1, Ordering::AcqRel);
        }
        fire
    }

    pub fn arm_client_crash(&self, client: ClientId) {
        lock(&self.crash_clients).insert(client);
        self.armed.store(true, Ordering::Release);
    }

    /// True for every start of an armed client's publisher: the caller fails.
    pub fn client_crashes(&self, client: ClientId) -> bool {
        let fire =
            self.armed.load(Ordering::Acquire) && lock(&self.crash_clients).contains(&client);
        if fire {
            self.fired.fetch_add(1, Ordering::AcqRel);
        }
        fire
    }

    pub fn fired(&self) -> usize {
        self.fired.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod pending_routes_tests {
    use super::*;

    #[test]
    fn requests_coalesce_in_order_and_keep_a_new_request() {
        let (a, b) = (ConversationId::new(), ConversationId::new());
        let mut routes = PendingRoutes::default();
        assert!(routes.add(a, None), "the first request tells the router");
        assert!(!routes.add(b, Some(true)), "later ones join it");
        assert!(!routes.add(a, Some(false)));
        assert!(!routes.add(b, None), "a plain request keeps the auto-reply");
        assert_eq!(routes.take(), vec![(a, Some(false)), (b, Some(true))]);
        assert!(routes.take().is_empty());
        assert!(routes.add(b, None), "after a take the router is told again");
    }
}
