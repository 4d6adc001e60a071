//! The scheduler: fires durable tasks on time, once. It claims due tasks with this node's id
//! and a lease (two nodes never claim the same task; a crashed node's lease runs out and the
//! task is claimed again), runs a round's tasks side by side, then records how they ended in
//! one transaction: successes in bulk, each failure with a back-off retry, and for a recurring
//! task that ended, its next occurrence (see `omnihub_store::scheduler`). Between rounds it
//! sleeps until the next task is due, at most `scheduler_tick`, and wakes early when a task is
//! scheduled on this node. All of its "now" comes from [`HubConfig::clock`](crate::HubConfig).
//!
//! Before a claimed task runs, its catch-up policy decides whether it is too late: a task
//! later than `skip_if_older_than` allows is skipped with the reason. A recurring task's next
//! occurrence follows its occurrence time (`fire_all_missed`: each missed one in turn) or, when
//! it ran late, the first after now (`fire_once` coalesces what downtime missed).
//!
//! Task kinds built in: `conversation.unsnooze` (reopen a conversation that is still snoozed
//! until the time it was scheduled for), `attachment.download` (fetch a customer's file
//! from the provider into the media store, see `media.rs`) and `trigger.notify` (a triggered
//! task's notification to an employee, see `triggers.rs`). Other kinds come from outside the
//! hub as [`TaskHandler`]s in [`HubConfig::task_handlers`](crate::HubConfig). A task's id is
//! the idempotency key of whatever it does outside: a node that dies after the effect and
//! before the completion makes another node run the task again, and the effect must not double.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;

use chrono::{DateTime, Utc};
use omnihub_core::schedule::{CatchUp, Firing, Recurrence};
use omnihub_core::triggers::TRIGGER_NOTIFY;
use omnihub_core::{ClientId, ConversationId};
use omnihub_store::{ATTACHMENT_DOWNLOAD, FinishedTask, Task, TaskOutcome};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::conversation::UNSNOOZE;
use crate::shared::Shared;
use crate::{media, triggers};

pub(crate) const NAME: &str = "scheduler";

/// Tasks claimed per round.
const CLAIM: u32 = 1000;
/// Tasks of a round running at once.
const CONCURRENCY: usize = 64;
/// A task failing this many times is left failed.
const MAX_ATTEMPTS: i32 = 10;

/// Runs the tasks of one kind.
#[async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// Does what the task says. The task's id is the idempotency key of any effect outside:
    /// the same task may run again after a node died before recording its completion.
    async fn run(&self, task: &Task) -> Result<(), TaskFailure>;
}

/// Why a task did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskFailure {
    /// Try again later, with back-off (the provider's reason, for the record).
    Retry(String),
    /// Trying again cannot help: the task is failed for good.
    Permanent(String),
}

/// The task kinds handled outside the hub, by kind.
#[derive(Clone, Default)]
pub struct TaskHandlers(HashMap<String, Arc<dyn TaskHandler>>);

impl TaskHandlers {
    /// Adds the handler of `kind` (a later one for the same kind replaces it).
    #[must_use]
    pub fn with(mut self, kind: impl Into<String>, handler: Arc<dyn TaskHandler>) -> TaskHandlers {
        self.0.insert(kind.into(), handler);
        self
    }

    fn get(&self, kind: &str) -> Option<&Arc<dyn TaskHandler>> {
        self.0.get(kind)
    }
}

impl fmt::Debug for TaskHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<&str> = self.0.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        f.debug_tuple("TaskHandlers").field(&kinds).finish()
    }
}

pub(crate) struct Scheduler;

#[derive(Debug)]
pub(crate) enum SchedulerMsg {
    Tick,
    /// A task was scheduled: look now rather than at the next tick.
    Poke,
}

pub(crate) struct SchedulerState {
    shared: Arc<Shared>,
    /// The wake-up waiting on the clock for the next round.
    next: Option<tokio::task::JoinHandle<()>>,
}

impl Actor for Scheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        shared: Arc<Shared>,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        shared.set_scheduler(Some(myself));
        Ok(SchedulerState { shared, next: None })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        _state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_message(SchedulerMsg::Tick)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SchedulerMsg>,
        _msg: SchedulerMsg,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(next) = state.next.take() {
            next.abort();
        }
        let more = round(&state.shared).await;
        let clock = state.shared.config.clock.clone();
        let tick = state.shared.config.scheduler_tick;
        let now = clock.now();
        let wait = if more {
            Duration::ZERO
        } else {
            match state.shared.store.next_task_due().await {
                Ok(next) => until_next(next, now, tick),
                Err(err) => {
                    tracing::warn!(error = %err, "reading the next task's due time failed");
                    tick
                }
            }
        };
        let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        state.next = Some(tokio::spawn(async move {
            clock.sleep_until(at).await;
            let _ = myself.send_message(SchedulerMsg::Tick);
        }));
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(next) = state.next.take() {
            next.abort();
        }
        state.shared.clear_scheduler(myself.get_id());
        Ok(())
    }
}

/// Claims and runs one batch of due tasks; true when the batch was full (more may be due).
async fn round(shared: &Shared) -> bool {
    let node = shared.config.node_id.as_str();
    let clock = &shared.config.clock;
    let now = clock.now();
    let lease = shared.config.task_lease;
    let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let tasks = match shared
        .store
        .claim_due_tasks(node, now, lease_until, CLAIM)
        .await
    {
        Ok(tasks) => tasks,
        Err(err) => {
            // A database hiccup: the tasks stay due and the next tick tries again.
            tracing::warn!(error = %err, "claiming due tasks failed");
            return false;
        }
    };
    let full = tasks.len() >= CLAIM as usize;
    let finished: Vec<FinishedTask> = futures_util::stream::iter(tasks)
        .map(|task| async move {
            let catch_up = catch_up_of(&task);
            let outcome = match catch_up.firing(task.due_at, now) {
                Firing::Skip { late } => TaskOutcome::Skipped {
                    reason: format!(
                        "skipped: {} s late, more than its catch-up policy ({}) allows",
                        late.as_secs(),
                        task.catch_up
                    ),
                },
                Firing::Run => outcome(&task, run(shared, &task).await, clock.now()),
            };
            let ended = !matches!(
                outcome,
                TaskOutcome::Failed {
                    retry_at: Some(_),
                    ..
                }
            );
            let next_due = ended
                .then(|| next_occurrence(&task, &catch_up, clock.now()))
                .flatten();
            FinishedTask {
                id: task.id,
                outcome,
                next_due,
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Err(err) = shared
        .store
        .finish_tasks(&finished, node, clock.now())
        .await
    {
        // Their leases run out and they are claimed again; their effects are idempotent.
        tracing::warn!(tasks = finished.len(), error = %err, "recording finished tasks failed");
    }
    full
}

/// What a run's result means for the task, logged.
fn outcome(task: &Task, result: Result<(), TaskFailure>, now: DateTime<Utc>) -> TaskOutcome {
    match result {
        Ok(()) => TaskOutcome::Done,
        Err(TaskFailure::Retry(error)) => {
            let retry_at =
                (task.attempts < MAX_ATTEMPTS).then(|| now + retry_backoff(task.attempts));
            tracing::warn!(task = %task.id, kind = %task.kind, %error, ?retry_at, "task failed");
            TaskOutcome::Failed { error, retry_at }
        }
        Err(TaskFailure::Permanent(error)) => {
            tracing::error!(task = %task.id, kind = %task.kind, %error, "task cannot run");
            TaskOutcome::Failed {
                error,
                retry_at: None,
            }
        }
    }
}

fn catch_up_of(task: &Task) -> CatchUp {
    CatchUp::from_text(&task.catch_up).unwrap_or_else(|err| {
        tracing::warn!(task = %task.id, error = %err, "unreadable catch-up policy: firing all");
        CatchUp::FireAllMissed
    })
}

/// When a recurring task that just ended runs next; `None` for a one-off (or a schedule that
/// ends).
fn next_occurrence(task: &Task, catch_up: &CatchUp, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (Some(expression), Some(zone)) = (&task.recurrence, &task.time_zone) else {
        return None;
    };
    match Recurrence::parse(expression, zone) {
        Ok(recurrence) => catch_up.next_occurrence(&recurrence, task.occurrence_at, now),
        Err(err) => {
            tracing::error!(task = %task.id, error = %err, "a recurring task's schedule no longer reads");
            None
        }
    }
}

async fn run(shared: &Shared, task: &Task) -> Result<(), TaskFailure> {
    match task.kind.as_str() {
        UNSNOOZE => {
            let (client, conversation, until) =
                unsnooze_payload(&task.payload).ok_or_else(|| {
                    TaskFailure::Permanent(format!("malformed payload: {}", task.payload))
                })?;
            shared
                .unsnooze(client, conversation, until)
                .await
                .map_err(|err| TaskFailure::Retry(err.to_string()))
        }
        ATTACHMENT_DOWNLOAD => media::download(shared, task, task.attempts >= MAX_ATTEMPTS).await,
        TRIGGER_NOTIFY => triggers::notify(shared, task).await,
        other => match shared.config.task_handlers.get(other) {
            Some(handler) => handler.run(task).await,
            None => Err(TaskFailure::Permanent(format!(
                "unknown task kind `{other}`"
            ))),
        },
    }
}

pub(crate) fn unsnooze_payload(
    payload: &serde_json::Value,
) -> Option<(ClientId, ConversationId, DateTime<Utc>)> {
    let client = payload.get("client_id")?.as_str()?.parse().ok()?;
    let conversation = payload.get("conversation_id")?.as_str()?.parse().ok()?;
    let until = DateTime::from_timestamp_millis(payload.get("until")?.as_i64()?)?;
    Some((client, conversation, until))
}

/// How long to sleep before the next round: until the next task is due, at most `tick`.
pub(crate) fn until_next(
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    tick: Duration,
) -> Duration {
    match next {
        Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO).min(tick),
        None => tick,
    }
}

/// 2^attempts seconds, at most an hour.
pub(crate) fn retry_backoff(attempts: i32) -> chrono::Duration {
    let exp = u32::try_from(attempts.clamp(0, 12)).unwrap_or(0);
    chrono::Duration::seconds((1i64 << exp).min(3600))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sleeps_until_the_next_task_but_no_longer_than_a_tick() {
        let now = Utc::now();
        let tick = Duration::from_secs(1);
        assert_eq!(until_next(None, now, tick), tick);
        assert_eq!(
            until_next(Some(now + chrono::Duration::milliseconds(300)), now, tick),
            Duration::from_millis(300)
        );
        assert_eq!(
            until_next(Some(now + chrono::Duration::minutes(5)), now, tick),
            tick
        );
        assert_eq!(
            until_next(Some(now - chrono::Duration::minutes(5)), now, tick),
            Duration::ZERO
        );
    }

    #[test]
    fn task_retries_back_off() {
        assert_eq!(retry_backoff(0), chrono::Duration::seconds(1));
        assert_eq!(retry_backoff(3), chrono::Duration::seconds(8));
        assert_eq!(retry_backoff(50), chrono::Duration::seconds(3600));
        assert_eq!(retry_backoff(-1), chrono::Duration::seconds(1));
    }

    #[test]
    fn unsnooze_payload_round_trip() {
        let client = ClientId::new();
        let conversation = ConversationId::new();
        let until = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let payload = serde_json::json!({
            "client_id": client,
            "conversation_id": conversation,
            "until": until.timestamp_millis(),
        });
        assert_eq!(
            unsnooze_payload(&payload),
            Some((client, conversation, until))
        );
        assert_eq!(unsnooze_payload(&serde_json::json!({})), None);
    }
}
