//! The event listener: wakes the publisher of a client when any node commits events for it,
//! and hands it the typing and presence other nodes announce (see `ephemeral.rs`).
//! On PostgreSQL `store.listen_events()` streams both from `LISTEN/NOTIFY`; on
//! SQLite it is `None` (one process owns the file and wakes its publishers itself) and the
//! listener just idles.
//!
//! Losing the database is not a failure of the actor (it would burn the root's restart budget
//! during an outage and then be given up on for good): the listener reconnects by itself with
//! back-off, and every (re)connection wakes all publishers, catching up on anything announced
//! while nobody listened.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use omnihub_core::ClientId;
use omnihub_store::Announcement;
use ractor::concurrency::JoinHandle as TimerHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};
use tokio::task::JoinHandle;

use crate::ephemeral;
use crate::shared::Shared;

pub(crate) const NAME: &str = "event listener";

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) struct Listener;

#[derive(Debug)]
pub(crate) enum ListenerMsg {
    Connect,
    Committed(ClientId, i64),
    Ephemeral(ClientId, String),
    Lost(String),
}

pub(crate) struct ListenerState {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    failures: u32,
    retry: Option<TimerHandle<Result<(), MessagingErr<ListenerMsg>>>>,
}

impl Actor for Listener {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<ListenerMsg>,
        shared: Arc<Shared>,
    ) -> Result<ListenerState, ActorProcessingErr> {
        myself.send_message(ListenerMsg::Connect)?;
        Ok(ListenerState {
            shared,
            task: None,
            failures: 0,
            retry: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ListenerMsg>,
        msg: ListenerMsg,
        state: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ListenerMsg::Connect => match state.shared.store.listen_events().await {
                Ok(None) => {}
                Ok(Some(mut stream)) => {
                    state.failures = 0;
                    for entry in state.shared.entries() {
                        entry.wake();
                    }
                    let me = myself.clone();
                    state.task = Some(tokio::spawn(async move {
                        let lost = loop {
                            match stream.next().await {
                                Some(Ok(announcement)) => {
                                    let msg = match announcement {
                                        Announcement::Committed { client, seq } => {
                                            ListenerMsg::Committed(client, seq)
                                        }
                                        Announcement::Ephemeral { client, payload } => {
                                            ListenerMsg::Ephemeral(client, payload)
                                        }
                                    };
                                    if me.send_message(msg).is_err() {
                                        return; // the actor is gone
                                    }
                                }
                                Some(Err(err)) => break err.to_string(),
                                None => break "the notification stream ended".to_string(),
                            }
                        };
                        let _ = me.send_message(ListenerMsg::Lost(lost));
                    }));
                }
                Err(err) => retry(&myself, state, &err.to_string()),
            },
            ListenerMsg::Committed(client, seq) => {
                // No subtree on this node: no session here wants the event.
                if let Some(entry) = state.shared.entry(client)
                    && entry.last_published.load(Ordering::Acquire) < seq
                {
                    entry.wake();
                }
            }
            ListenerMsg::Ephemeral(client, payload) => {
                ephemeral::deliver(&state.shared, client, &payload);
            }
            ListenerMsg::Lost(reason) => {
                if let Some(task) = state.task.take() {
                    task.abort();
                }
                retry(&myself, state, &reason);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ListenerMsg>,
        state: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(task) = state.task.take() {
            task.abort();
        }
        if let Some(retry) = state.retry.take() {
            retry.abort();
        }
        Ok(())
    }
}

fn retry(myself: &ActorRef<ListenerMsg>, state: &mut ListenerState, reason: &str) {
    state.failures = state.failures.saturating_add(1);
    let wait = backoff(state.failures);
    tracing::warn!(
        %reason,
        retry_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        "not listening for other nodes' events; reconnecting"
    );
    state.retry = Some(myself.send_after(wait, || ListenerMsg::Connect));
}

/// 100 ms doubling per failure in a row, at most 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_up_to_a_cap() {
        let got: Vec<_> = (1..=4).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800]);
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
