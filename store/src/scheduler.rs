//! The scheduler's part of the store beyond claiming (which is in [`HubStore`](crate::HubStore)):
//! recording how claimed tasks ended — and, for a recurring task, scheduling its next
//! occurrence in the same transaction —, a client's view and control of its tasks, the rules
//! of triggered tasks, and employees' notifications.
//!
//! A recurring task is a series of rows, one per occurrence: the first occurrence's id is the
//! series id, and occurrence `T` of a series has the idempotency key `{series}@{T in ms}`, so
//! two nodes (or one node twice) finishing the same occurrence schedule one next occurrence.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::events::HubEvent;
use omnihub_core::schedule::{CatchUp, Recurrence};
use omnihub_core::triggers::{Trigger, TriggerAction, TriggerCondition};
use omnihub_core::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::Result;
use crate::hub::{NewTask, Task, TaskStatus};

/// How a new task recurs and catches up after downtime.
#[derive(Clone, Debug, Default)]
pub struct TaskOptions {
    /// Run again on this schedule after each occurrence ends (done, or failed for good).
    pub recurrence: Option<Recurrence>,
    pub catch_up: CatchUp,
    /// Take the task's id from its idempotency key ([`task_id_for_key`]) instead of a fresh
    /// one, so whoever knows the key knows the id.
    pub id_from_key: bool,
}

/// The id a task scheduled with [`TaskOptions::id_from_key`] gets: a version-8 UUID made of
/// the key's SHA-256.
pub fn task_id_for_key(key: &str) -> Uuid {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// How a claimed task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    Done,
    /// Failed: pending again at `retry_at`, or failed for good without it.
    Failed {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// Not run: too late for its catch-up policy.
    Skipped {
        reason: String,
    },
}

/// A claimed task's end as the node holding it records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedTask {
    pub id: Uuid,
    pub outcome: TaskOutcome,
    /// For a recurring task that ended (not one retrying): when its next occurrence is due.
    pub next_due: Option<DateTime<Utc>>,
}

/// Which of a client's tasks a listing shows; every field narrows it.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub kind: Option<String>,
    /// Due at or after.
    pub from: Option<DateTime<Utc>>,
    /// Due before.
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// A rule about to be created or to replace one.
#[derive(Clone, Debug)]
pub struct NewTrigger {
    pub name: String,
    pub profile_id: Option<Uuid>,
    pub condition: TriggerCondition,
    pub action: TriggerAction,
    pub enabled: bool,
}

/// Something the console tells one employee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: NotificationId,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// What it is about, e.g. `trigger`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait SchedulerStore: Send + Sync {
    /// Like [`HubStore::schedule_task`](crate::HubStore::schedule_task), with a recurrence, a
    /// catch-up policy and the id's origin. A recurring task starts its series.
    async fn schedule_task_with(&self, task: &NewTask, options: &TaskOptions) -> Result<Task>;
    /// Records how claimed tasks ended, in one transaction: each only if `node` still holds it
    /// (one it no longer holds is left alone), and for each so recorded with a `next_due`, the
    /// next occurrence of its series. Answers how many were recorded.
    async fn finish_tasks(
        &self,
        finished: &[FinishedTask],
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;

    // --- a client's tasks ----------------------------------------------------------------
    /// Earliest due first.
    async fn list_tasks(&self, client: ClientId, filter: &TaskFilter) -> Result<Vec<Task>>;
    async fn get_task(&self, client: ClientId, id: Uuid) -> Result<Task>;
    /// Cancels a pending or failed task (a recurring one: the rest of its series too);
    /// `None` when its status does not allow it.
    async fn cancel_task(
        &self,
        client: ClientId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>>;
    /// Moves a pending, failed or skipped task to `due_at`, pending (attempts start again for
    /// one that was not pending); `None` when its status does not allow it.
    async fn reschedule_task(
        &self,
        client: ClientId,
        id: Uuid,
        due_at: DateTime<Utc>,
    ) -> Result<Option<Task>>;

    // --- triggered-task rules ------------------------------------------------------------
    async fn create_trigger(&self, client: ClientId, rule: &NewTrigger) -> Result<Trigger>;
    /// Oldest first.
    async fn list_triggers(&self, client: ClientId) -> Result<Vec<Trigger>>;
    async fn get_trigger(&self, client: ClientId, id: TriggerId) -> Result<Trigger>;
    async fn update_trigger(
        &self,
        client: ClientId,
        id: TriggerId,
        rule: &NewTrigger,
    ) -> Result<Trigger>;
    async fn delete_trigger(&self, client: ClientId, id: TriggerId) -> Result<()>;

    // --- notifications -------------------------------------------------------------------
    /// Stores a notification for an employee of the client (`NotFound` for anyone else) and
    /// appends its `notification` event in the same transaction. An id already used changes
    /// nothing and answers `None`.
    async fn create_notification(
        &self,
        id: NotificationId,
        client: ClientId,
        user: UserId,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<Option<(Notification, HubEvent)>>;
    /// A user's notifications, newest first.
    async fn list_notifications(
        &self,
        client: ClientId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<Notification>>;
}
