//! Conversation actors: one per active conversation, started on demand by the client
//! supervisor and stopped after [`IDLE`] without work. They serialize what happens to one
//! conversation — replies, notes, status changes, assignment, unsnoozing — so that a check
//! and the change it guards (an allowed status move, "still snoozed until then?") are never
//! interleaved with another change made through this node. The store stays the truth: the
//! actor caches nothing that changes.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use omnihub_core::conversation::{operator_may_set, snooze_until_valid};
use omnihub_core::model::{Conversation, ConversationStatus, Message, MessageKind};
use omnihub_core::{AttachmentId, ChannelId, ConversationId, UserId};
use omnihub_store::{ConversationPatch, NewOutbound, NewTask};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};

use crate::client::ClientMsg;
use crate::hub::HubError;
use crate::shared::ClientCtx;

/// A conversation actor with nothing to do for this long stops; the next request starts a
/// fresh one.
pub(crate) const IDLE: Duration = Duration::from_secs(60);

/// The scheduler's task kind that reopens a snoozed conversation.
pub(crate) const UNSNOOZE: &str = "conversation.unsnooze";

pub(crate) struct ConversationActor;

pub(crate) struct ConversationArgs {
    pub ctx: ClientCtx,
    pub id: ConversationId,
}

pub(crate) enum ConversationMsg {
    /// A customer message was committed (by `HubHandle::ingest`) that leaves the router
    /// something to decide (see [`wants_routing`]).
    Inbound {
        channel: ChannelId,
        /// `Some(returning customer)` when the message opened a new request.
        new_request: Option<bool>,
    },
    /// A reply or a note from an operator.
    Outbound {
        /// `None` for the system's own notes (a call-back's attempt and outcome).
        author: Option<UserId>,
        text: String,
        idempotency_key: String,
        kind: MessageKind,
        /// Uploads of this conversation sent with it.
        attachments: Vec<AttachmentId>,
        reply: RpcReplyPort<Result<Message, HubError>>,
    },
    Update {
        patch: Box<ConversationPatch>,
        reply: RpcReplyPort<Result<Conversation, HubError>>,
    },
    /// Reopen if still snoozed until exactly `until`.
    Unsnooze {
        until: DateTime<Utc>,
        reply: RpcReplyPort<Result<(), HubError>>,
    },
    IdleCheck,
}

pub(crate) struct ConversationState {
    ctx: ClientCtx,
    id: ConversationId,
    /// Never changes for a conversation, so it is safe to keep.
    channel: Option<ChannelId>,
    last_active: Instant,
    idle_timer: Option<JoinHandle<Result<(), MessagingErr<ConversationMsg>>>>,
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConversationMsg>,
        args: ConversationArgs,
    ) -> Result<ConversationState, ActorProcessingErr> {
        Ok(ConversationState {
            ctx: args.ctx,
            id: args.id,
            channel: None,
            last_active: Instant::now(),
            idle_timer: Some(myself.send_after(IDLE, || ConversationMsg::IdleCheck)),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConversationMsg>,
        msg: ConversationMsg,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, ConversationMsg::IdleCheck) {
            state.last_active = Instant::now();
        }
        match msg {
            ConversationMsg::Inbound {
                channel,
                new_request,
            } => {
                state.channel = Some(channel);
                if state.ctx.shared.hooks.take_inbound_panic(state.ctx.id()) {
                    panic!("injected panic in conversation {}", state.id);
                }
                // The router reads the conversation again before it decides: another node may
                // have assigned it in between.
                state.ctx.entry.route(state.id, new_request);
            }
            ConversationMsg::Outbound {
                author,
                text,
                idempotency_key,
                kind,
                attachments,
                reply,
            } => {
                let result =
                    outbound(state, author, text, idempotency_key, kind, attachments).await;
                let _ = reply.send(result);
            }
            ConversationMsg::Update { patch, reply } => {
                let result = update(state, *patch).await;
                let _ = reply.send(result);
            }
            ConversationMsg::Unsnooze { until, reply } => {
                let result = unsnooze(state, until).await;
                let _ = reply.send(result);
            }
            ConversationMsg::IdleCheck => {
                let idle = state.last_active.elapsed();
                if idle >= IDLE {
                    // The supervisor forgets this actor first, then lets it finish whatever
                    // is already in its mailbox: no request is dropped.
                    if let Some(sup) = myself.try_get_supervisor() {
                        let _ = sup
                            .send_message(ClientMsg::ConversationIdle(state.id, myself.get_id()));
                    }
                } else {
                    state.idle_timer =
                        Some(myself.send_after(IDLE - idle, || ConversationMsg::IdleCheck));
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ConversationMsg>,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        Ok(())
    }
}

/// Whether a committed customer message leaves the router something to decide: a new request,
/// or a conversation nobody has that may be routed. One already waiting in the queue keeps its
/// place there, and the drains hand it out in turn.
pub(crate) fn wants_routing(conversation: &Conversation, new_request: bool, waiting: bool) -> bool {
    new_request || (conversation.assignee_id.is_none() && routable(conversation.status) && !waiting)
}

/// Statuses in which a conversation wants an operator.
pub(crate) fn routable(status: ConversationStatus) -> bool {
    matches!(status, ConversationStatus::New | ConversationStatus::Open)
}

/// Statuses that take one of the assignee's capacity slots.
fn holds_slot(status: ConversationStatus) -> bool {
    matches!(
        status,
        ConversationStatus::New | ConversationStatus::Open | ConversationStatus::Pending
    )
}

async fn channel(state: &mut ConversationState) -> Result<ChannelId, HubError> {
    if let Some(channel) = state.channel {
        return Ok(channel);
    }
    let conversation = state
        .ctx
        .store()
        .get_conversation(state.ctx.id(), state.id)
        .await?;
    state.channel = Some(conversation.channel_id);
    Ok(conversation.channel_id)
}

async fn outbound(
    state: &mut ConversationState,
    author: Option<UserId>,
    text: String,
    idempotency_key: String,
    kind: MessageKind,
    attachments: Vec<AttachmentId>,
) -> Result<Message, HubError> {
    let channel = channel(state).await?;
    let (message, event) = state
        .ctx
        .store()
        .add_outbound(&NewOutbound {
            client_id: state.ctx.id(),
            conversation_id: state.id,
            author_id: author,
            kind,
            text,
            idempotency_key,
            attachments,
        })
        .await?;
    if event.is_some() {
        state.ctx.entry.wake();
    }
    // Also for a repeated key whose message is still pending: the caller's retry may be the
    // only thing left that gets it sent (the channel actor drops doubles it already holds,
    // and the provider dedupes on the key).
    if kind != MessageKind::Note && message.status == omnihub_core::model::DeliveryStatus::Pending {
        state.ctx.entry.send_outbound(channel, message.clone());
    }
    Ok(message)
}

async fn update(
    state: &mut ConversationState,
    patch: ConversationPatch,
) -> Result<Conversation, HubError> {
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let before = store.get_conversation(client, state.id).await?;
    state.channel = Some(before.channel_id);
    check_patch(&before, &patch, Utc::now())?;
    let (after, _event) = store.update_conversation(client, state.id, &patch).await?;
    state.ctx.entry.wake();

    if after.status == ConversationStatus::Snoozed
        && let Some(until) = after.snoozed_until
        && patch.snoozed_until.is_some()
    {
        schedule_unsnooze(&state.ctx, &after, until).await?;
    }

    // The router reacts: a freed slot takes the next queued conversation; an unassigned
    // conversation that wants an operator (a transfer to a group, an unassignment, a reopen)
    // is routed.
    let freed = before.assignee_id.is_some()
        && holds_slot(before.status)
        && (after.assignee_id != before.assignee_id || !holds_slot(after.status));
    if freed {
        state.ctx.entry.request_drain();
    }
    if after.assignee_id.is_none() && routable(after.status) {
        state.ctx.entry.route(state.id, None);
    }
    Ok(after)
}

/// The rules a change must follow, checked against the conversation as it is now.
pub(crate) fn check_patch(
    before: &Conversation,
    patch: &ConversationPatch,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    if let Some(to) = patch.status
        && to != before.status
        && !operator_may_set(before.status, to)
    {
        return Err(HubError::Invalid(format!(
            "a conversation cannot go from {} to {}",
            before.status.as_str(),
            to.as_str()
        )));
    }
    let snoozing = patch.status == Some(ConversationStatus::Snoozed)
        && before.status != ConversationStatus::Snoozed;
    match patch.snoozed_until {
        Some(Some(until)) => {
            if patch.status.unwrap_or(before.status) != ConversationStatus::Snoozed {
                return Err(HubError::Invalid(
                    "a wake-up time needs the status snoozed".into(),
                ));
            }
            if !snooze_until_valid(now, until) {
                return Err(HubError::Invalid(
                    "the wake-up time must be in the future and at most 90 days ahead".into(),
                ));
            }
        }
        _ if snoozing => {
            return Err(HubError::Invalid("snoozing needs a wake-up time".into()));
        }
        _ => {}
    }
    Ok(())
}

/// The task's idempotency key: one per conversation and wake-up time, so snoozing twice to
/// the same time schedules once.
pub(crate) fn unsnooze_key(conversation: ConversationId, until: DateTime<Utc>) -> String {
    format!("{UNSNOOZE}:{conversation}:{}", until.timestamp_millis())
}

async fn schedule_unsnooze(
    ctx: &ClientCtx,
    conversation: &Conversation,
    until: DateTime<Utc>,
) -> Result<(), HubError> {
    ctx.store()
        .schedule_task(&NewTask {
            client_id: Some(ctx.id()),
            kind: UNSNOOZE.to_string(),
            payload: serde_json::json!({
                "client_id": ctx.id(),
                "conversation_id": conversation.id,
                "until": until.timestamp_millis(),
            }),
            due_at: until,
            idempotency_key: unsnooze_key(conversation.id, until),
        })
        .await?;
    ctx.shared.poke_scheduler();
    Ok(())
}

async fn unsnooze(state: &mut ConversationState, until: DateTime<Utc>) -> Result<(), HubError> {
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let conversation = match store.get_conversation(client, state.id).await {
        Ok(c) => c,
        // Deleted meanwhile: nothing to wake.
        Err(omnihub_store::StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    state.channel = Some(conversation.channel_id);
    // Snoozed again to another time, reopened by hand, resolved: this wake-up is stale.
    let still = conversation.status == ConversationStatus::Snoozed
        && conversation.snoozed_until.map(|t| t.timestamp_millis())
            == Some(until.timestamp_millis());
    if !still {
        return Ok(());
    }
    let patch = ConversationPatch {
        status: Some(ConversationStatus::Open),
        snoozed_until: Some(None),
        ..ConversationPatch::default()
    };
    let (after, _event) = store.update_conversation(client, state.id, &patch).await?;
    state.ctx.entry.wake();
    if after.assignee_id.is_none() {
        state.ctx.entry.route(state.id, None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use omnihub_core::{ClientId, ContactId};

    fn conversation(status: ConversationStatus) -> Conversation {
        let now = Utc::now();
        Conversation {
            id: ConversationId::new(),
            client_id: ClientId::new(),
            channel_id: ChannelId::new(),
            contact_id: ContactId::new(),
            external_id: "chat-1".into(),
            status,
            snoozed_until: None,
            assignee_id: None,
            group_id: None,
            request_no: 1,
            last_message_at: now,
            created_at: now,
            blocked_at: None,
            blocked_reason: None,
        }
    }

    #[test]
    fn snooze_time_must_be_ahead_and_come_with_the_status() {
        let now = Utc::now();
        let open = conversation(ConversationStatus::Open);
        let later = now + chrono::Duration::minutes(5);
        let ok = ConversationPatch {
            status: Some(ConversationStatus::Snoozed),
            snoozed_until: Some(Some(later)),
            ..Default::default()
        };
        assert!(check_patch(&open, &ok, now).is_ok());
        let past = ConversationPatch {
            snoozed_until: Some(Some(now - chrono::Duration::minutes(5))),
            ..ok.clone()
        };
        assert!(matches!(
            check_patch(&open, &past, now),
            Err(HubError::Invalid(_))
        ));
        let without_status = ConversationPatch {
            snoozed_until: Some(Some(later)),
            ..Default::default()
        };
        assert!(matches!(
            check_patch(&open, &without_status, now),
            Err(HubError::Invalid(_))
        ));
        // Snoozing needs a time; leaving the status alone needs nothing.
        let forever = ConversationPatch {
            status: Some(ConversationStatus::Snoozed),
            ..Default::default()
        };
        assert!(matches!(
            check_patch(&open, &forever, now),
            Err(HubError::Invalid(_))
        ));
        assert!(check_patch(&open, &ConversationPatch::default(), now).is_ok());
        let too_far = ConversationPatch {
            snoozed_until: Some(Some(now + chrono::Duration::days(91))),
            ..ok.clone()
        };
        assert!(check_patch(&open, &too_far, now).is_err());
        // Operators may not move a conversation back to new, nor snooze a resolved one.
        let resolved = conversation(ConversationStatus::Resolved);
        assert!(check_patch(&resolved, &ok, now).is_err());
        let renew = ConversationPatch {
            status: Some(ConversationStatus::New),
            ..Default::default()
        };
        assert!(check_patch(&open, &renew, now).is_err());
    }

    #[test]
    fn unsnooze_keys_are_per_conversation_and_time() {
        let a = ConversationId::new();
        let b = ConversationId::new();
        let t = Utc::now();
        assert_eq!(unsnooze_key(a, t), unsnooze_key(a, t));
        assert_ne!(unsnooze_key(a, t), unsnooze_key(b, t));
        assert_ne!(
            unsnooze_key(a, t),
            unsnooze_key(a, t + chrono::Duration::seconds(1))
        );
        assert!(unsnooze_key(a, t).starts_with("conversation.unsnooze:"));
    }

    #[test]
    fn which_statuses_route_and_hold_slots() {
        use ConversationStatus::*;
        assert!(routable(New) && routable(Open));
        assert!(!routable(Pending) && !routable(Snoozed) && !routable(Resolved));
        assert!(holds_slot(New) && holds_slot(Open) && holds_slot(Pending));
        assert!(!holds_slot(Snoozed) && !holds_slot(Resolved));
    }

    #[test]
    fn only_a_message_that_leaves_something_to_route_wants_routing() {
        use ConversationStatus::*;
        let unassigned = conversation(Open);
        let mut assigned = conversation(Open);
        assigned.assignee_id = Some(UserId::new());
        // A new request is routed whoever has the conversation, even one waiting.
        assert!(wants_routing(&assigned, true, false));
        assert!(wants_routing(&unassigned, true, true));
        // Otherwise only a routable conversation nobody has that is not waiting yet.
        assert!(wants_routing(&unassigned, false, false));
        assert!(wants_routing(&conversation(New), false, false));
        assert!(!wants_routing(&assigned, false, false));
        assert!(!wants_routing(&unassigned, false, true));
        for status in [Pending, Snoozed, Resolved] {
            assert!(!wants_routing(&conversation(status), false, false));
        }
    }
}
