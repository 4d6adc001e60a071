//! The janitor: deletes expired sessions, invites and reset tokens on a fixed interval, so
//! those tables do not grow without bound (lookups already refuse expired rows; this only
//! reclaims the space), and prunes events older than the retention period (a console resuming
//! from before the pruned part starts afresh instead).

use std::time::Duration;

use chrono::Utc;
use omnihub_store::DynStore;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

pub(crate) const NAME: &str = "janitor";

pub(crate) struct Janitor;

/// Events pruned per statement, so a large backlog never holds the write lock for long.
const PRUNE_BATCH: u32 = 5_000;
/// Batches per sweep at most; the rest waits for the next sweep.
const PRUNE_BATCHES: u32 = 20;

pub(crate) struct JanitorArgs {
    pub store: DynStore,
    pub interval: Duration,
    pub events_retention: Option<Duration>,
}

pub(crate) struct JanitorState {
    store: DynStore,
    interval: Duration,
    events_retention: Option<Duration>,
    /// The timer that sends the next sweep; aborted on stop so it does not outlive us.
    next: Option<JoinHandle<Result<(), MessagingErr<JanitorMsg>>>>,
}

#[derive(Debug)]
pub(crate) enum JanitorMsg {
    Sweep,
}

impl Actor for Janitor {
    type Msg = JanitorMsg;
    type State = JanitorState;
    type Arguments = JanitorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<JanitorMsg>,
        args: JanitorArgs,
    ) -> Result<JanitorState, ActorProcessingErr> {
        Ok(JanitorState {
            store: args.store,
            interval: args.interval,
            events_retention: args.events_retention,
            next: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<JanitorMsg>,
        _state: &mut JanitorState,
    ) -> Result<(), ActorProcessingErr> {
        // Sweep at once: after a restart or a long downtime there may be plenty to remove.
        myself.send_message(JanitorMsg::Sweep)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<JanitorMsg>,
        msg: JanitorMsg,
        state: &mut JanitorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            JanitorMsg::Sweep => {
                match state.store.delete_expired(Utc::now()).await {
                    Ok(removed) => tracing::debug!(removed, "janitor removed expired rows"),
                    // Not a failure of the actor: a database hiccup would otherwise burn the
                    // restart budget and leave the janitor given up for good. The next tick
                    // simply tries again.
                    Err(err) => tracing::warn!(error = %err, "janitor sweep failed"),
                }
                if let Some(retention) = state.events_retention {
                    prune_events(&state.store, retention).await;
                }
                // Schedule the next sweep only after this one finished (rather than a fixed
                // send_interval), so a slow database never piles up sweeps in the mailbox.
                state.next = Some(myself.send_after(state.interval, || JanitorMsg::Sweep));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<JanitorMsg>,
        state: &mut JanitorState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(next) = state.next.take() {
            next.abort();
        }
        Ok(())
    }
}

async fn prune_events(store: &DynStore, retention: Duration) {
    let Some(cutoff) = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| Utc::now().checked_sub_signed(r))
    else {
        return;
    };
    for _ in 0..PRUNE_BATCHES {
        match store.prune_events(cutoff, PRUNE_BATCH).await {
            Ok(removed) => {
                tracing::debug!(removed, "janitor pruned old events");
                if removed < u64::from(PRUNE_BATCH) {
                    return;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "pruning old events failed");
                return;
            }
        }
    }
}
