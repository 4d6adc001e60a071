//! Operator-session actors: one per open console socket. A session subscribes to its client's
//! publisher, replays the stored events after the console's cursor (when it resumes), then
//! forwards live events — only those its principal may see, in seq order, each once.
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
use omnihub_core::events::HubEvent;
use omnihub_core::{Role, UserId};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};

use crate::hub::{CloseReason, ConversationScopeWithId, ServerPush, SessionSink};
use crate::publisher::{BATCH, PublisherMsg};
use crate::shared::{CALL_TIMEOUT, ClientCtx};

/// A replayed event may wait this long for room in the queue (a resuming console can be far
/// behind, and replay goes at the socket's pace) before the consumer counts as slow.
const REPLAY_WAIT: Duration = Duration::from_secs(10);

/// How long closing a sink may take before the writer gives up on it.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Session;

pub(crate) struct SessionArgs {
    pub principal: Arc<Principal>,
    pub sink: Arc<dyn SessionSink>,
    pub resume_after: Option<i64>,
    /// Shared with the `SessionHandle`: the last seq the sink accepted.
    pub last_seq: Arc<AtomicI64>,
}

pub(crate) enum SessionMsg {
    Events(Arc<[Arc<HubEvent>]>),
    Typing {
        conversation: Arc<ConversationScopeWithId>,
        user: UserId,
    },
    Push(ServerPush),
    UpdatePrincipal(Arc<Principal>),
    Close(CloseReason),
    /// The writer found the socket gone.
    SinkGone,
}

pub(crate) struct SessionState {
    ctx: ClientCtx,
    principal: Arc<Principal>,
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
            principal: args.principal,
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
                    if visible(&state.principal, event)
                        && !offer(&myself, state, ServerPush::Event(event.clone()))
                    {
                        return Ok(());
                    }
                }
            }
            SessionMsg::Typing { conversation, user } => {
                if user != state.principal.user_id && may_see(&state.principal, &conversation.scope)
                {
                    offer(
                        &myself,
                        state,
                        ServerPush::Typing {
                            conversation_id: conversation.conversation_id,
                            user_id: user,
                        },
                    );
                }
            }
            SessionMsg::Push(push) => {
                offer(&myself, state, push);
            }
            SessionMsg::UpdatePrincipal(principal) => state.principal = principal,
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
            if !visible(&state.principal, &event) {
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
            tracing::info!(
                user = %state.principal.user_id,
                "console session fell behind; closing it"
            );
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
