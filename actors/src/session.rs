//! Session actors: one per open console socket, and one per open widget visitor socket. A
//! session subscribes to its client's publisher, replays the stored events after the socket's
//! cursor (when it resumes), then forwards live events — only those its audience may see, in
//! seq order, each once. An operator sees what `may_see` allows; a visitor sees only the
//! messages (never notes) and delivery statuses of their own conversation, and the operators'
//! typing in it.
//!
//! The actor never waits for the socket. It puts pushes into a bounded queue (`session_queue`)
//! drained by a writer task that awaits the sink; when the queue is full the consumer is too
//! slow, and the session is closed with `slow_consumer` instead of buffering without bound.
//! The writer also closes the sink when the actor goes away for any reason — even when it is
//! killed along with a crashed client subtree — so a console always learns it must reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use omnihub_core::access::{ConversationScope, Principal, may_see, may_see_in};
use omnihub_core::events::{EventKind, HubEvent};
use omnihub_core::{ChannelId, ConversationId, Role};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};

use crate::hub::{CloseReason, ConversationScopeWithId, ServerPush, SessionSink, Typist};
use crate::publisher::{BATCH, PublisherMsg};
use crate::shared::{CALL_TIMEOUT, ClientCtx};

/// A replayed event may wait this long for room in the queue (a resuming console can be far
/// behind, and replay goes at the socket's pace) before the consumer counts as slow.
const REPLAY_WAIT: Duration = Duration::from_secs(10);

/// How long closing a sink may take before the writer gives up on it.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Session;

/// Who a session is for.
pub(crate) enum Audience {
    Operator(Arc<Principal>),
    /// A widget visitor: their conversation is the one of `channel` whose external id is
    /// `external_id`; its id is learned from the first event about it (the conversation may
    /// not exist yet when the socket opens).
    Visitor {
        channel: ChannelId,
        external_id: String,
        conversation: Option<ConversationId>,
    },
}

pub(crate) struct SessionArgs {
    pub audience: Audience,
    pub sink: Arc<dyn SessionSink>,
    pub resume_after: Option<i64>,
    /// Shared with the `SessionHandle`: the last seq the sink accepted.
    pub last_seq: Arc<AtomicI64>,
}

pub(crate) enum SessionMsg {
    Events(Arc<[Arc<HubEvent>]>),
    Typing {
        conversation: Arc<ConversationScopeWithId>,
        typist: Typist,
    },
    Push(ServerPush),
    UpdatePrincipal(Arc<Principal>),
    Close(CloseReason),
    /// The writer found the socket gone.
    SinkGone,
}

pub(crate) struct SessionState {
    ctx: ClientCtx,
    audience: Audience,
    resume_after: Option<i64>,
    /// The highest seq dealt with (pushed, or skipped as not visible); live events at or below
    /// it were replayed already.
    cursor: i64,
    /// The publisher's position when this session subscribed.
    published: i64,
    queue: mpsc::Sender<ServerPush>,
    close: Option<oneshot::Sender<CloseReason>>,
}

impl Actor for Session {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = (ClientCtx, SessionArgs);

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        (ctx, args): (ClientCtx, SessionArgs),
    ) -> Result<SessionState, ActorProcessingErr> {
        // Subscribed before `open_session` returns, so every event committed after that
        // reaches this session. Subscribe first, replay second (in post_start): every event
        // after `published` comes live, and every event up to it is committed, so the replay
        // sees it. Together they miss nothing.
        let refs = ctx
            .entry
            .refs()
            .ok_or("the client's subtree is restarting")?;
        let published = match refs
            .publisher
            .call(
                |reply| PublisherMsg::Subscribe(myself.clone(), reply),
                Some(CALL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(seq)) => seq,
            _ => return Err("the client's publisher did not answer".into()),
        };
        let (queue, rx) = mpsc::channel(ctx.shared.config.session_queue.max(1));
        let (close, close_rx) = oneshot::channel();
        tokio::spawn(writer(
            args.sink,
            rx,
            close_rx,
            args.last_seq.clone(),
            myself,
        ));
        let cursor = match args.resume_after {
            Some(after) => after,
            None => {
                // Nothing is queued yet, so a console that reconnects right away resumes here.
                args.last_seq.fetch_max(published, Ordering::AcqRel);
                published
            }
        };
        Ok(SessionState {
            ctx,
            audience: args.audience,
            resume_after: args.resume_after,
            published,
            cursor,
            queue,
            close: Some(close),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(after) = state.resume_after {
            if let Err(reason) = replay(state, after).await {
                close(&myself, state, reason);
                return Ok(());
            }
            // Nothing of this client lies between the replay's end and `published`: the
            // replay read everything committed, which includes all that was published.
            state.cursor = state.cursor.max(state.published);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if state.close.is_none() {
            return Ok(());
        }
        match msg {
            SessionMsg::Events(batch) => {
                for event in batch.iter() {
                    if event.seq <= state.cursor {
                        continue;
                    }
                    state.cursor = event.seq;
                    if state.audience.sees(event)
                        && !offer(&myself, state, ServerPush::Event(event.clone()))
                    {
                        return Ok(());
                    }
                }
            }
            SessionMsg::Typing {
                conversation,
                typist,
            } => {
                if let Some(push) = state.audience.typing(&conversation, typist) {
                    offer(&myself, state, push);
                }
            }
            SessionMsg::Push(push) => {
                // Presence is the operators' business.
                if matches!(state.audience, Audience::Operator(_)) {
                    offer(&myself, state, push);
                }
            }
            SessionMsg::UpdatePrincipal(principal) => {
                if let Audience::Operator(current) = &mut state.audience {
                    *current = principal;
                }
            }
            SessionMsg::Close(reason) => close(&myself, state, reason),
            SessionMsg::SinkGone => {
                state.close = None;
                myself.stop(Some("socket gone".into()));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(close) = state.close.take() {
            let _ = close.send(CloseReason::Shutdown);
        }
        if let Some(refs) = state.ctx.entry.refs() {
            let _ = refs
                .publisher
                .cast(PublisherMsg::Unsubscribe(myself.get_id()));
        }
        Ok(())
    }
}

/// Replays the stored events after `after` that the principal may see, at the socket's pace.
async fn replay(state: &mut SessionState, after: i64) -> Result<(), CloseReason> {
    let client = state.ctx.id();
    let mut cursor = after;
    loop {
        let events = match state.ctx.store().events_after(client, cursor, BATCH).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(%client, error = %err, "session replay failed");
                return Err(CloseReason::Shutdown);
            }
        };
        let full = events.len() >= BATCH as usize;
        for event in events {
            cursor = event.seq;
            state.cursor = event.seq;
            if !state.audience.sees(&event) {
                continue;
            }
            match tokio::time::timeout(
                REPLAY_WAIT,
                state.queue.send(ServerPush::Event(Arc::new(event))),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(CloseReason::Shutdown),
                Err(_) => return Err(CloseReason::SlowConsumer),
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Queues one push; a full queue closes the session as a slow consumer. False when the
/// session is closing.
fn offer(myself: &ActorRef<SessionMsg>, state: &mut SessionState, push: ServerPush) -> bool {
    match state.queue.try_send(push) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            match &state.audience {
                Audience::Operator(p) => {
                    tracing::info!(user = %p.user_id, "console session fell behind; closing it");
                }
                Audience::Visitor { external_id, .. } => {
                    tracing::info!(visitor = %external_id, "visitor session fell behind; closing it");
                }
            }
            close(myself, state, CloseReason::SlowConsumer);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            state.close = None;
            myself.stop(Some("writer gone".into()));
            false
        }
    }
}

fn close(myself: &ActorRef<SessionMsg>, state: &mut SessionState, reason: CloseReason) {
    if let Some(close) = state.close.take() {
        let _ = close.send(reason);
    }
    myself.stop(Some(format!("closed: {}", reason.as_str())));
}

impl Audience {
    /// Whether the event goes to this audience. A visitor's check learns their conversation's
    /// id from the first message event that names the conversation by its external id.
    fn sees(&mut self, event: &HubEvent) -> bool {
        match self {
            Audience::Operator(principal) => visible(principal, event),
            Audience::Visitor {
                channel,
                external_id,
                conversation,
            } => {
                if event.channel_id != Some(*channel) {
                    return false;
                }
                if conversation.is_none()
                    && event.kind == EventKind::MessageCreated
                    && event.payload["conversation"]["external_id"].as_str()
                        == Some(external_id.as_str())
                {
                    *conversation = event.conversation_id;
                }
                conversation.is_some()
                    && event.conversation_id == *conversation
                    && visitor_may_see(event)
            }
        }
    }

    /// What this audience is told of someone typing, if anything.
    fn typing(&self, conversation: &ConversationScopeWithId, typist: Typist) -> Option<ServerPush> {
        match (self, typist) {
            (Audience::Operator(principal), Typist::Operator(user)) => (user != principal.user_id
                && may_see(principal, &conversation.scope))
            .then_some(ServerPush::Typing {
                conversation_id: conversation.conversation_id,
                user_id: user,
            }),
            (Audience::Operator(principal), Typist::Contact) => {
                may_see(principal, &conversation.scope).then_some(ServerPush::ContactTyping {
                    conversation_id: conversation.conversation_id,
                })
            }
            (
                Audience::Visitor {
                    conversation: mine, ..
                },
                Typist::Operator(user),
            ) => (*mine == Some(conversation.conversation_id)).then_some(ServerPush::Typing {
                conversation_id: conversation.conversation_id,
                user_id: user,
            }),
            (Audience::Visitor { .. }, Typist::Contact) => None,
        }
    }
}

/// Which events of their own conversation a visitor gets: messages that are not internal
/// notes, and the delivery statuses of those.
pub(crate) fn visitor_may_see(event: &HubEvent) -> bool {
    matches!(
        event.kind,
        EventKind::MessageCreated | EventKind::MessageStatus
    ) && event.payload["kind"].as_str() != Some("note")
}

/// Whether a principal may see an event: same client, and `may_see` on the conversation as it
/// was after the change. An event about no channel has no conversation to judge by; only the
/// client's owners get those.
pub(crate) fn visible(principal: &Principal, event: &HubEvent) -> bool {
    match event.channel_id {
        Some(channel_id) => may_see_in(
            principal,
            event.client_id,
            &ConversationScope {
                channel_id,
                assignee_id: event.assignee_id,
                group_id: event.group_id,
            },
        ),
        None => {
            principal.client_id == Some(event.client_id)
                && principal.client_active
                && principal.role == Role::ClientOwner
        }
    }
}

/// Drains the session's queue into the sink, one push at a time, until the session closes
/// (then the sink is closed with the reason) or the socket goes away.
async fn writer(
    sink: Arc<dyn SessionSink>,
    mut queue: mpsc::Receiver<ServerPush>,
    mut close: oneshot::Receiver<CloseReason>,
    last_seq: Arc<AtomicI64>,
    session: ActorRef<SessionMsg>,
) {
    let reason = loop {
        let push = tokio::select! {
            biased;
            // An error means the actor is gone without saying why (killed with its subtree).
            reason = &mut close => break reason.unwrap_or(CloseReason::Shutdown),
            push = queue.recv() => match push {
                Some(push) => push,
                None => break CloseReason::Shutdown,
            },
        };
        let seq = match &push {
            ServerPush::Event(event) => Some(event.seq),
            _ => None,
        };
        tokio::select! {
            biased;
            // A sink stuck in `send` is exactly what a slow consumer looks like: the close
            // must not wait for it.
            reason = &mut close => break reason.unwrap_or(CloseReason::Shutdown),
            sent = sink.send(push) => match sent {
                Ok(()) => {
                    if let Some(seq) = seq {
                        last_seq.fetch_max(seq, Ordering::AcqRel);
                    }
                }
                Err(_) => {
                    let _ = session.cast(SessionMsg::SinkGone);
                    return;
                }
            },
        }
    };
    drop(queue);
    if tokio::time::timeout(CLOSE_WAIT, sink.close(reason))
        .await
        .is_err()
    {
        tracing::debug!("closing a console socket timed out");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use omnihub_core::UserId;

    use chrono::Utc;
    use omnihub_core::events::EventKind;
    use omnihub_core::{ChannelId, ChannelRights, ClientId, GlobalRights, GroupId};

    use super::*;

    fn employee(client: ClientId, channel: ChannelId, groups: Vec<GroupId>) -> Principal {
        Principal {
            user_id: UserId::new(),
            role: Role::Employee,
            client_id: Some(client),
            client_active: true,
            global: GlobalRights::empty(),
            channels: HashMap::from([(channel, ChannelRights::READ)]),
            groups,
        }
    }

    fn event(
        client: ClientId,
        channel: Option<ChannelId>,
        assignee: Option<UserId>,
        group: Option<GroupId>,
    ) -> HubEvent {
        HubEvent {
            seq: 1,
            client_id: client,
            conversation_id: None,
            channel_id: channel,
            assignee_id: assignee,
            group_id: group,
            kind: EventKind::MessageCreated,
            payload: serde_json::Value::Null,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn events_are_filtered_like_conversations() {
        let client = ClientId::new();
        let channel = ChannelId::new();
        let group = GroupId::new();
        let me = employee(client, channel, vec![group]);
        let other = UserId::new();
        // The pool, mine, my group's: yes.
        assert!(visible(&me, &event(client, Some(channel), None, None)));
        assert!(visible(
            &me,
            &event(client, Some(channel), Some(me.user_id), None)
        ));
        assert!(visible(
            &me,
            &event(client, Some(channel), Some(other), Some(group))
        ));
        // Someone else's, a channel I do not read, another client's: no.
        assert!(!visible(
            &me,
            &event(client, Some(channel), Some(other), None)
        ));
        assert!(!visible(
            &me,
            &event(client, Some(ChannelId::new()), None, None)
        ));
        assert!(!visible(
            &me,
            &event(ClientId::new(), Some(channel), None, None)
        ));
        // An event about no conversation: the owner only.
        assert!(!visible(&me, &event(client, None, None, None)));
        let owner = Principal {
            role: Role::ClientOwner,
            ..employee(client, channel, vec![])
        };
        assert!(visible(&owner, &event(client, None, None, None)));
        assert!(!visible(&owner, &event(ClientId::new(), None, None, None)));
        assert!(visible(
            &owner,
            &event(client, Some(ChannelId::new()), Some(other), None)
        ));
    }
}
