//! The router: one per client. Decisions are pure functions of `omnihub_core::routing` over
//! the store's `routing_snapshot`; this actor only gathers their inputs, applies the result,
//! and serializes a client's routing on this node.
//!
//! - A conversation's group is its own `group_id`, else its channel's `settings.group_id`.
//!   With a group, the candidates are the group's members; without one, every operator. In
//!   both cases only operators with READ on the channel (owners always have it) are
//!   considered: nobody is handed a conversation they cannot open.
//! - Assigning uses `only_if_unassigned`, so two nodes (or a supervisor's manual assignment)
//!   never assign one conversation twice; the loser simply moves on.
//! - When nobody can take a conversation it is enqueued (idempotently, keeping its place);
//!   whenever capacity may have freed (a resolve, an operator coming online, a transfer) the
//!   queue is drained in FIFO order: each waiting conversation, oldest first, goes to whoever
//!   the group's mode picks among those who can take it now.
//! - A new request gets the group's auto-reply: new or returning customer × open or closed
//!   per the group's working hours, sent as an `auto_reply` outbound message.
//! - At start the router reconciles with the store: it drains the queue and routes every
//!   unassigned conversation that wants an operator, so work lost with a crashed actor or a
//!   restarted node is picked up again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use omnihub_core::model::{Conversation, ConversationStatus, DeliveryStatus, MessageKind};
use omnihub_core::routing::{Candidate, RoutingMode, auto_reply, can_take, pick};
use omnihub_core::{ChannelId, ChannelRights, ConversationId, GroupId, Role, UserId};
use omnihub_store::{
    ConversationFilter, ConversationPatch, GroupRouting, NewOutbound, RoutingSnapshot, StoreError,
};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

use crate::conversation::routable;
use crate::shared::ClientCtx;

/// Who may read a channel is cached this long per channel (rights change rarely; a change is
/// seen by routing within this time).
const READERS_TTL: Duration = Duration::from_secs(10);

/// After a store error, the router reconciles again this much later.
const RETRY: Duration = Duration::from_secs(2);

/// The mode for conversations that belong to no group.
const DEFAULT_MODE: RoutingMode = RoutingMode::RoundRobin;

/// Unassigned conversations looked at per status when reconciling.
const RECONCILE_LIMIT: u32 = 500;

pub(crate) struct Router;

#[derive(Debug)]
pub(crate) enum RouterMsg {
    /// Look at every conversation pending in the client entry (`ClientEntry::route`), with one
    /// read of the routing state; each carries, when its message opened a new request, whether
    /// the customer is returning (the auto-reply's input).
    RoutePending,
    /// Capacity may have freed: hand queued conversations to whoever can take them.
    Drain,
    /// Drain, then route every unassigned conversation that wants an operator.
    Reconcile,
    /// An operator changed (came online, changed capacity): forget who may read which
    /// channel, so a just-granted operator is considered at once.
    ForgetReaders,
}

pub(crate) struct RouterState {
    ctx: ClientCtx,
    readers: HashMap<ChannelId, (Instant, HashSet<UserId>)>,
    retry: Option<JoinHandle<Result<(), MessagingErr<RouterMsg>>>>,
}

impl Actor for Router {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = ClientCtx;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        ctx: ClientCtx,
    ) -> Result<RouterState, ActorProcessingErr> {
        Ok(RouterState {
            ctx,
            readers: HashMap::new(),
            retry: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RouterMsg>,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        // Whatever was asked of a previous incarnation is covered by the reconciliation.
        state.ctx.entry.take_drain();
        state.ctx.entry.take_routes();
        myself.send_message(RouterMsg::Reconcile)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        let result = match msg {
            RouterMsg::RoutePending => {
                let pending = state.ctx.entry.take_routes();
                route_all(state, pending).await
            }
            RouterMsg::Drain => {
                state.ctx.entry.take_drain();
                drain(state).await
            }
            RouterMsg::Reconcile => reconcile(state).await,
            RouterMsg::ForgetReaders => {
                state.readers.clear();
                Ok(())
            }
        };
        if let Err(err) = result {
            // A database hiccup is not a failure of the router: the store still holds every
            // conversation, so a reconciliation a little later catches up.
            tracing::warn!(client = %state.ctx.id(), error = %err, "routing failed; retrying");
            if state.retry.as_ref().is_none_or(|t| t.is_finished()) {
                state.retry = Some(myself.send_after(RETRY, || RouterMsg::Reconcile));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RouterMsg>,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.retry.take() {
            timer.abort();
        }
        Ok(())
    }
}

/// Routes conversations in order against one read of the routing state; a waiting
/// conversation that is already queued keeps its place, and the queue is drained once at the end.
async fn route_all(
    state: &mut RouterState,
    pending: Vec<(ConversationId, Option<bool>)>,
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut snapshot = state.ctx.store().routing_snapshot(state.ctx.id()).await?;
    let mut queued: HashSet<ConversationId> =
        snapshot.queue.iter().map(|q| q.conversation_id).collect();
    let mut drain_after = false;
    for (id, new_request) in pending {
        drain_after |= route(state, id, new_request, &mut snapshot, &mut queued).await?;
    }
    if drain_after {
        drain_with(state, &mut snapshot).await?;
    }
    Ok(())
}

/// Looks at one conversation: the auto-reply of a new request, then an operator or the queue.
/// True when it was already waiting in the queue, which a drain then serves in order.
async fn route(
    state: &mut RouterState,
    id: ConversationId,
    new_request: Option<bool>,
    snapshot: &mut RoutingSnapshot,
    queued: &mut HashSet<ConversationId>,
) -> Result<bool, StoreError> {
    if new_request.is_none() && queued.contains(&id) {
        // Already waiting, and no auto-reply is due: only its turn matters, and the drain
        // reads it again when it comes (skipping it if it was taken or closed meanwhile).
        // A customer writing again into a waiting conversation costs no reads.
        return Ok(true);
    }
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let conversation = match store.get_conversation(client, id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(false),
        Err(err) => return Err(err),
    };
    let group = group_of(state, &conversation, snapshot).await?;
    if let Some(returning) = new_request
        && let Some(routing) = group.and_then(|g| group_routing(snapshot, g))
    {
        send_auto_reply(state, &conversation, routing, returning).await?;
    }
    if conversation.assignee_id.is_some() || !routable(conversation.status) {
        return Ok(false);
    }
    if queued.contains(&id) {
        // It waits its turn: a drain hands out the queue in order.
        return Ok(true);
    }
    if !assign(state, &conversation, group, snapshot).await? {
        store.enqueue(client, id, group).await?;
        queued.insert(id);
        tracing::debug!(%client, conversation = %id, "nobody free; conversation queued");
    }
    Ok(false)
}

async fn drain(state: &mut RouterState) -> Result<(), StoreError> {
    let mut snapshot = state.ctx.store().routing_snapshot(state.ctx.id()).await?;
    drain_with(state, &mut snapshot).await
}

/// Hands queued conversations out, oldest first, as long as anyone can take one.
async fn drain_with(
    state: &mut RouterState,
    snapshot: &mut RoutingSnapshot,
) -> Result<(), StoreError> {
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let queue = std::mem::take(&mut snapshot.queue);
    for entry in queue {
        if !snapshot.operators.iter().any(|o| {
            can_take(&Candidate {
                user_id: o.user_id,
                presence: o.presence,
                accepting_new: o.accepting_new,
                capacity: o.capacity,
                active: o.active,
                competency: 1,
                last_assigned_at: o.last_assigned_at,
            })
        }) {
            break;
        }
        let conversation = match store.get_conversation(client, entry.conversation_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                store.dequeue(client, entry.conversation_id).await?;
                continue;
            }
            Err(err) => return Err(err),
        };
        if conversation.assignee_id.is_some() || !routable(conversation.status) {
            // Taken by hand, resolved or snoozed while waiting.
            store.dequeue(client, entry.conversation_id).await?;
            continue;
        }
        let group = group_of(state, &conversation, snapshot).await?;
        assign(state, &conversation, group, snapshot).await?;
    }
    Ok(())
}

async fn reconcile(state: &mut RouterState) -> Result<(), StoreError> {
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    drain(state).await?;
    let queued: HashSet<ConversationId> = store
        .routing_snapshot(client)
        .await?
        .queue
        .iter()
        .map(|q| q.conversation_id)
        .collect();
    let mut waiting = Vec::new();
    for status in [ConversationStatus::New, ConversationStatus::Open] {
        let filter = ConversationFilter {
            unassigned: true,
            status: Some(status),
            limit: RECONCILE_LIMIT,
            ..ConversationFilter::default()
        };
        // No viewer: unread counters do not matter to routing.
        for summary in store.list_conversations(client, None, &filter).await? {
            let c = summary.conversation;
            if c.assignee_id.is_none() && !queued.contains(&c.id) {
                waiting.push(c);
            }
        }
    }
    // Oldest first, so the queue they may end up in keeps their order.
    waiting.sort_by_key(|c| (c.last_message_at, c.id));
    route_all(state, waiting.into_iter().map(|c| (c.id, None)).collect()).await
}

/// Tries to assign; true when the conversation is no longer waiting (assigned by us, or by
/// someone else first).
async fn assign(
    state: &mut RouterState,
    conversation: &Conversation,
    group: Option<GroupId>,
    snapshot: &mut RoutingSnapshot,
) -> Result<bool, StoreError> {
    let client = state.ctx.id();
    let readers = readers(state, conversation.channel_id).await?;
    let mode = group
        .and_then(|g| group_routing(snapshot, g))
        .map_or(DEFAULT_MODE, |r| r.mode);
    let found = candidates(snapshot, group, &readers);
    let Some(user) = pick(mode, &found) else {
        return Ok(false);
    };
    let patch = ConversationPatch {
        assignee_id: Some(Some(user)),
        // Routed through the channel's group: the conversation joins it (group visibility).
        group_id: match (conversation.group_id, group) {
            (None, Some(g)) => Some(Some(g)),
            _ => None,
        },
        only_if_unassigned: true,
        ..ConversationPatch::default()
    };
    let store = state.ctx.store().clone();
    match store
        .update_conversation(client, conversation.id, &patch)
        .await
    {
        Ok(_) => {
            state.ctx.entry.wake();
            if let Some(op) = snapshot.operators.iter_mut().find(|o| o.user_id == user) {
                op.active = op.active.saturating_add(1);
                op.last_assigned_at = Some(Utc::now());
            }
            tracing::debug!(%client, conversation = %conversation.id, %user, "assigned");
        }
        // Someone assigned it first (another node, a supervisor): not ours to place.
        Err(StoreError::Conflict(_)) => {}
        Err(err) => return Err(err),
    }
    store.dequeue(client, conversation.id).await?;
    Ok(true)
}

/// The group a conversation is routed in: its own, else its channel's `settings.group_id`;
/// a group that no longer exists counts as none.
async fn group_of(
    state: &RouterState,
    conversation: &Conversation,
    snapshot: &RoutingSnapshot,
) -> Result<Option<GroupId>, StoreError> {
    let group = match conversation.group_id {
        Some(g) => Some(g),
        None => {
            let channel = state
                .ctx
                .store()
                .get_channel(state.ctx.id(), conversation.channel_id)
                .await?;
            channel_group(&channel.settings)
        }
    };
    Ok(group.filter(|g| snapshot.groups.iter().any(|(grp, _, _)| grp.id == *g)))
}

fn group_routing(snapshot: &RoutingSnapshot, group: GroupId) -> Option<&GroupRouting> {
    snapshot
        .groups
        .iter()
        .find(|(g, _, _)| g.id == group)
        .map(|(_, r, _)| r)
}

/// A channel's routing group from its settings (`"group_id": "<uuid>"`).
pub(crate) fn channel_group(settings: &serde_json::Value) -> Option<GroupId> {
    settings.get("group_id")?.as_str()?.parse().ok()
}

/// The operators routing may hand a conversation to, with their state as of the snapshot:
/// the group's members (with their competency in it) or, without a group, every operator
/// (with their best competency anywhere, 1 when in no group); either way only those in
/// `readers`. Operators the store has no routing state for have never been online.
pub(crate) fn candidates(
    snapshot: &RoutingSnapshot,
    group: Option<GroupId>,
    readers: &HashSet<UserId>,
) -> Vec<Candidate> {
    let competency: HashMap<UserId, u8> =
        match group.and_then(|g| snapshot.groups.iter().find(|(grp, _, _)| grp.id == g)) {
            Some((_, _, members)) => members.iter().map(|m| (m.user_id, m.competency)).collect(),
            None => {
                let mut best: HashMap<UserId, u8> =
                    snapshot.operators.iter().map(|o| (o.user_id, 1)).collect();
                for (_, _, members) in &snapshot.groups {
                    for m in members {
                        let c = best.entry(m.user_id).or_insert(1);
                        *c = (*c).max(m.competency);
                    }
                }
                best
            }
        };
    snapshot
        .operators
        .iter()
        .filter(|o| readers.contains(&o.user_id))
        .filter_map(|o| {
            let competency = *competency.get(&o.user_id)?;
            Some(Candidate {
                user_id: o.user_id,
                presence: o.presence,
                accepting_new: o.accepting_new,
                capacity: o.capacity,
                active: o.active,
                competency,
                last_assigned_at: o.last_assigned_at,
            })
        })
        .collect()
}

/// Everyone who may read a channel: the client's owners, and employees with READ on it.
async fn readers(
    state: &mut RouterState,
    channel: ChannelId,
) -> Result<HashSet<UserId>, StoreError> {
    if let Some((at, readers)) = state.readers.get(&channel)
        && at.elapsed() < READERS_TTL
    {
        return Ok(readers.clone());
    }
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let mut readers = HashSet::new();
    for user in store.list_client_users(client).await? {
        if user.disabled {
            continue;
        }
        let reads = match user.role {
            Role::ClientOwner => true,
            Role::Employee => store
                .channel_grants(client, user.id)
                .await?
                .iter()
                .any(|g| g.channel_id == channel && g.rights.contains(ChannelRights::READ)),
            _ => false,
        };
        if reads {
            readers.insert(user.id);
        }
    }
    state
        .readers
        .insert(channel, (Instant::now(), readers.clone()));
    Ok(readers)
}

async fn send_auto_reply(
    state: &RouterState,
    conversation: &Conversation,
    routing: &GroupRouting,
    returning: bool,
) -> Result<(), StoreError> {
    let now = Utc::now();
    // Hours that cannot be evaluated (an unknown time zone slipped past validation) count as
    // open: a wrong "we are closed" is worse than a missing one.
    let open = routing.hours.is_open(now).unwrap_or(true);
    let Some(text) = auto_reply(&routing.auto_replies, returning, open) else {
        return Ok(());
    };
    let client = state.ctx.id();
    let store = state.ctx.store();
    let text = if text.contains("{{") {
        let contact = store.get_contact(client, conversation.contact_id).await?;
        let company = store.get_client(client).await?;
        let vars = [
            ("contact.name".to_string(), contact.name),
            ("client.name".to_string(), company.name),
            (
                "conversation.request_no".to_string(),
                conversation.request_no.to_string(),
            ),
        ]
        .into_iter()
        .collect();
        match omnihub_core::conversation::render_template(text, &vars) {
            Ok(text) => text,
            Err(err) => {
                // Better no greeting than one with a hole in it.
                tracing::warn!(%client, error = %err, "auto-reply template cannot be filled; not sent");
                return Ok(());
            }
        }
    } else {
        text.to_string()
    };
    let (message, event) = store
        .add_outbound(&NewOutbound {
            client_id: client,
            conversation_id: conversation.id,
            author_id: None,
            kind: MessageKind::AutoReply,
            text,
            // One auto-reply per request, however often the request is routed.
            idempotency_key: format!("auto-reply:{}", conversation.request_no),
            attachments: Vec::new(),
        })
        .await?;
    if event.is_some() {
        state.ctx.entry.wake();
    }
    if message.status == DeliveryStatus::Pending {
        state
            .ctx
            .entry
            .send_outbound(conversation.channel_id, message);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use omnihub_core::ClientId;
    use omnihub_core::model::Group;
    use omnihub_core::routing::{AutoReplies, Presence, WeeklyHours};
    use omnihub_store::{OperatorState, RoutingMember};

    fn op(user: UserId, presence: Presence, active: u32) -> OperatorState {
        OperatorState {
            user_id: user,
            presence,
            accepting_new: true,
            capacity: 3,
            active,
            last_assigned_at: None,
        }
    }

    fn group(id: GroupId, members: &[(UserId, u8)]) -> (Group, GroupRouting, Vec<RoutingMember>) {
        (
            Group {
                id,
                client_id: ClientId::new(),
                name: "support".into(),
                member_ids: members.iter().map(|(u, _)| *u).collect(),
                created_at: Utc::now(),
            },
            GroupRouting {
                mode: RoutingMode::MostSkilled,
                hours: WeeklyHours::default(),
                auto_replies: AutoReplies::default(),
            },
            members
                .iter()
                .map(|(u, c)| RoutingMember {
                    user_id: *u,
                    competency: *c,
                })
                .collect(),
        )
    }

    #[test]
    fn group_candidates_are_members_who_can_read_the_channel() {
        let (a, b, c, d) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
        let g = GroupId::new();
        let snapshot = RoutingSnapshot {
            groups: vec![group(g, &[(a, 90), (b, 40), (d, 70)])],
            // d is a member who was never online: no routing state, no candidate.
            operators: vec![
                op(a, Presence::Online, 0),
                op(b, Presence::Away, 1),
                op(c, Presence::Online, 0),
            ],
            queue: vec![],
        };
        let readers: HashSet<_> = [a, b, c, d].into_iter().collect();
        let found = candidates(&snapshot, Some(g), &readers);
        let got: Vec<_> = found.iter().map(|c| (c.user_id, c.competency)).collect();
        assert_eq!(got, vec![(a, 90), (b, 40)]);
        assert_eq!(found[1].presence, Presence::Away);

        // Without READ on the channel, even a member is left out.
        let readers: HashSet<_> = [b].into_iter().collect();
        let got: Vec<_> = candidates(&snapshot, Some(g), &readers)
            .iter()
            .map(|c| c.user_id)
            .collect();
        assert_eq!(got, vec![b]);
    }

    #[test]
    fn without_a_group_every_reader_is_a_candidate_with_their_best_competency() {
        let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
        let snapshot = RoutingSnapshot {
            groups: vec![
                group(GroupId::new(), &[(a, 30)]),
                group(GroupId::new(), &[(a, 80), (b, 20)]),
            ],
            operators: vec![
                op(a, Presence::Online, 0),
                op(b, Presence::Online, 0),
                op(c, Presence::Online, 0),
            ],
            queue: vec![],
        };
        let readers: HashSet<_> = [a, b, c].into_iter().collect();
        let got: Vec<_> = candidates(&snapshot, None, &readers)
            .iter()
            .map(|c| (c.user_id, c.competency))
            .collect();
        assert_eq!(got, vec![(a, 80), (b, 20), (c, 1)]);
        // An unknown group behaves like none.
        assert_eq!(
            candidates(&snapshot, Some(GroupId::new()), &readers).len(),
            3
        );
    }

    #[test]
    fn channel_group_comes_from_settings() {
        let g = GroupId::new();
        assert_eq!(
            channel_group(&serde_json::json!({"group_id": g.to_string()})),
            Some(g)
        );
        assert_eq!(channel_group(&serde_json::json!({})), None);
        assert_eq!(
            channel_group(&serde_json::json!({"group_id": "nope"})),
            None
        );
        assert_eq!(channel_group(&serde_json::json!({"group_id": 5})), None);
        assert_eq!(channel_group(&serde_json::Value::Null), None);
    }
}
