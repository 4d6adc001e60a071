//! Supervision: how a child is described ([`ChildSpec`], built with [`supervised`]) and the
//! root supervisor that starts its children, restarts them after failures under a
//! [`RestartPolicy`], and publishes what it sees as [`HubHealth`].
//!
//! The root's children are the node-wide actors (janitor, scheduler, event listener) plus one
//! supervisor per client, added on the client's first use and kept; each client subtree is a
//! child like any other, with its own copy of the policy, so a client that keeps crashing is
//! given up on alone.
//!
//! ractor's own default reaction to a child's exit is to stop the supervisor too; every
//! supervisor here overrides `handle_supervisor_evt` so that one child's failure stays that
//! child's problem.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use omnihub_core::ClientId;

use ractor::SupervisionEvent;
use ractor::concurrency::JoinHandle;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SpawnErr,
};
use tokio::sync::watch;

use crate::client::ClientSup;
use crate::health::{ChildHealth, ChildStatus, HubHealth};
use crate::hub::HubError;
use crate::restart::{Decision, RestartPolicy};
use crate::shared::{ClientCtx, ClientEntry, Shared};

/// How long a stopping supervisor lets its children finish their current message and run
/// their `post_stop` before ractor kills whatever is left.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub(crate) type SpawnFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send + 'a>>;

/// Everything a supervisor needs to (re)start one child: a fresh actor each time, since a
/// failed actor's state is suspect and ractor actors cannot be started twice anyway.
pub(crate) trait ChildSpec: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Starts a new instance linked to `supervisor`, so its exit reaches the supervisor as a
    /// supervision event.
    fn spawn(&self, supervisor: ActorCell) -> SpawnFuture<'_>;
}

/// A child made by calling `make` for every start. Every child of every supervisor goes
/// through here, so the way children are linked and named is decided in one place.
pub(crate) fn supervised<A, F>(name: impl Into<String>, make: F) -> Box<dyn ChildSpec>
where
    A: Actor,
    F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
{
    Box::new(ActorChild {
        name: name.into(),
        make,
        _actor: PhantomData,
    })
}

struct ActorChild<A, F> {
    name: String,
    make: F,
    _actor: PhantomData<fn() -> A>,
}

impl<A, F> ChildSpec for ActorChild<A, F>
where
    A: Actor,
    F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn spawn(&self, supervisor: ActorCell) -> SpawnFuture<'_> {
        let (actor, args) = (self.make)();
        Box::pin(async move {
            // No registry name: names are process-global in ractor, and two hubs (tests, or a
            // restart racing the old instance's cleanup) would collide on them.
            let (actor_ref, _join) = A::spawn_linked(None, actor, args, supervisor).await?;
            Ok(actor_ref.get_cell())
        })
    }
}

/// The root of the tree.
pub(crate) struct Root;

pub(crate) struct RootArgs {
    pub children: Vec<Box<dyn ChildSpec>>,
    /// The template each child's own policy is cloned from.
    pub policy: RestartPolicy,
    pub health: watch::Sender<HubHealth>,
    pub shared: Arc<Shared>,
}

pub(crate) enum RootMsg {
    /// The back-off of the child at this index is over: start it again.
    Restart(usize),
    /// Start this client's subtree unless it exists; answers once the first start was tried
    /// (its outcome is in the client's entry), or with `Unavailable` when the store cannot
    /// say where the client's publishing starts.
    EnsureClient(ClientId, RpcReplyPort<Result<(), HubError>>),
}

pub(crate) struct RootState {
    slots: Vec<Slot>,
    health: watch::Sender<HubHealth>,
    shared: Arc<Shared>,
    /// Which slot holds which client's subtree.
    clients: HashMap<ClientId, usize>,
    /// The template every client subtree's own policy is cloned from.
    policy: RestartPolicy,
}

struct Slot {
    spec: Box<dyn ChildSpec>,
    policy: RestartPolicy,
    /// The running instance; supervision events about any other id are stale and ignored.
    running: Option<ActorId>,
    /// The pending restart timer, aborted when the root stops.
    pending: Option<JoinHandle<Result<(), MessagingErr<RootMsg>>>>,
    health: ChildHealth,
    /// Set for a client subtree: its status is mirrored there for the hub's callers.
    client: Option<Arc<ClientEntry>>,
}

impl Slot {
    fn new(
        spec: Box<dyn ChildSpec>,
        policy: RestartPolicy,
        client: Option<Arc<ClientEntry>>,
    ) -> Slot {
        Slot {
            health: ChildHealth {
                name: spec.name().to_string(),
                status: ChildStatus::Restarting,
                restarts: 0,
                last_failure: None,
            },
            spec,
            policy,
            running: None,
            pending: None,
            client,
        }
    }

    /// Mirrors the slot's health into the client's entry, if it is a client's.
    fn sync(&self) {
        if let Some(entry) = &self.client {
            entry.record(
                self.health.status,
                self.health.restarts,
                self.health.last_failure.as_deref(),
            );
        }
    }
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let slots = args
            .children
            .into_iter()
            .map(|spec| Slot::new(spec, args.policy.clone(), None))
            .collect();
        let mut state = RootState {
            slots,
            health: args.health,
            shared: args.shared,
            clients: HashMap::new(),
            policy: args.policy,
        };
        // Children start here rather than in post_start so that `Hub::start` returns with
        // them already up. Linking to a supervisor that is still starting is allowed, and
        // their supervision events wait in the root's mailbox until it runs.
        for index in 0..state.slots.len() {
            start_child(&myself, &mut state, index).await;
        }
        publish(&state);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Restart(index) => {
                let Some(slot) = state.slots.get_mut(index) else {
                    return Ok(());
                };
                // A timer can only be outstanding for a child that is down and waiting.
                if slot.health.status != ChildStatus::Restarting || slot.running.is_some() {
                    return Ok(());
                }
                slot.pending = None;
                slot.health.restarts = slot.health.restarts.saturating_add(1);
                tracing::info!(
                    child = %slot.health.name,
                    restarts = slot.health.restarts,
                    "restarting child"
                );
                start_child(&myself, state, index).await;
                publish(state);
            }
            RootMsg::EnsureClient(client, reply) => {
                if !state.clients.contains_key(&client) {
                    // Where this node starts publishing the client's events: the store's end
                    // now, before anything of the client's goes through this node (its
                    // sessions replay anything older themselves). Read here, once, so that
                    // (re)starting the subtree never needs the database: an outage cannot
                    // make a client crash-loop into being given up on.
                    let start = match state.shared.store.last_event_seq().await {
                        Ok(seq) => seq,
                        Err(err) => {
                            tracing::warn!(%client, error = %err, "cannot start client subtree");
                            let _ = reply.send(Err(HubError::Unavailable));
                            return Ok(());
                        }
                    };
                    let entry = state.shared.insert_entry(client);
                    entry.init_published(start);
                    let ctx = ClientCtx {
                        shared: state.shared.clone(),
                        entry: entry.clone(),
                    };
                    let spec =
                        supervised(format!("client {client}"), move || (ClientSup, ctx.clone()));
                    let index = state.slots.len();
                    state
                        .slots
                        .push(Slot::new(spec, state.policy.clone(), Some(entry)));
                    state.clients.insert(client, index);
                    tracing::info!(%client, "starting client subtree");
                    start_child(&myself, state, index).await;
                }
                let _ = reply.send(Ok(()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        // Panics and handler errors both arrive as ActorFailed; ractor has already caught the
        // panic, so all that is left to do is decide about a restart.
        let (id, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), format!("failed: {err}")),
            // Children are meant to run until the tree stops, so any other exit is treated
            // like a failure; otherwise a child that quietly returned would vanish for good.
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell.get_id(),
                format!(
                    "stopped: {}",
                    reason.as_deref().unwrap_or("no reason given")
                ),
            ),
            _ => return Ok(()),
        };
        let Some(index) = state.slots.iter().position(|s| s.running == Some(id)) else {
            return Ok(());
        };
        child_down(&myself, &mut state.slots[index], index, reason);
        publish(state);
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        for slot in &mut state.slots {
            if let Some(timer) = slot.pending.take() {
                timer.abort();
            }
            // Callers stop finding the client's actors at once.
            if let Some(entry) = &slot.client {
                entry.set_refs(None);
            }
        }
        // Stop children gracefully so they get their post_stop; ractor kills any that are
        // still running once the root itself is gone.
        myself
            .stop_children_and_wait(Some("hub stopping".to_string()), Some(STOP_GRACE))
            .await;
        Ok(())
    }
}

async fn start_child(myself: &ActorRef<RootMsg>, state: &mut RootState, index: usize) {
    let Some(slot) = state.slots.get_mut(index) else {
        return;
    };
    // Awaiting the start inside the root's handler keeps it simple: children do nothing slow
    // in pre_start, so the root is not held up.
    match slot.spec.spawn(myself.get_cell()).await {
        Ok(cell) => {
            slot.running = Some(cell.get_id());
            slot.health.status = ChildStatus::Running;
            slot.sync();
        }
        Err(err) => child_down(myself, slot, index, format!("start failed: {err}")),
    }
}

fn child_down(myself: &ActorRef<RootMsg>, slot: &mut Slot, index: usize, reason: String) {
    slot.running = None;
    match slot.policy.on_failure(Instant::now()) {
        Decision::RestartAfter(delay) => {
            tracing::warn!(
                child = %slot.health.name,
                %reason,
                backoff_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "child went down; restarting after back-off"
            );
            slot.health.status = ChildStatus::Restarting;
            slot.pending = Some(myself.send_after(delay, move || RootMsg::Restart(index)));
        }
        Decision::GiveUp => {
            tracing::error!(
                child = %slot.health.name,
                %reason,
                restarts = slot.health.restarts,
                "child failed too often; giving up on it"
            );
            slot.health.status = ChildStatus::Failed;
        }
    }
    slot.health.last_failure = Some(reason);
    slot.sync();
}

fn publish(state: &RootState) {
    // send_replace, not send: it stores the value even when no one is watching.
    state.health.send_replace(HubHealth {
        root_running: true,
        children: state
            .slots
            .iter()
            .filter(|s| s.client.is_none())
            .map(|s| s.health.clone())
            .collect(),
        // Clients report through their entries (see `Shared::health`).
        clients: Vec::new(),
    });
}
