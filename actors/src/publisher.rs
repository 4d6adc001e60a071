//! The publisher: one per client. After any commit of the client's events — on this node, or
//! announced by `store.listen_events()` from any node — it reads the events after the last one
//! it published, in seq order, and hands each batch to every session of the client on this
//! node. This one path is how a message committed on node A reaches a console on node B, and
//! why local commits racing each other still reach consoles in order: nothing is pushed from
//! the committing call itself, only from the store's order.
//!
//! Wake-ups are coalesced (see `ClientEntry::wake`): a burst of commits costs one read per
//! batch of up to [`BATCH`] events, not one per commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use omnihub_core::events::HubEvent;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};

use crate::hub::{ConversationScopeWithId, ServerPush, Typist};
use crate::session::{SessionLink, SessionMsg};
use crate::shared::{ClientCtx, UNKNOWN_SEQ};

/// Events read per round trip.
pub(crate) const BATCH: u32 = 500;

/// After a failed read, the next try comes this much later.
const RETRY: Duration = Duration::from_millis(200);

pub(crate) struct Publisher;

pub(crate) enum PublisherMsg {
    /// Events were committed: read and broadcast everything new.
    Wake,
    /// A session starts listening; answers the seq after which it will receive every event.
    /// A session that ends is forgotten at the next offer.
    Subscribe(SessionLink, RpcReplyPort<i64>),
    /// An ephemeral push for every session of the client (presence).
    Push(ServerPush),
    /// A typing indicator, for the sessions that may see the conversation.
    Typing {
        conversation: Arc<ConversationScopeWithId>,
        typist: Typist,
    },
}

pub(crate) struct PublisherState {
    ctx: ClientCtx,
    sessions: Vec<SessionLink>,
    retry: Option<JoinHandle<Result<(), MessagingErr<PublisherMsg>>>>,
}

impl Actor for Publisher {
    type Msg = PublisherMsg;
    type State = PublisherState;
    type Arguments = ClientCtx;

    async fn pre_start(
        &self,
        _myself: ActorRef<PublisherMsg>,
        ctx: ClientCtx,
    ) -> Result<PublisherState, ActorProcessingErr> {
        if ctx.shared.hooks.client_crashes(ctx.id()) {
            return Err("injected crash of the client's publisher".into());
        }
        // The root set where publishing starts when it created the client's entry.
        if ctx.entry.last_published.load(Ordering::Acquire) == UNKNOWN_SEQ {
            return Err("the client's publishing position is unknown".into());
        }
        Ok(PublisherState {
            ctx,
            sessions: Vec::new(),
            retry: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<PublisherMsg>,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        // A wake-up queued at a previous incarnation died with it.
        state.ctx.entry.take_wake();
        myself.send_message(PublisherMsg::Wake)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PublisherMsg>,
        msg: PublisherMsg,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PublisherMsg::Wake => publish(&myself, state).await,
            PublisherMsg::Subscribe(session, reply) => {
                state.sessions.retain(|s| !s.0.is_over());
                state.sessions.push(session);
                let _ = reply.send(state.ctx.entry.last_published.load(Ordering::Acquire));
            }
            PublisherMsg::Push(push) => offer_all(state, &SessionMsg::Push(push)),
            PublisherMsg::Typing {
                conversation,
                typist,
            } => {
                offer_all(
                    state,
                    &SessionMsg::Typing {
                        conversation,
                        typist,
                    },
                );
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PublisherMsg>,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.retry.take() {
            timer.abort();
        }
        Ok(())
    }
}

async fn publish(myself: &ActorRef<PublisherMsg>, state: &mut PublisherState) {
    if state.ctx.shared.hooks.client_crashes(state.ctx.id()) {
        panic!("injected crash of the client's publisher");
    }
    let entry = state.ctx.entry.clone();
    // Taken before reading: a commit from now on queues another wake-up, so nothing committed
    // after this read is left unpublished.
    entry.take_wake();
    loop {
        let after = entry.last_published.load(Ordering::Acquire);
        state.sessions.retain(|s| !s.0.is_over());
        if state.sessions.is_empty() {
            // Nobody on this node listens, so there is nothing to read: skipping to the head
            // is publishing to nobody. A session that subscribes later gets every event after
            // that point, and older ones from the store by its resume cursor, as before.
            match state
                .ctx
                .store()
                .last_client_event_seq(state.ctx.id())
                .await
            {
                Ok(Some(head)) if head > after => {
                    entry.last_published.store(head, Ordering::Release);
                }
                Ok(_) => {}
                Err(err) => retry_later(myself, state, &err),
            }
            return;
        }
        let events = match state
            .ctx
            .store()
            .events_after(state.ctx.id(), after, BATCH)
            .await
        {
            Ok(events) => events,
            Err(err) => {
                retry_later(myself, state, &err);
                return;
            }
        };
        let Some(last) = events.last().map(|e| e.seq) else {
            return;
        };
        let full = events.len() >= BATCH as usize;
        let batch: Arc<[Arc<HubEvent>]> = events.into_iter().map(Arc::new).collect();
        offer_all(state, &SessionMsg::Events(batch));
        entry.last_published.store(last, Ordering::Release);
        if !full {
            return;
        }
    }
}

/// Reading the store failed. Not a failure of the actor: a database hiccup must not burn the
/// client's restart budget. Try again shortly.
fn retry_later(
    myself: &ActorRef<PublisherMsg>,
    state: &mut PublisherState,
    err: &omnihub_store::StoreError,
) {
    tracing::warn!(client = %state.ctx.id(), error = %err, "reading events failed");
    if state.retry.as_ref().is_none_or(|t| t.is_finished()) {
        state.retry = Some(myself.send_after(RETRY, || PublisherMsg::Wake));
    }
}

/// Offers `msg` to every session; one that has ended (or is found too slow now) is forgotten.
fn offer_all(state: &mut PublisherState, msg: &SessionMsg) {
    state.sessions.retain(|s| s.offer(msg.clone()));
}
