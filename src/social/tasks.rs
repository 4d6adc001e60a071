//! The scheduler's social task kinds. Each runs against the network and is idempotent by the
//! task: a post goes out with `guid = <post>:<profile>` and its remote id is kept the moment the
//! network gives it (a rerun skips published targets, and the network answers a repeated `guid`
//! with the first post); comments carry the task's id as their `guid`; deleting what is gone
//! succeeds and liking (or disliking) twice is one like. Transient failures (rate limits,
//! outages) retry with the scheduler's back-off; refusals fail the task with the network's
//! reason.

use std::sync::Arc;

use async_trait::async_trait;
use omnihub_actors::{TaskFailure, TaskHandler, TaskHandlers};
use omnihub_connectors::SendError;
use omnihub_connectors::social::LikeTarget;
use omnihub_core::social::status;
use omnihub_core::{ChannelId, ClientId};
use omnihub_store::{PostTransition, TargetOutcome, Task};
use serde::{Deserialize, Serialize};

use super::{SocialFailure, SocialService};

pub const PUBLISH: &str = "social.publish";
pub const DELETE_POST: &str = "social.delete_post";
pub const COMMENT: &str = "social.comment";
pub const DELETE_COMMENT: &str = "social.delete_comment";
pub const HIDE_COMMENT: &str = "social.hide_comment";
pub const LIKE: &str = "social.like";
pub const UNLIKE: &str = "social.unlike";
pub const DISLIKE: &str = "social.dislike";
pub const UNDISLIKE: &str = "social.undislike";

/// Publishes a post on its pending targets. `due_at` (Unix ms) is set for a scheduled
/// publication: a task whose post was rescheduled or taken back since does nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishPayload {
    pub client_id: ClientId,
    pub post_id: uuid::Uuid,
    #[serde(default)]
    pub due_at: Option<i64>,
}

/// Deletes a post from every profile it was published on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletePostPayload {
    pub client_id: ClientId,
    pub post_id: uuid::Uuid,
}

/// Comments under a post (answering `reply_to` when set) as the profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommentPayload {
    pub client_id: ClientId,
    pub profile_id: ChannelId,
    pub remote_post_id: String,
    pub reply_to: Option<String>,
    pub text: String,
}

/// Deletes (or hides) a comment under a post.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteCommentPayload {
    pub client_id: ClientId,
    pub profile_id: ChannelId,
    pub remote_post_id: String,
    pub comment_id: String,
}

/// Likes or dislikes (or takes back the like or dislike of) a post or a comment as the
/// profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LikePayload {
    pub client_id: ClientId,
    pub profile_id: ChannelId,
    /// `post` or `comment`.
    pub target: String,
    pub remote_id: String,
}

/// The handlers of every social task kind, for `HubConfig::task_handlers`.
pub fn handlers(service: SocialService, handlers: TaskHandlers) -> TaskHandlers {
    let runner: Arc<dyn TaskHandler> = Arc::new(Runner(service));
    [
        PUBLISH,
        DELETE_POST,
        COMMENT,
        DELETE_COMMENT,
        HIDE_COMMENT,
        LIKE,
        UNLIKE,
        DISLIKE,
        UNDISLIKE,
    ]
    .into_iter()
    .fold(handlers, |all, kind| all.with(kind, runner.clone()))
}

struct Runner(SocialService);

#[async_trait]
impl TaskHandler for Runner {
    async fn run(&self, task: &Task) -> Result<(), TaskFailure> {
        let service = &self.0;
        match task.kind.as_str() {
            PUBLISH => publish(service, &payload(task)?).await,
            DELETE_POST => delete_post(service, &payload(task)?).await,
            COMMENT => {
                let p: CommentPayload = payload(task)?;
                let network = connector(service, p.client_id, p.profile_id).await?;
                let guid = task.id.to_string();
                network
                    .comment(&p.remote_post_id, p.reply_to.as_deref(), &p.text, &guid)
                    .await
                    .map(drop)
                    .map_err(failure)
            }
            DELETE_COMMENT | HIDE_COMMENT => {
                let p: DeleteCommentPayload = payload(task)?;
                let network = connector(service, p.client_id, p.profile_id).await?;
                let done = if task.kind == DELETE_COMMENT {
                    network
                        .delete_comment(&p.remote_post_id, &p.comment_id)
                        .await
                } else {
                    network.hide_comment(&p.remote_post_id, &p.comment_id).await
                };
                done.map_err(failure)
            }
            LIKE | UNLIKE | DISLIKE | UNDISLIKE => {
                let p: LikePayload = payload(task)?;
                let network = connector(service, p.client_id, p.profile_id).await?;
                let target = match p.target.as_str() {
                    "post" => LikeTarget::Post(&p.remote_id),
                    "comment" => LikeTarget::Comment(&p.remote_id),
                    other => {
                        return Err(TaskFailure::Permanent(format!("cannot like a {other:?}")));
                    }
                };
                let done = match task.kind.as_str() {
                    LIKE => network.like(target).await,
                    UNLIKE => network.unlike(target).await,
                    DISLIKE => network.dislike(target).await,
                    _ => network.undislike(target).await,
                };
                done.map_err(failure)
            }
            other => Err(TaskFailure::Permanent(format!(
                "not a social task: {other}"
            ))),
        }
    }
}

fn payload<T: serde::de::DeserializeOwned>(task: &Task) -> Result<T, TaskFailure> {
    serde_json::from_value(task.payload.clone())
        .map_err(|err| TaskFailure::Permanent(format!("malformed payload: {err}")))
}

fn failure(err: SendError) -> TaskFailure {
    match err {
        SendError::Transient { reason, .. } => TaskFailure::Retry(reason),
        SendError::Permanent { reason } | SendError::Blocked { reason } => {
            TaskFailure::Permanent(reason)
        }
    }
}

fn social_failure(err: SocialFailure) -> TaskFailure {
    match err {
        SocialFailure::Network(err) => failure(err),
        SocialFailure::Store(err) => TaskFailure::Retry(err.to_string()),
        other => TaskFailure::Permanent(other.to_string()),
    }
}

async fn connector(
    service: &SocialService,
    client: ClientId,
    profile: ChannelId,
) -> Result<Arc<dyn omnihub_connectors::social::SocialNetwork>, TaskFailure> {
    service
        .network(client, profile)
        .await
        .map_err(social_failure)
}

/// The network's words for a target that cannot be published.
fn reason_of(err: &SocialFailure) -> String {
    match err {
        SocialFailure::Network(SendError::Permanent { reason }) => reason.clone(),
        other => other.to_string(),
    }
}

async fn publish(service: &SocialService, p: &PublishPayload) -> Result<(), TaskFailure> {
    let store = &service.store;
    let post = match store.get_social_post(p.client_id, p.post_id).await {
        Ok(post) => post,
        // Deleted before its time: nothing to publish.
        Err(omnihub_store::StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(TaskFailure::Retry(err.to_string())),
    };
    let post = match (p.due_at, post.status.as_str()) {
        (Some(due), status::SCHEDULED) => {
            if post.scheduled_at.map(|at| at.timestamp_millis()) != Some(due) {
                // Rescheduled: the task of the new time publishes it.
                return Ok(());
            }
            let change = PostTransition {
                from: &[status::SCHEDULED],
                to: status::PUBLISHING,
                approved_by: None,
                scheduled: None,
            };
            match store
                .transition_social_post(p.client_id, p.post_id, &change)
                .await
            {
                Ok(post) => post,
                Err(omnihub_store::StoreError::Conflict(_)) => return Ok(()),
                Err(err) => return Err(TaskFailure::Retry(err.to_string())),
            }
        }
        // A rerun after a node died mid-way, or "publish now".
        (_, status::PUBLISHING) => post,
        // Taken back, or already done.
        _ => return Ok(()),
    };
    let mut retry = None;
    for target in post.targets.iter().filter(|t| t.status == "pending") {
        let outcome = if let Some(remote) = &target.remote_id {
            // Published before the outcome was recorded: the remote id is the proof.
            Ok(remote.clone())
        } else {
            publish_one(service, &post, target.profile_id).await
        };
        let recorded = match &outcome {
            Ok(remote_id) => TargetOutcome {
                status: "published",
                remote_id: Some(remote_id),
                failure_reason: None,
            },
            Err(SocialFailure::Network(SendError::Transient { reason, .. })) => {
                retry = Some(reason.clone());
                continue;
            }
            Err(SocialFailure::Store(err)) => {
                retry = Some(err.to_string());
                continue;
            }
            Err(err) => {
                let reason = reason_of(err);
                store
                    .set_target_outcome(
                        p.client_id,
                        post.id,
                        target.profile_id,
                        &TargetOutcome {
                            status: "failed",
                            remote_id: None,
                            failure_reason: Some(&reason),
                        },
                    )
                    .await
                    .map_err(|e| TaskFailure::Retry(e.to_string()))?;
                continue;
            }
        };
        store
            .set_target_outcome(p.client_id, post.id, target.profile_id, &recorded)
            .await
            .map_err(|e| TaskFailure::Retry(e.to_string()))?;
    }
    match retry {
        Some(reason) => Err(TaskFailure::Retry(reason)),
        None => Ok(()),
    }
}

async fn publish_one(
    service: &SocialService,
    post: &omnihub_store::SocialPost,
    profile: ChannelId,
) -> Result<String, SocialFailure> {
    let network = service.network(post.client_id, profile).await?;
    let content = SocialService::content_on(post, profile);
    let capabilities = network.capabilities();
    service
        .check(post.client_id, &capabilities, &content)
        .await?;
    let wire = service
        .wire(post.client_id, capabilities.network, &content)
        .await?;
    let guid = format!("{}:{}", post.id, profile);
    network
        .create_post(&wire, &guid)
        .await
        .map_err(SocialFailure::Network)
}

async fn delete_post(service: &SocialService, p: &DeletePostPayload) -> Result<(), TaskFailure> {
    let store = &service.store;
    let post = match store.get_social_post(p.client_id, p.post_id).await {
        Ok(post) => post,
        Err(omnihub_store::StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(TaskFailure::Retry(err.to_string())),
    };
    for target in &post.targets {
        let (Some(remote), "published") = (&target.remote_id, target.status.as_str()) else {
            continue;
        };
        let network = connector(service, p.client_id, target.profile_id).await?;
        network.delete_post(remote).await.map_err(failure)?;
        store
            .set_target_outcome(
                p.client_id,
                post.id,
                target.profile_id,
                &TargetOutcome {
                    status: "deleted",
                    remote_id: None,
                    failure_reason: None,
                },
            )
            .await
            .map_err(|e| TaskFailure::Retry(e.to_string()))?;
    }
    Ok(())
}
