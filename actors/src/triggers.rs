//! Triggered tasks: social ingestion hands every new post or comment to
//! [`HubHandle::social_item_arrived`](crate::HubHandle::social_item_arrived), which matches it
//! against the client's rules (`omnihub_core::triggers`) and schedules one task per matching
//! rule, due now. The task's idempotency key — and so its id — is made of the rule's id and the
//! item's, so an item delivered twice fires each rule once.
//!
//! Likes, replies and hiding are task kinds the social side handles; the notification to an
//! employee (`trigger.notify`) is run here: stored, and pushed to the employee's consoles as a
//! `notification` event committed with it.

use omnihub_core::triggers::{SocialItem, action_task, hashtags};
use omnihub_core::{ClientId, NotificationId, UserId};
use omnihub_store::{NewTask, StoreError, Task, TaskOptions};

use crate::hub::HubError;
use crate::scheduler::TaskFailure;
use crate::shared::Shared;

/// Schedules the tasks of every rule of the item's client that matches it.
pub(crate) async fn evaluate(shared: &Shared, item: &SocialItem) -> Result<Vec<Task>, HubError> {
    let rules = shared.store.list_triggers(item.client_id).await?;
    let tags = hashtags(&item.text);
    let mut tasks = Vec::new();
    for rule in rules.iter().filter(|rule| rule.matches(item, &tags)) {
        let (kind, payload) = match action_task(rule, item) {
            Ok(task) => task,
            Err(err) => {
                // Templates are checked when saved; one that stopped filling is logged, and the
                // other rules still fire.
                tracing::warn!(trigger = %rule.id, error = %err, "a trigger's reply does not fill");
                continue;
            }
        };
        let task = NewTask {
            client_id: Some(item.client_id),
            kind: kind.to_string(),
            payload,
            due_at: shared.config.clock.now(),
            idempotency_key: rule.task_key(item),
        };
        let options = TaskOptions {
            id_from_key: true,
            ..TaskOptions::default()
        };
        tasks.push(shared.store.schedule_task_with(&task, &options).await?);
    }
    if !tasks.is_empty() {
        shared.poke_scheduler();
    }
    Ok(tasks)
}

/// `trigger.notify`: the notification, once per task, and its push to the employee's consoles.
pub(crate) async fn notify(shared: &Shared, task: &Task) -> Result<(), TaskFailure> {
    let parse = |key: &str| task.payload.get(key)?.as_str()?.parse().ok();
    let (Some(client), Some(user)) = (parse("client_id"), parse("user_id")) else {
        return Err(TaskFailure::Permanent(format!(
            "malformed payload: {}",
            task.payload
        )));
    };
    let (client, user) = (ClientId(client), UserId(user));
    let created = shared
        .store
        .create_notification(
            NotificationId(task.id),
            client,
            user,
            "trigger",
            &task.payload,
        )
        .await;
    match created {
        Ok(Some(_)) => {
            // The event is committed: the client's publisher reads it from the store (other
            // nodes' publishers hear of it through the store's notifications).
            if let Some(entry) = shared.entry(client) {
                entry.wake();
            }
            Ok(())
        }
        // Notified already, by an earlier run of this task.
        Ok(None) => Ok(()),
        Err(StoreError::NotFound) => Err(TaskFailure::Permanent(
            "the employee to notify is no longer in the client".into(),
        )),
        Err(err) => Err(TaskFailure::Retry(err.to_string())),
    }
}
