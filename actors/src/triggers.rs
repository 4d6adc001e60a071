//! Triggered tasks: social ingestion hands every new post or comment to
//! [`HubHandle::social_item_arrived`](crate::HubHandle::social_item_arrived), which matches it
//! against the client's rules (`omnihub_core::triggers`) and schedules one task per matching
//! rule, due now. The task's idempotency key — and so its id — is made of the rule's id and the
//! item's, so an item delivered twice fires each rule once.
//!
//! A dislike rule fires only on items of networks with dislikes (a rule for any profile
//! would otherwise fail on every other network's posts).
//!
//! Likes, dislikes, replies and hiding are task kinds the social side handles; the
//! notification to an employee (`trigger.notify`) is run here: stored, and pushed to the
//! employee's consoles as a `notification` event committed with it.

use omnihub_connectors::social::{Action, Network, capabilities};
use omnihub_core::triggers::{SocialItem, Trigger, TriggerAction, action_task, hashtags};
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
    for rule in rules
        .iter()
        .filter(|rule| rule.matches(item, &tags) && possible(rule, item))
    {
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

/// Whether the item's network can do what the rule does: only networks with dislikes are
/// asked for one.
fn possible(rule: &Trigger, item: &SocialItem) -> bool {
    match rule.action {
        TriggerAction::Dislike => Network::parse(&item.network)
            .is_some_and(|network| capabilities(network).require(Action::Dislike).is_ok()),
        _ => true,
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use omnihub_core::triggers::{ItemKind, TriggerCondition};
    use omnihub_core::{ClientId, TriggerId};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn dislikes_are_asked_only_of_networks_with_dislikes() {
        let rule = |action| Trigger {
            id: TriggerId(Uuid::from_u128(1)),
            client_id: ClientId(Uuid::nil()),
            name: "r".into(),
            profile_id: None,
            condition: TriggerCondition::Hashtag {
                hashtag: "#ads".into(),
            },
            action,
            enabled: true,
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        };
        let post = |network: &str| SocialItem {
            client_id: ClientId(Uuid::nil()),
            profile_id: Uuid::from_u128(7),
            network: network.into(),
            kind: ItemKind::Post,
            remote_id: "v1".into(),
            parent_remote_id: None,
            author_id: String::new(),
            author_name: String::new(),
            text: "#ads".into(),
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        };
        assert!(possible(&rule(TriggerAction::Dislike), &post("youtube")));
        for network in ["vk", "ok", "facebook", "instagram", "x", "myspace"] {
            assert!(!possible(&rule(TriggerAction::Dislike), &post(network)));
            assert!(possible(&rule(TriggerAction::Like), &post(network)));
        }
    }
}
