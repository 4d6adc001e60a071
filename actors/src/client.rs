//! The client supervisor: one per client, a child of the root, started on the client's first
//! use and kept. It owns the client's publisher and router (the subtree's core: if either
//! goes down the supervisor fails too, and the root restarts the whole subtree under its
//! restart policy, giving up on this client alone when it keeps failing), and starts on demand
//! the conversation actors (stopped again when idle; one that crashes is simply started again
//! by the next request, and the router re-checks its conversation) and the channel-account
//! actors (restarted with back-off; given up on per channel). Operator sessions hang on the
//! publisher: they end with it, so a restarted subtree sends every console to resume.
//!
//! Requests for a conversation or a channel come through here, so that starting an actor and
//! sending it its first message cannot race with another request or with its idle stop.

use std::collections::HashMap;
use std::time::Instant;

use omnihub_core::{ChannelId, ConversationId};
use omnihub_store::StoreError;
use ractor::concurrency::JoinHandle;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, MessagingErr, SupervisionEvent,
};

use crate::channel::{ChannelActor, ChannelArgs, ChannelMsg, PENDING_LIMIT};
use crate::conversation::{ConversationActor, ConversationArgs, ConversationMsg};
use crate::publisher::{Publisher, PublisherMsg};
use crate::restart::{Decision, RestartPolicy};
use crate::router::{Router, RouterMsg};
use crate::shared::{ClientCtx, ClientRefs};

/// How long a stopping client supervisor waits for its children.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

pub(crate) struct ClientSup;

pub(crate) enum ClientMsg {
    Conversation(ConversationId, ConversationMsg),
    Channel(ChannelId, ChannelMsg),
    /// A conversation actor has been idle; stop it unless it was replaced already.
    ConversationIdle(ConversationId, ActorId),
    /// A channel actor's back-off is over.
    RestartChannel(ChannelId),
    /// Hand every pending outbound message to its channel's actor (at start).
    ResendPending,
}

pub(crate) struct ClientState {
    ctx: ClientCtx,
    publisher: ActorRef<PublisherMsg>,
    router: ActorRef<RouterMsg>,
    conversations: HashMap<ConversationId, ActorRef<ConversationMsg>>,
    conversation_ids: HashMap<ActorId, ConversationId>,
    channels: HashMap<ChannelId, ChannelSlot>,
    channel_ids: HashMap<ActorId, ChannelId>,
    /// Template of each channel's own policy.
    policy: RestartPolicy,
}

struct ChannelSlot {
    actor: Option<ActorRef<ChannelMsg>>,
    policy: RestartPolicy,
    failed: bool,
    /// Messages that arrived while the actor was waiting out its back-off.
    backlog: Vec<ChannelMsg>,
    timer: Option<JoinHandle<Result<(), MessagingErr<ClientMsg>>>>,
}

impl Actor for ClientSup {
    type Msg = ClientMsg;
    type State = ClientState;
    type Arguments = ClientCtx;

    async fn pre_start(
        &self,
        myself: ActorRef<ClientMsg>,
        ctx: ClientCtx,
    ) -> Result<ClientState, ActorProcessingErr> {
        let cell = myself.get_cell();
        let (publisher, _) =
            Actor::spawn_linked(None, Publisher, ctx.clone(), cell.clone()).await?;
        let (router, _) = Actor::spawn_linked(None, Router, ctx.clone(), cell).await?;
        // Registered before the root reports this subtree running, so callers find it whole.
        ctx.entry.set_refs(Some(ClientRefs {
            sup: myself.clone(),
            publisher: publisher.clone(),
            router: router.clone(),
        }));
        Ok(ClientState {
            ctx,
            publisher,
            router,
            conversations: HashMap::new(),
            conversation_ids: HashMap::new(),
            channels: HashMap::new(),
            channel_ids: HashMap::new(),
            policy: RestartPolicy::default(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<ClientMsg>,
        _state: &mut ClientState,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_message(ClientMsg::ResendPending)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ClientMsg>,
        msg: ClientMsg,
        state: &mut ClientState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClientMsg::Conversation(id, msg) => {
                let actor = match state.conversations.get(&id) {
                    Some(actor) => actor.clone(),
                    None => {
                        let args = ConversationArgs {
                            ctx: state.ctx.clone(),
                            id,
                        };
                        match Actor::spawn_linked(None, ConversationActor, args, myself.get_cell())
                            .await
                        {
                            Ok((actor, _)) => {
                                state.conversations.insert(id, actor.clone());
                                state.conversation_ids.insert(actor.get_id(), id);
                                actor
                            }
                            Err(err) => {
                                // The request's reply port is dropped with `msg`: the caller
                                // gets `Unavailable`.
                                tracing::error!(conversation = %id, error = %err, "conversation actor did not start");
                                return Ok(());
                            }
                        }
                    }
                };
                let _ = actor.send_message(msg);
            }
            ClientMsg::Channel(id, msg) => channel_send(&myself, state, id, msg).await,
            ClientMsg::ConversationIdle(id, actor_id) => {
                if let Some(actor) = state.conversations.get(&id)
                    && actor.get_id() == actor_id
                {
                    // Forgotten first, so the next request starts a new actor; the old one
                    // finishes what is already in its mailbox, then stops.
                    if let Some(actor) = state.conversations.remove(&id) {
                        let _ = actor.drain();
                    }
                }
            }
            ClientMsg::RestartChannel(id) => {
                let backlog = match state.channels.get_mut(&id) {
                    Some(slot) if slot.actor.is_none() && !slot.failed => {
                        slot.timer = None;
                        std::mem::take(&mut slot.backlog)
                    }
                    _ => return Ok(()),
                };
                if spawn_channel(&myself, state, id, true).await {
                    for msg in backlog {
                        channel_send(&myself, state, id, msg).await;
                    }
                }
            }
            ClientMsg::ResendPending => {
                if let Err(err) = resend_pending(&myself, state).await {
                    tracing::warn!(client = %state.ctx.id(), error = %err, "resending pending messages failed; retrying");
                    myself.send_after(std::time::Duration::from_secs(2), || {
                        ClientMsg::ResendPending
                    });
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ClientMsg>,
        event: SupervisionEvent,
        state: &mut ClientState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason, failed): (ActorCell, String, bool) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}"), true),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "stopped: {}",
                    reason.as_deref().unwrap_or("no reason given")
                ),
                false,
            ),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        if id == state.publisher.get_id() || id == state.router.get_id() {
            // The subtree's core: let the root restart all of it.
            return Err(format!("client core actor went down ({reason})").into());
        }
        if let Some(conversation) = state.conversation_ids.remove(&id) {
            if state
                .conversations
                .get(&conversation)
                .is_some_and(|a| a.get_id() == id)
            {
                state.conversations.remove(&conversation);
            }
            if failed {
                tracing::warn!(%conversation, %reason, "conversation actor crashed");
                // Whatever it was doing, the store has the truth: let the router look again.
                state.ctx.entry.route(conversation, None);
            }
            return Ok(());
        }
        if let Some(channel) = state.channel_ids.remove(&id) {
            channel_down(&myself, state, channel, reason);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<ClientMsg>,
        state: &mut ClientState,
    ) -> Result<(), ActorProcessingErr> {
        for slot in state.channels.values_mut() {
            if let Some(timer) = slot.timer.take() {
                timer.abort();
            }
        }
        // Let children finish their current message (a send, a commit) and close their
        // sockets with a reason; whatever is left after the grace is killed with us.
        myself
            .stop_children_and_wait(Some("client subtree stopping".into()), Some(STOP_GRACE))
            .await;
        Ok(())
    }
}

async fn channel_send(
    myself: &ActorRef<ClientMsg>,
    state: &mut ClientState,
    id: ChannelId,
    msg: ChannelMsg,
) {
    match state.channels.get_mut(&id) {
        Some(slot) if slot.failed => {
            // Stays pending in the store; sent after the hub's next start.
            tracing::debug!(channel = %id, "channel was given up on; message kept pending");
        }
        Some(slot) => match &slot.actor {
            Some(actor) => {
                let _ = actor.send_message(msg);
            }
            None => slot.backlog.push(msg),
        },
        None => {
            state.channels.insert(
                id,
                ChannelSlot {
                    actor: None,
                    policy: state.policy.clone(),
                    failed: false,
                    backlog: Vec::new(),
                    timer: None,
                },
            );
            if spawn_channel(myself, state, id, false).await
                && let Some(actor) = state.channels.get(&id).and_then(|s| s.actor.clone())
            {
                let _ = actor.send_message(msg);
            }
        }
    }
}

async fn spawn_channel(
    myself: &ActorRef<ClientMsg>,
    state: &mut ClientState,
    id: ChannelId,
    load_pending: bool,
) -> bool {
    let args = ChannelArgs {
        ctx: state.ctx.clone(),
        channel: id,
        load_pending,
    };
    match Actor::spawn_linked(None, ChannelActor, args, myself.get_cell()).await {
        Ok((actor, _)) => {
            state.channel_ids.insert(actor.get_id(), id);
            if let Some(slot) = state.channels.get_mut(&id) {
                slot.actor = Some(actor);
            }
            true
        }
        Err(err) => {
            channel_down(myself, state, id, format!("start failed: {err}"));
            false
        }
    }
}

fn channel_down(
    myself: &ActorRef<ClientMsg>,
    state: &mut ClientState,
    id: ChannelId,
    reason: String,
) {
    let Some(slot) = state.channels.get_mut(&id) else {
        return;
    };
    slot.actor = None;
    match slot.policy.on_failure(Instant::now()) {
        Decision::RestartAfter(delay) => {
            tracing::warn!(channel = %id, %reason, "channel actor went down; restarting after back-off");
            slot.timer = Some(myself.send_after(delay, move || ClientMsg::RestartChannel(id)));
        }
        Decision::GiveUp => {
            tracing::error!(channel = %id, %reason, "channel actor failed too often; giving up on it");
            slot.failed = true;
            slot.backlog.clear();
            state.ctx.entry.set_channel_failed(id, true);
        }
    }
}

/// Hands every pending outbound message of the client to its channel's actor: what a crash
/// or a restart of the node left unsent goes out now, with its original key.
async fn resend_pending(
    myself: &ActorRef<ClientMsg>,
    state: &mut ClientState,
) -> Result<(), StoreError> {
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let pending = store.pending_outbound(client, PENDING_LIMIT).await?;
    if pending.is_empty() {
        return Ok(());
    }
    tracing::info!(%client, count = pending.len(), "resending pending outbound messages");
    let mut channels: HashMap<ConversationId, ChannelId> = HashMap::new();
    for message in pending {
        let channel = match channels.get(&message.conversation_id) {
            Some(c) => *c,
            None => match store
                .get_conversation(client, message.conversation_id)
                .await
            {
                Ok(c) => {
                    channels.insert(c.id, c.channel_id);
                    c.channel_id
                }
                Err(StoreError::NotFound) => continue,
                Err(err) => return Err(err),
            },
        };
        channel_send(myself, state, channel, ChannelMsg::Send(Box::new(message))).await;
    }
    Ok(())
}
