//! Group commit of inbound events. Callers of [`HubHandle::ingest`](crate::HubHandle::ingest)
//! queue their event and wait; one task takes whatever has queued meanwhile (up to
//! [`MAX_BATCH`]), commits it in one transaction (`store.ingest_batch`), and answers each
//! caller with its own outcome. At low load a batch is one event and nothing waits for company;
//! under load a transaction's fixed cost (the writer's turn, `BEGIN`, the commit) is shared by
//! the batch, which is what lets one SQLite writer keep up with many webhooks.
//!
//! Acknowledged still means committed: a caller hears of its event only after the batch's
//! commit. Should the batch's transaction itself fail, its events are tried again one by one,
//! so each caller gets its own error (or success) and none is blamed for another's.

use std::sync::Arc;

use omnihub_store::{DynStore, InboundEvent, Ingest};
use tokio::sync::{mpsc, oneshot};

use crate::client::ClientMsg;
use crate::conversation::{ConversationMsg, wants_routing};
use crate::hub::HubError;
use crate::shared::{ClientEntry, ClientRefs};

/// Events committed in one transaction at most. Under load a batch is what queued during the
/// previous commit, so a cap below what busy senders keep in flight only makes the rest wait a
/// whole commit more; and the transaction's fixed cost is shared by more events. A batch of
/// this size still takes a few tens of milliseconds.
pub(crate) const MAX_BATCH: usize = 512;

/// Events waiting for the committing task at most; a caller beyond it waits for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// One caller's event and who waits for it.
struct Job {
    event: InboundEvent,
    waiter: Waiter,
}

/// The client subtree an event was resolved to before queueing (so the subtree's publisher
/// knows where it starts before this commit), and where to answer.
struct Waiter {
    entry: Arc<ClientEntry>,
    refs: ClientRefs,
    reply: oneshot::Sender<Result<Ingest, HubError>>,
}

/// The queue in front of the committing task; cheap to clone. The task ends when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct IngestQueue {
    jobs: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Spawns the committing task on the current runtime.
    pub fn start(store: DynStore) -> IngestQueue {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(commit_loop(store, queue));
        IngestQueue { jobs }
    }

    /// Commits `event` with whatever else is queued, then hands a new message to its
    /// conversation actor and wakes the client's publisher.
    pub async fn ingest(
        &self,
        event: InboundEvent,
        entry: Arc<ClientEntry>,
        refs: ClientRefs,
    ) -> Result<Ingest, HubError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            event,
            waiter: Waiter { entry, refs, reply },
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| HubError::Unavailable)?;
        answer.await.map_err(|_| HubError::Unavailable)?
    }
}

async fn commit_loop(store: DynStore, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The events go to the store as they are, not copied.
        let (events, waiters) = batch.drain(..).map(|j| (j.event, j.waiter)).unzip();
        commit(&store, events, waiters).await;
    }
}

async fn commit(store: &DynStore, events: Vec<InboundEvent>, waiters: Vec<Waiter>) {
    let outcomes = match store.ingest_batch(&events).await {
        Ok(outcomes) => outcomes,
        Err(err) => {
            tracing::warn!(error = %err, events = events.len(), "batch ingest failed; one by one");
            let mut outcomes = Vec::with_capacity(events.len());
            for event in &events {
                outcomes.push(store.ingest(event).await);
            }
            outcomes
        }
    };
    for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
        let outcome = outcome.map_err(HubError::from);
        if let Ok(Ingest::New {
            conversation,
            new_request,
            returning_customer,
            waiting,
            ..
        }) = &outcome
        {
            waiter.entry.wake();
            // Only a message that leaves something to route wakes its conversation's actor:
            // under load that is few of them, and each wake-up is two hops on the hub's
            // thread. If this is lost (the subtree is restarting), the router's
            // reconciliation at its start routes every unassigned conversation from the store.
            if wants_routing(conversation, *new_request, *waiting) {
                let _ = waiter.refs.sup.cast(ClientMsg::Conversation(
                    conversation.id,
                    ConversationMsg::Inbound {
                        channel: conversation.channel_id,
                        new_request: new_request.then_some(*returning_customer),
                    },
                ));
            }
        }
        // The caller may have given up (its request was cancelled): the commit stands.
        let _ = waiter.reply.send(outcome);
    }
}
