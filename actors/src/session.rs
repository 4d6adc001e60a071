//! Sessions: one per open console socket and one per open widget visitor socket, each a small
//! actor of its own — a task with a bounded mailbox — rather than a framework actor, because ten
//! thousand idle consoles must cost little more than their sockets (a framework actor brings
//! four mailboxes and a task of its own besides the writer's). A session subscribes to its
//! client's publisher, replays the stored events after the socket's cursor (when it resumes),
//! then forwards live events — only those its audience may see, in seq order, each once. An
//! operator sees what `may_see` allows; a visitor sees only the messages (never notes) and
//! delivery statuses of their own conversation, and the operators' typing in it.
//!
//! The publisher never waits for a session: it offers each batch to the session's mailbox
//! (`session_queue` messages deep) and, when the mailbox is full, the consumer is too slow: the
//! session is closed with `slow_consumer` instead of buffered without bound, even while its
//! task is stuck writing to the socket. The task closes the sink whenever the session ends for
//! a reason — its handle dropped or closed, the publisher gone with a crashed client subtree —
//! so a console always learns it must reconnect.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use omnihub_core::access::{ConversationScope, Principal, may_see, may_see_in};
use omnihub_core::events::{EventKind, HubEvent};
use omnihub_core::{ChannelId, ConversationId, Role};
use tokio::sync::Notify;

use crate::hub::{CloseReason, ConversationScopeWithId, ServerPush, SessionSink, Typist};
use crate::publisher::BATCH;
use crate::shared::ClientCtx;

/// A replayed event may wait this long for the socket (a resuming console can be far behind,
/// and replay goes at the socket's pace) before the consumer counts as slow.
const REPLAY_WAIT: Duration = Duration::from_secs(10);

/// How long closing a sink may take before the session gives up on it.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the publisher hands a session.
#[derive(Clone)]
pub(crate) enum SessionMsg {
    Events(Arc<[Arc<HubEvent>]>),
    Typing {
        conversation: Arc<ConversationScopeWithId>,
        typist: Typist,
    },
    Push(ServerPush),
}

/// What the session's handle and its publisher share with the session's task: its principal,
/// its mailbox and why it ends. The mailbox is a plain queue under a lock, empty until used,
/// because an idle console should cost nothing for it.
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

pub(crate) struct SessionControl {
    audience: Mutex<Audience>,
    inner: Mutex<Mailbox>,
    /// Wakes the task for a new message or a close (a stored permit: never missed).
    wake: Notify,
    /// The seq of the last event the sink accepted: what a reconnecting console resumes after.
    pub(crate) last_seq: AtomicI64,
}

struct Mailbox {
    queue: VecDeque<SessionMsg>,
    capacity: usize,
    closing: Option<CloseReason>,
}

impl SessionControl {
    pub(crate) fn new(
        audience: Audience,
        resume_after: Option<i64>,
        capacity: usize,
    ) -> SessionControl {
        SessionControl {
            audience: Mutex::new(audience),
            inner: Mutex::new(Mailbox {
                queue: VecDeque::new(),
                capacity: capacity.max(1),
                closing: None,
            }),
            wake: Notify::new(),
            last_seq: AtomicI64::new(resume_after.unwrap_or(0)),
        }
    }

    fn mailbox(&self) -> MutexGuard<'_, Mailbox> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn audience(&self) -> MutexGuard<'_, Audience> {
        self.audience.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An operator's rights changed: filter from now on with these (visitors have none).
    pub(crate) fn set_principal(&self, principal: Arc<Principal>) {
        if let Audience::Operator(current) = &mut *self.audience() {
            *current = principal;
        }
    }

    /// Ends the session with `reason`; the first reason given wins.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut mailbox = self.mailbox();
        mailbox.closing.get_or_insert(reason);
        mailbox.queue = VecDeque::new();
        drop(mailbox);
        self.wake.notify_one();
    }

    pub(crate) fn is_over(&self) -> bool {
        self.mailbox().closing.is_some()
    }

    fn closing(&self) -> Option<CloseReason> {
        self.mailbox().closing
    }

    /// Queues `msg`; false when the session is over (closed, or just now found too slow: its
    /// mailbox is full).
    fn offer(&self, msg: SessionMsg) -> bool {
        let mut mailbox = self.mailbox();
        if mailbox.closing.is_some() {
            return false;
        }
        if mailbox.queue.len() >= mailbox.capacity {
            drop(mailbox);
            tracing::info!("console session fell behind; closing it");
            self.close(CloseReason::SlowConsumer);
            return false;
        }
        mailbox.queue.push_back(msg);
        drop(mailbox);
        self.wake.notify_one();
        true
    }

    /// The next message, or why the session ends.
    async fn next(&self) -> Result<SessionMsg, CloseReason> {
        loop {
            {
                let mut mailbox = self.mailbox();
                if let Some(reason) = mailbox.closing {
                    return Err(reason);
                }
                if let Some(msg) = mailbox.queue.pop_front() {
                    return Ok(msg);
                }
            }
            self.wake.notified().await;
        }
    }
}

/// The publisher's side of one session. When the publisher lets go of it (the client's
/// subtree stops or restarts), the session ends and its console resumes elsewhere.
pub(crate) struct SessionLink(pub(crate) Arc<SessionControl>);

impl SessionLink {
    pub(crate) fn offer(&self, msg: SessionMsg) -> bool {
        self.0.offer(msg)
    }
}

impl Drop for SessionLink {
    fn drop(&mut self) {
        self.0.close(CloseReason::Shutdown);
    }
}

/// Where a session starts: the publisher's position when it subscribed, and the console's
/// cursor when it resumes.
pub(crate) struct SessionStart {
    pub published: i64,
    pub resume_after: Option<i64>,
}

/// The session's task: replay, then live events, until the session ends; then the sink is
/// closed with the reason (unless the socket itself went away).
pub(crate) async fn run(
    ctx: ClientCtx,
    control: Arc<SessionControl>,
    sink: Arc<dyn SessionSink>,
    start: SessionStart,
) {
    let mut session = Running {
        ctx,
        control,
        sink,
        cursor: start.resume_after.unwrap_or(start.published),
    };
    let reason = session.serve(start).await;
    // However it ended, the publisher may forget it.
    session.control.close(CloseReason::Shutdown);
    if let Some(reason) = reason
        && tokio::time::timeout(CLOSE_WAIT, session.sink.close(reason))
            .await
            .is_err()
    {
        tracing::debug!("closing a console socket timed out");
    }
}

/// Why a push did not reach the socket.
enum Stop {
    /// Close the session with this reason.
    Close(CloseReason),
    /// The socket is gone: nobody to tell.
    Gone,
}

struct Running {
    ctx: ClientCtx,
    control: Arc<SessionControl>,
    sink: Arc<dyn SessionSink>,
    /// The highest seq dealt with (pushed, or skipped as not visible); live events at or below
    /// it were replayed already.
    cursor: i64,
}

impl Running {
    async fn serve(&mut self, start: SessionStart) -> Option<CloseReason> {
        match start.resume_after {
            Some(after) => {
                // Boxed: replay happens once, and an idle session should not carry its room.
                if let Err(stop) = Box::pin(self.replay(after)).await {
                    return self.stopped(stop);
                }
                // Nothing of this client lies between the replay's end and `published`: the
                // replay read everything committed, which includes all that was published.
                self.cursor = self.cursor.max(start.published);
            }
            // Nothing is queued yet, so a console that reconnects right away resumes here.
            None => {
                self.control
                    .last_seq
                    .fetch_max(start.published, Ordering::AcqRel);
            }
        }
        loop {
            let msg = match self.control.next().await {
                Ok(msg) => msg,
                Err(reason) => return Some(reason),
            };
            if let Err(stop) = self.deliver(msg).await {
                return self.stopped(stop);
            }
        }
    }

    fn stopped(&self, stop: Stop) -> Option<CloseReason> {
        match stop {
            Stop::Close(reason) => Some(self.control.closing().unwrap_or(reason)),
            Stop::Gone => None,
        }
    }

    async fn deliver(&mut self, msg: SessionMsg) -> Result<(), Stop> {
        match msg {
            SessionMsg::Events(batch) => {
                for event in batch.iter() {
                    if event.seq <= self.cursor {
                        continue;
                    }
                    self.cursor = event.seq;
                    let push = self.control.audience().push_for(event);
                    if let Some(push) = push {
                        self.send(push).await?;
                    }
                }
            }
            SessionMsg::Typing {
                conversation,
                typist,
            } => {
                let push = self.control.audience().typing(&conversation, typist);
                if let Some(push) = push {
                    self.send(push).await?;
                }
            }
            SessionMsg::Push(push) => {
                // Presence is the operators' business.
                let operator = matches!(*self.control.audience(), Audience::Operator(_));
                if operator {
                    self.send(push).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends one push; a close asked for meanwhile wins over a socket stuck in `send` (a stuck
    /// socket is exactly what a slow consumer looks like).
    async fn send(&self, push: ServerPush) -> Result<(), Stop> {
        let seq = match &push {
            ServerPush::Event(event) => Some(event.seq),
            ServerPush::Hidden { seq, .. } => Some(*seq),
            _ => None,
        };
        let send = self.sink.send(push);
        tokio::pin!(send);
        loop {
            tokio::select! {
                biased;
                () = self.control.wake.notified() => match self.control.closing() {
                    Some(reason) => return Err(Stop::Close(reason)),
                    None => continue,
                },
                sent = &mut send => {
                    sent.map_err(|_| Stop::Gone)?;
                    if let Some(seq) = seq {
                        self.control.last_seq.fetch_max(seq, Ordering::AcqRel);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Replays the stored events after `after` that the principal may see, at the socket's
    /// pace.
    async fn replay(&mut self, after: i64) -> Result<(), Stop> {
        let client = self.ctx.id();
        let mut cursor = after;
        loop {
            let events = match self.ctx.store().events_after(client, cursor, BATCH).await {
                Ok(events) => events,
                Err(err) => {
                    tracing::warn!(%client, error = %err, "session replay failed");
                    return Err(Stop::Close(CloseReason::Shutdown));
                }
            };
            let full = events.len() >= BATCH as usize;
            for event in events {
                cursor = event.seq;
                self.cursor = event.seq;
                let push = self.control.audience().push_for(&Arc::new(event));
                let Some(push) = push else {
                    continue;
                };
                match tokio::time::timeout(REPLAY_WAIT, self.send(push)).await {
                    Ok(sent) => sent?,
                    Err(_) => return Err(Stop::Close(CloseReason::SlowConsumer)),
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
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

    /// What this audience gets of an event: the event itself when it may see it; an operator
    /// who could see the conversation before the event moved it away is told to let it go.
    fn push_for(&mut self, event: &Arc<HubEvent>) -> Option<ServerPush> {
        if self.sees(event) {
            return Some(ServerPush::Event(event.clone()));
        }
        match self {
            Audience::Operator(principal) => {
                let before = event.previous_scope()?;
                may_see_in(principal, event.client_id, &before).then_some(ServerPush::Hidden {
                    seq: event.seq,
                    conversation_id: event.conversation_id?,
                })
            }
            Audience::Visitor { .. } => None,
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
    if event.kind == EventKind::Notification {
        // For the one employee it names, and nobody else.
        return principal.client_id == Some(event.client_id)
            && principal.client_active
            && event.assignee_id == Some(principal.user_id);
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;
    use omnihub_core::events::EventKind;
    use omnihub_core::{ChannelId, ChannelRights, ClientId, GlobalRights, GroupId};

    use omnihub_core::UserId;

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
    fn a_notification_goes_to_the_employee_it_names_only() {
        let client = ClientId::new();
        let channel = ChannelId::new();
        let me = employee(client, channel, vec![]);
        let mut owner = employee(client, channel, vec![]);
        owner.role = Role::ClientOwner;
        let mut note = event(client, None, Some(me.user_id), None);
        note.kind = EventKind::Notification;
        assert!(visible(&me, &note));
        assert!(!visible(&owner, &note), "not even the owner");
        note.assignee_id = Some(owner.user_id);
        assert!(!visible(&me, &note));
        assert!(visible(&owner, &note));
        note.client_id = ClientId::new();
        assert!(!visible(&owner, &note), "another client's");
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
