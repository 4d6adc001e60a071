//! Channel-account actors: one per connected channel (bot, number, mailbox, API endpoint).
//! Each sends its channel's committed, pending outbound messages through the provider's
//! connector, one at a time and in order, with the message's idempotency key:
//!
//! - a per-channel rate limit (GCRA through `governor`), from the channel's settings
//!   `send_rate_per_second` and `send_burst` (fractions allowed), whose defaults are the
//!   provider's documented limits (Telegram 30/s, MAX 30/s, VK 20/s; 20/s otherwise);
//! - a per-chat limit where the provider has one (Telegram: 1 message per second per chat),
//!   from `chat_rate_per_second` / `chat_burst`: a message to a chat that must wait does not
//!   hold up messages to other chats, and each chat's messages keep their order;
//! - a per-group limit where the provider has one (Telegram: 20 messages a minute in a group),
//!   from `group_rate_per_minute` / `group_burst`, which replaces the per-chat one for
//!   group chats (told by the conversation's provider id);
//! - a transient failure pauses the channel (the provider is limiting or down, so the next
//!   message would fare no better) for the provider's `Retry-After`, else an exponential
//!   back-off, and retries the same message with the same key; after [`MAX_ATTEMPTS`] it is
//!   marked failed;
//! - a permanent failure marks the message `failed` with the provider's reason;
//! - a customer who blocked the bot or unsubscribed (the provider says so) marks the message
//!   `failed` with `blocked_by_user: <the provider's words>` and the conversation blocked;
//!   later messages to it fail the same way without asking the provider, until the customer
//!   writes again (which clears the mark);
//! - on a restart the actor reloads its channel's pending messages from the store, and a new
//!   client subtree resends all of them: an actor's crash or a node's restart loses nothing,
//!   and the key makes the resend the same send on the provider's side.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use omnihub_connectors::api::ApiChannel;
use omnihub_connectors::registry::{self, Endpoints};
use omnihub_connectors::social;
use omnihub_connectors::widget::WidgetChannel;
use omnihub_connectors::{OutboundAttachment, OutboundChannel, OutboundMessage, SendError};
use omnihub_core::media::AttachmentState;
use omnihub_core::model::{Channel, ChannelKind, DeliveryStatus, Message, Provider};
use omnihub_core::{ChannelId, ConversationId, MessageId};
use omnihub_store::StoreError;
use omnihub_store::media::{MediaError, read_all};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

use crate::shared::ClientCtx;

/// The code a failed message's reason starts with when the customer blocked the bot.
pub(crate) const BLOCKED_BY_USER: &str = "blocked_by_user";
/// Sends of one message before it is marked failed.
pub(crate) const MAX_ATTEMPTS: u32 = 10;
/// The longest pause after a transient failure, whatever the provider asked for.
const MAX_PAUSE: Duration = Duration::from_secs(3600);
/// The channel's settings and credentials are read again after this long.
const CONFIG_TTL: Duration = Duration::from_secs(30);
/// After a store error, the channel tries again this much later.
const STORE_RETRY: Duration = Duration::from_secs(2);
/// Pending messages read at a (re)start.
pub(crate) const PENDING_LIMIT: u32 = 1000;

const DEFAULT_RATE: f64 = 20.0;
/// How long the public link of an outgoing file works: the provider fetches it when the
/// message is sent, and again while delivering to a device that was offline.
const MEDIA_LINK_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

pub(crate) struct ChannelActor;

pub(crate) struct ChannelArgs {
    pub ctx: ClientCtx,
    pub channel: ChannelId,
    /// Read this channel's pending messages from the store at start (after a crash).
    pub load_pending: bool,
}

pub(crate) enum ChannelMsg {
    Send(Box<Message>),
    Pump,
    LoadPending,
}

struct Job {
    message: Message,
    attempts: u32,
}

struct Config {
    loaded_at: Instant,
    connector: Result<Arc<dyn OutboundChannel>, SendError>,
    /// The provider allows free-form replies only for a while after the customer's last
    /// message (WhatsApp): each send needs that time.
    reply_window: bool,
    limits: Limits,
    limiter: Arc<DefaultDirectRateLimiter>,
    per_chat: Option<Arc<DefaultKeyedRateLimiter<ConversationId>>>,
    per_group: Option<Arc<DefaultKeyedRateLimiter<ConversationId>>>,
    provider: Provider,
}

/// A channel's send limits: overall, per chat where the provider limits chats, and per group
/// chat where groups have a stricter limit of their own (which then replaces the chat's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub overall: Quota,
    pub per_chat: Option<Quota>,
    pub per_group: Option<Quota>,
}

pub(crate) struct ChannelState {
    ctx: ClientCtx,
    channel: ChannelId,
    config: Option<Config>,
    /// Conversation id → the provider's id for it; never changes.
    external: HashMap<ConversationId, String>,
    queue: VecDeque<Job>,
    queued: HashSet<MessageId>,
    paused_until: Option<Instant>,
    timer: Option<JoinHandle<Result<(), MessagingErr<ChannelMsg>>>>,
    pump_queued: bool,
}

impl Actor for ChannelActor {
    type Msg = ChannelMsg;
    type State = ChannelState;
    type Arguments = ChannelArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ChannelMsg>,
        args: ChannelArgs,
    ) -> Result<ChannelState, ActorProcessingErr> {
        if args.load_pending {
            myself.send_message(ChannelMsg::LoadPending)?;
        }
        Ok(ChannelState {
            ctx: args.ctx,
            channel: args.channel,
            config: None,
            external: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            paused_until: None,
            timer: None,
            pump_queued: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ChannelMsg>,
        msg: ChannelMsg,
        state: &mut ChannelState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ChannelMsg::Send(message) => {
                enqueue(state, *message);
                kick(&myself, state);
            }
            ChannelMsg::LoadPending => {
                if let Err(err) = load_pending(state).await {
                    tracing::warn!(channel = %state.channel, error = %err, "reading pending messages failed");
                    state.timer = Some(myself.send_after(STORE_RETRY, || ChannelMsg::LoadPending));
                }
                kick(&myself, state);
            }
            ChannelMsg::Pump => {
                state.pump_queued = false;
                pump(&myself, state).await;
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ChannelMsg>,
        state: &mut ChannelState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }
}

fn enqueue(state: &mut ChannelState, message: Message) {
    // A message can be handed over twice (a retried reply, the resend at start); it is sent
    // once from here, and the provider dedupes on the key anyway.
    if message.status == DeliveryStatus::Pending && state.queued.insert(message.id) {
        state.queue.push_back(Job {
            message,
            attempts: 0,
        });
    }
}

fn kick(myself: &ActorRef<ChannelMsg>, state: &mut ChannelState) {
    if !state.pump_queued && !state.queue.is_empty() {
        state.pump_queued = myself.send_message(ChannelMsg::Pump).is_ok();
    }
}

fn pause(myself: &ActorRef<ChannelMsg>, state: &mut ChannelState, wait: Duration) {
    state.paused_until = Some(Instant::now() + wait);
    if let Some(timer) = state.timer.take() {
        timer.abort();
    }
    state.timer = Some(myself.send_after(wait, || ChannelMsg::Pump));
}

async fn load_pending(state: &mut ChannelState) -> Result<(), StoreError> {
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    for message in store.pending_outbound(client, PENDING_LIMIT).await? {
        let conversation = match store
            .get_conversation(client, message.conversation_id)
            .await
        {
            Ok(c) => c,
            Err(StoreError::NotFound) => continue,
            Err(err) => return Err(err),
        };
        if conversation.channel_id == state.channel {
            state
                .external
                .insert(conversation.id, conversation.external_id);
            enqueue(state, message);
        }
    }
    Ok(())
}

/// Sends the message at the head of the queue, if the channel is not paused or limited.
async fn pump(myself: &ActorRef<ChannelMsg>, state: &mut ChannelState) {
    if let Some(until) = state.paused_until {
        if Instant::now() < until {
            return; // the timer set with the pause pumps again
        }
        state.paused_until = None;
    }
    if state.queue.is_empty() {
        return;
    }
    if let Err(err) = load_config(state).await {
        tracing::warn!(channel = %state.channel, error = %err, "reading the channel failed");
        pause(myself, state, STORE_RETRY);
        return;
    }
    let Some(config) = state.config.as_ref() else {
        return;
    };
    if let Err(not_until) = config.limiter.check() {
        let wait = not_until.wait_time_from(config.limiter.clock().now());
        pause(myself, state, wait);
        return;
    }
    let connector = config.connector.clone();
    let reply_window = config.reply_window;
    let (per_chat, per_group, provider) = (
        config.per_chat.clone(),
        config.per_group.clone(),
        config.provider,
    );
    if per_chat.is_some() || per_group.is_some() {
        // Which queued conversations are group chats: known from their provider ids.
        let mut groups = HashSet::new();
        if per_group.is_some() {
            let conversations: HashSet<ConversationId> = state
                .queue
                .iter()
                .map(|job| job.message.conversation_id)
                .collect();
            for conversation in conversations {
                match external_id(state, conversation).await {
                    Ok(Some(external)) if is_group_chat(provider, &external) => {
                        groups.insert(conversation);
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(channel = %state.channel, error = %err, "reading a conversation failed");
                        pause(myself, state, STORE_RETRY);
                        return;
                    }
                }
            }
        }
        let limiter_for = |conversation: ConversationId| {
            if groups.contains(&conversation) {
                per_group.as_deref()
            } else {
                per_chat.as_deref()
            }
        };
        if let Err(wait) = next_free_chat(&mut state.queue, limiter_for) {
            pause(myself, state, wait);
            return;
        }
    }
    let Some(job) = state.queue.front() else {
        return;
    };
    let message = job.message.clone();
    let external = match send_target(state, message.conversation_id).await {
        Ok(Some(Target::Blocked(reason))) => {
            // Refused by the provider before: fail fast until the customer writes again.
            let reason = blocked_reason(&reason);
            finish(state, DeliveryStatus::Failed, Some(&reason), None).await;
            kick(myself, state);
            return;
        }
        Ok(Some(Target::Open(external))) => external,
        Ok(None) => {
            finish(
                state,
                DeliveryStatus::Failed,
                Some("the conversation no longer exists"),
                None,
            )
            .await;
            kick(myself, state);
            return;
        }
        Err(err) => {
            tracing::warn!(channel = %state.channel, error = %err, "reading the conversation failed");
            pause(myself, state, STORE_RETRY);
            return;
        }
    };
    let mut outbound = OutboundMessage::text(
        message.id,
        external,
        message.text.clone(),
        message
            .idempotency_key
            .clone()
            .unwrap_or_else(|| message.id.to_string()),
    );
    match attachments(state, &message).await {
        Ok(files) => outbound.attachments = files,
        Err(AttachmentError::Refused(reason)) => {
            finish(state, DeliveryStatus::Failed, Some(&reason), None).await;
            kick(myself, state);
            return;
        }
        Err(AttachmentError::Unavailable(reason)) => {
            tracing::warn!(channel = %state.channel, message = %message.id, %reason, "reading an attachment failed");
            pause(myself, state, STORE_RETRY);
            return;
        }
    }
    if reply_window {
        match state
            .ctx
            .store()
            .last_inbound_at(state.ctx.id(), message.conversation_id)
            .await
        {
            Ok(at) => outbound.last_inbound_at = at,
            Err(err) => {
                tracing::warn!(channel = %state.channel, error = %err, "reading the conversation failed");
                pause(myself, state, STORE_RETRY);
                return;
            }
        }
    }
    let outcome = match connector {
        Ok(connector) => connector.send(&outbound).await,
        Err(err) => Err(err),
    };
    match outcome {
        Ok(receipt) => {
            finish(
                state,
                DeliveryStatus::Sent,
                None,
                receipt.provider_message_id.as_deref(),
            )
            .await;
        }
        Err(SendError::Permanent { reason }) => {
            tracing::info!(channel = %state.channel, message = %message.id, %reason, "provider refused a message");
            finish(state, DeliveryStatus::Failed, Some(&reason), None).await;
        }
        Err(SendError::Blocked { reason }) => {
            tracing::info!(channel = %state.channel, message = %message.id, %reason, "the customer blocked the bot");
            mark_blocked(state, message.conversation_id, &reason).await;
            finish(
                state,
                DeliveryStatus::Failed,
                Some(&blocked_reason(&reason)),
                None,
            )
            .await;
        }
        Err(SendError::Transient {
            retry_after,
            reason,
        }) => {
            let attempts = state.queue.front_mut().map_or(MAX_ATTEMPTS, |job| {
                job.attempts += 1;
                job.attempts
            });
            if attempts >= MAX_ATTEMPTS {
                tracing::warn!(channel = %state.channel, message = %message.id, %reason, "giving up on a message");
                finish(state, DeliveryStatus::Failed, Some(&reason), None).await;
            } else {
                let wait = retry_delay(attempts, retry_after);
                tracing::info!(
                    channel = %state.channel,
                    message = %message.id,
                    %reason,
                    attempts,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "send failed; retrying"
                );
                pause(myself, state, wait);
                return;
            }
        }
    }
    kick(myself, state);
}

enum AttachmentError {
    /// The file cannot be sent, ever (gone, not ready, too large): the message fails.
    Refused(String),
    /// The media store is not reachable now: try again later.
    Unavailable(String),
}

/// The message's files, read from the media store for the connector.
async fn attachments(
    state: &ChannelState,
    message: &Message,
) -> Result<Vec<OutboundAttachment>, AttachmentError> {
    if message.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let config = &state.ctx.shared.config;
    let Some(media) = config.media.as_ref() else {
        return Err(AttachmentError::Refused(
            "media storage is not configured".into(),
        ));
    };
    let mut files = Vec::with_capacity(message.attachments.len());
    for attachment in &message.attachments {
        let stored = match state
            .ctx
            .store()
            .get_attachment(state.ctx.id(), attachment.id)
            .await
        {
            Ok(stored) => stored,
            Err(StoreError::NotFound) => {
                return Err(AttachmentError::Refused(format!(
                    "the file {:?} no longer exists",
                    attachment.file_name
                )));
            }
            Err(err) => return Err(AttachmentError::Unavailable(err.to_string())),
        };
        let Some(key) = stored
            .storage_key
            .filter(|_| stored.attachment.state == AttachmentState::Ready)
        else {
            return Err(AttachmentError::Refused(format!(
                "the file {:?} is not stored",
                attachment.file_name
            )));
        };
        let bytes = match read_all(media.as_ref(), &key, config.max_attachment_bytes).await {
            Ok(bytes) => bytes,
            Err(MediaError::NotFound) => {
                return Err(AttachmentError::Refused(format!(
                    "the file {:?} is missing from the media storage",
                    attachment.file_name
                )));
            }
            Err(MediaError::TooLarge { limit }) => {
                return Err(AttachmentError::Refused(format!(
                    "the file {:?} is larger than {limit} bytes",
                    attachment.file_name
                )));
            }
            Err(err) => return Err(AttachmentError::Unavailable(err.to_string())),
        };
        let public_url = config.media_links.as_ref().map(|links| {
            links.url(
                state.ctx.id(),
                attachment.id,
                &stored.attachment.file_name,
                chrono::Utc::now() + MEDIA_LINK_TTL,
            )
        });
        files.push(OutboundAttachment {
            file_name: stored.attachment.file_name,
            mime_type: stored.attachment.mime_type,
            bytes: bytes.into(),
            public_url,
        });
    }
    Ok(files)
}

/// Records the outcome of the head message and drops it from the queue.
/// Brings to the front the first queued message whose chat may take one now (the first of its
/// chat, so each chat's order holds), taking that chat's turn; or says how long until one may.
/// `limiter_for` names the limiter a chat counts against (none: no limit of its own).
fn next_free_chat<'a>(
    queue: &mut VecDeque<Job>,
    limiter_for: impl Fn(ConversationId) -> Option<&'a DefaultKeyedRateLimiter<ConversationId>>,
) -> Result<(), Duration> {
    let mut seen = HashSet::new();
    let mut soonest: Option<Duration> = None;
    for (i, job) in queue.iter().enumerate() {
        let chat = job.message.conversation_id;
        if !seen.insert(chat) {
            continue;
        }
        let Some(limiter) = limiter_for(chat) else {
            if let Some(job) = queue.remove(i) {
                queue.push_front(job);
            }
            return Ok(());
        };
        let now = limiter.clock().now();
        match limiter.check_key(&chat) {
            Ok(()) => {
                if let Some(job) = queue.remove(i) {
                    queue.push_front(job);
                }
                return Ok(());
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(now);
                soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
            }
        }
    }
    Err(soonest.unwrap_or(Duration::from_millis(50)))
}

async fn finish(
    state: &mut ChannelState,
    status: DeliveryStatus,
    reason: Option<&str>,
    provider_message_id: Option<&str>,
) {
    let Some(job) = state.queue.pop_front() else {
        return;
    };
    state.queued.remove(&job.message.id);
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let mut tries = 0;
    let mut provider_message_id = provider_message_id;
    loop {
        match store
            .set_delivery(client, job.message.id, status, reason, provider_message_id)
            .await
        {
            // Another message of the channel already has that provider id: the connector's ids
            // are not unique. The send happened; record it without the id rather than leave it
            // pending to be sent again.
            Err(StoreError::Conflict(_)) if provider_message_id.is_some() => {
                tracing::warn!(message = %job.message.id, provider_message_id, "the provider's message id is taken; recorded without it");
                provider_message_id = None;
            }
            Ok((_, event)) => {
                if event.is_some() {
                    state.ctx.entry.wake();
                }
                return;
            }
            Err(err) if tries < 3 => {
                tries += 1;
                tracing::warn!(message = %job.message.id, error = %err, "recording a delivery status failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
            Err(err) => {
                // The message stays pending in the store and is sent again (same key) after
                // the next start.
                tracing::error!(message = %job.message.id, error = %err, "could not record a delivery status");
                return;
            }
        }
    }
}

/// A failed message's reason when the customer blocked the bot: the machine code first (the
/// console translates it), then the provider's words.
fn blocked_reason(words: &str) -> String {
    format!("{BLOCKED_BY_USER}: {words}")
}

/// Marks the conversation blocked so later sends fail fast; a store error only costs that
/// (the next send asks the provider again).
async fn mark_blocked(state: &ChannelState, conversation: ConversationId, words: &str) {
    match state
        .ctx
        .store()
        .set_blocked(state.ctx.id(), conversation, Some(words))
        .await
    {
        Ok((_, Some(_))) => state.ctx.entry.wake(),
        Ok((_, None)) => {}
        Err(err) => {
            tracing::warn!(channel = %state.channel, %conversation, error = %err, "marking a conversation blocked failed");
        }
    }
}

/// Where a message goes: the conversation's provider id, or why it cannot go.
enum Target {
    Open(String),
    /// The customer blocked the bot; the provider's words.
    Blocked(String),
}

/// The conversation as it is now (it may have been blocked or unblocked since the last send);
/// `None` when it no longer exists.
async fn send_target(
    state: &mut ChannelState,
    conversation: ConversationId,
) -> Result<Option<Target>, StoreError> {
    match state
        .ctx
        .store()
        .get_conversation(state.ctx.id(), conversation)
        .await
    {
        Ok(c) => {
            state.external.insert(conversation, c.external_id.clone());
            Ok(Some(match (c.blocked_at, c.blocked_reason) {
                (Some(_), reason) => Target::Blocked(reason.unwrap_or_default()),
                (None, _) => Target::Open(c.external_id),
            }))
        }
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err),
    }
}

async fn external_id(
    state: &mut ChannelState,
    conversation: ConversationId,
) -> Result<Option<String>, StoreError> {
    if let Some(external) = state.external.get(&conversation) {
        return Ok(Some(external.clone()));
    }
    match state
        .ctx
        .store()
        .get_conversation(state.ctx.id(), conversation)
        .await
    {
        Ok(c) => {
            state.external.insert(conversation, c.external_id.clone());
            Ok(Some(c.external_id))
        }
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Reads the channel's settings and credentials when not loaded or older than the TTL. The
/// rate limiter is kept across reloads unless the quota changed, so a reload never grants a
/// fresh burst.
async fn load_config(state: &mut ChannelState) -> Result<(), StoreError> {
    if state
        .config
        .as_ref()
        .is_some_and(|c| c.loaded_at.elapsed() < CONFIG_TTL)
    {
        return Ok(());
    }
    let client = state.ctx.id();
    let store = state.ctx.store().clone();
    let (connector, limits, reply_window, provider) =
        match store.get_channel(client, state.channel).await {
            Ok(channel) => {
                let credentials = store.channel_credentials(client, state.channel).await?;
                (
                    connector(
                        &channel,
                        credentials.as_ref(),
                        &state.ctx.shared.config.endpoints,
                    ),
                    limits(channel.provider, &channel.settings),
                    channel.provider == Provider::Whatsapp,
                    channel.provider,
                )
            }
            Err(StoreError::NotFound) => (
                Err(SendError::Permanent {
                    reason: "the channel was removed".into(),
                }),
                limits(Provider::Api, &serde_json::Value::Null),
                false,
                Provider::Api,
            ),
            Err(err) => return Err(err),
        };
    // Unchanged limits keep their limiters, so a reload does not hand out a fresh burst.
    let (limiter, per_chat, per_group) = match state.config.take() {
        Some(old) if old.limits == limits => (old.limiter, old.per_chat, old.per_group),
        _ => (
            Arc::new(RateLimiter::direct(limits.overall)),
            limits.per_chat.map(|q| Arc::new(RateLimiter::keyed(q))),
            limits.per_group.map(|q| Arc::new(RateLimiter::keyed(q))),
        ),
    };
    state.config = Some(Config {
        loaded_at: Instant::now(),
        connector,
        reply_window,
        limits,
        limiter,
        per_chat,
        per_group,
        provider,
    });
    Ok(())
}

/// The connector for a channel's provider.
fn connector(
    channel: &Channel,
    credentials: Option<&serde_json::Value>,
    endpoints: &Endpoints,
) -> Result<Arc<dyn OutboundChannel>, SendError> {
    match channel.provider {
        Provider::Api => {
            let url = channel
                .settings
                .get("outbound_url")
                .and_then(|u| u.as_str())
                .ok_or_else(|| SendError::Permanent {
                    reason: "the API channel has no outbound_url".into(),
                })?;
            let token = credentials
                .and_then(|c| c.get("outbound_token"))
                .and_then(|t| t.as_str())
                .map(str::to_string);
            Ok(Arc::new(ApiChannel::new(url, token)?))
        }
        Provider::Widget => Ok(Arc::new(WidgetChannel)),
        // A social profile's conversations are comment threads: replies are comments.
        provider if channel.kind == ChannelKind::Social => {
            let network =
                social::social_network(provider, credentials, endpoints).map_err(|err| {
                    SendError::Permanent {
                        reason: err.to_string(),
                    }
                })?;
            Ok(Arc::new(social::CommentReplies(network)))
        }
        provider => {
            let channel =
                registry::provider_channel(provider, credentials, &channel.settings, endpoints)
                    .map_err(|err| SendError::Permanent {
                        reason: err.to_string(),
                    })?;
            Ok(channel)
        }
    }
}

/// Whether a conversation's provider id names a group chat, which a provider may limit more
/// strictly. Telegram: groups, supergroups and channels have negative ids (or a public
/// `@username`); a private chat's id is the user's, positive.
pub(crate) fn is_group_chat(provider: Provider, external: &str) -> bool {
    provider == Provider::Telegram && (external.starts_with('-') || external.starts_with('@'))
}

/// The provider's documented limits, overridden by the channel's settings (missing or
/// unusable values fall back to the defaults).
pub(crate) fn limits(provider: Provider, settings: &serde_json::Value) -> Limits {
    // (messages per second overall, per chat, per minute per group chat): Telegram's Bot FAQ
    // (30/s overall, 1/s per chat, 20/min per group); MAX 30 rps (its partner's FAQ, see
    // specs/PROVIDERS.md); VK's community-token limit of 20 requests a second (error 6 "Too
    // many requests per second" beyond it). Viber documents no number: the default applies.
    let (rate, chat_rate, group_per_minute) = match provider {
        Provider::Telegram => (30.0, Some(1.0), Some(20.0)),
        Provider::Max => (30.0, None, None),
        Provider::Vk => (20.0, None, None),
        _ => (DEFAULT_RATE, None, None),
    };
    let chat_rate = number(settings, "chat_rate_per_second").or(chat_rate);
    let group_per_minute = number(settings, "group_rate_per_minute").or(group_per_minute);
    Limits {
        overall: quota(
            number(settings, "send_rate_per_second").unwrap_or(rate),
            burst(settings, "send_burst"),
        ),
        per_chat: chat_rate.map(|r| quota(r, burst(settings, "chat_burst"))),
        // Evenly spaced by default (one every 3 s for 20 a minute), which also keeps a group
        // within the per-chat limit its messages no longer count against.
        per_group: group_per_minute.map(|r| quota(r / 60.0, burst(settings, "group_burst"))),
    }
}

fn number(settings: &serde_json::Value, key: &str) -> Option<f64> {
    settings
        .get(key)
        .and_then(|r| r.as_f64())
        .filter(|r| r.is_finite() && *r > 0.0)
}

fn burst(settings: &serde_json::Value, key: &str) -> Option<u32> {
    settings
        .get(key)
        .and_then(|b| b.as_u64())
        .and_then(|b| u32::try_from(b).ok())
}

/// `rate` per second with `burst` at once (default 1: evenly spaced, never more than `rate`
/// within any second, which is how providers count).
fn quota(rate: f64, burst: Option<u32>) -> Quota {
    // Providers count on their own clock, after the network's jitter: 2 % of margin keeps two
    // sends a period apart from landing a hair less than a period apart there.
    let rate = rate.clamp(1.0 / 3600.0, 10_000.0) / 1.02;
    let burst = NonZeroU32::new(burst.unwrap_or(1).clamp(1, 10_000)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_secs_f64(1.0 / rate))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// How long to pause after the `attempts`-th transient failure of a message: what the provider
/// asked for, else 1 s doubling; never more than an hour.
pub(crate) fn retry_delay(attempts: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(12));
    retry_after.unwrap_or(backoff).min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_from_the_provider_and_the_settings() {
        let api = |settings| limits(Provider::Api, &settings);
        let q = api(serde_json::json!({"send_rate_per_second": 5, "send_burst": 2})).overall;
        assert_eq!(q.replenish_interval(), Duration::from_millis(204));
        assert_eq!(q.burst_size().get(), 2);

        let slow = api(serde_json::json!({"send_rate_per_second": 0.5})).overall;
        assert_eq!(slow.replenish_interval(), Duration::from_millis(2040));
        assert_eq!(slow.burst_size().get(), 1);

        let default = api(serde_json::json!({}));
        assert_eq!(
            default.overall.replenish_interval(),
            Duration::from_millis(51)
        );
        assert_eq!(default.overall.burst_size().get(), 1);
        assert_eq!(default.per_chat, None);

        for bad in [
            serde_json::json!({"send_rate_per_second": 0}),
            serde_json::json!({"send_rate_per_second": -3}),
            serde_json::json!({"send_rate_per_second": "fast"}),
            serde_json::Value::Null,
        ] {
            assert_eq!(api(bad.clone()), default, "{bad}");
        }
        let zero_burst = api(serde_json::json!({"send_burst": 0})).overall;
        assert_eq!(zero_burst.burst_size().get(), 1);

        // Telegram: 30 a second overall, one a second per chat, unless told otherwise.
        let telegram = limits(Provider::Telegram, &serde_json::json!({}));
        assert_eq!(
            telegram.overall.replenish_interval(),
            Duration::from_secs_f64(1.02 / 30.0)
        );
        let chat = telegram.per_chat.unwrap();
        assert_eq!(
            (chat.replenish_interval(), chat.burst_size().get()),
            (Duration::from_millis(1020), 1)
        );
        let relaxed = limits(
            Provider::Telegram,
            &serde_json::json!({"chat_rate_per_second": 2, "chat_burst": 3}),
        );
        let chat = relaxed.per_chat.unwrap();
        assert_eq!(
            (chat.replenish_interval(), chat.burst_size().get()),
            (Duration::from_millis(510), 3)
        );
        // Telegram groups: 20 a minute, one every 3 s (with the 2 % margin), unless told
        // otherwise; no other provider limits groups.
        let group = telegram.per_group.unwrap();
        assert_eq!(
            (group.replenish_interval(), group.burst_size().get()),
            (Duration::from_millis(3060), 1)
        );
        let busy = limits(
            Provider::Telegram,
            &serde_json::json!({"group_rate_per_minute": 30, "group_burst": 5}),
        )
        .per_group
        .unwrap();
        assert_eq!(
            (busy.replenish_interval(), busy.burst_size().get()),
            (Duration::from_millis(2040), 5)
        );
        for provider in [
            Provider::Max,
            Provider::Vk,
            Provider::Viber,
            Provider::Whatsapp,
        ] {
            assert_eq!(limits(provider, &serde_json::json!({})).per_group, None);
        }
        assert_eq!(
            limits(Provider::Max, &serde_json::json!({}))
                .overall
                .replenish_interval(),
            Duration::from_secs_f64(1.02 / 30.0)
        );
        assert_eq!(
            limits(Provider::Vk, &serde_json::json!({}))
                .overall
                .replenish_interval(),
            Duration::from_secs_f64(1.02 / 20.0)
        );
    }

    #[test]
    fn telegram_groups_are_told_by_their_ids() {
        assert!(is_group_chat(Provider::Telegram, "-100123456"));
        assert!(is_group_chat(Provider::Telegram, "-4512"));
        assert!(is_group_chat(Provider::Telegram, "@shop_channel"));
        assert!(!is_group_chat(Provider::Telegram, "5001"));
        assert!(!is_group_chat(Provider::Vk, "-100123"));
    }

    #[test]
    fn a_group_waits_for_its_own_limit_while_private_chats_go_on() {
        let (group, private) = (ConversationId::new(), ConversationId::new());
        let job = |conversation, text: &str| Job {
            message: Message {
                id: MessageId::new(),
                client_id: omnihub_core::ClientId::new(),
                conversation_id: conversation,
                direction: omnihub_core::model::Direction::Outbound,
                kind: omnihub_core::model::MessageKind::Message,
                provider_event_id: None,
                author_id: None,
                text: text.into(),
                status: DeliveryStatus::Pending,
                failure_reason: None,
                idempotency_key: None,
                attachments: Vec::new(),
                created_at: chrono::Utc::now(),
            },
            attempts: 0,
        };
        let telegram = limits(Provider::Telegram, &serde_json::json!({}));
        let per_chat = RateLimiter::keyed(telegram.per_chat.unwrap());
        let per_group = RateLimiter::keyed(telegram.per_group.unwrap());
        let limiter_for = |c| {
            if c == group {
                Some(&per_group)
            } else {
                Some(&per_chat)
            }
        };
        let mut queue: VecDeque<Job> =
            [job(group, "g1"), job(group, "g2"), job(private, "p1")].into();
        assert_eq!(next_free_chat(&mut queue, limiter_for), Ok(()));
        assert_eq!(queue.pop_front().unwrap().message.text, "g1");
        // The group's next turn is about 3 s away; the private chat goes meanwhile.
        assert_eq!(next_free_chat(&mut queue, limiter_for), Ok(()));
        assert_eq!(queue.pop_front().unwrap().message.text, "p1");
        let wait = next_free_chat(&mut queue, limiter_for).unwrap_err();
        assert!(wait > Duration::from_secs(2), "{wait:?}");
        assert_eq!(queue.front().unwrap().message.text, "g2");
        // A chat with no limit of its own is never held.
        let mut free: VecDeque<Job> = [job(private, "x")].into();
        assert_eq!(next_free_chat(&mut free, |_| None), Ok(()));
    }

    #[test]
    fn a_waiting_chat_does_not_hold_up_the_others_and_each_keeps_its_order() {
        let (a, b) = (ConversationId::new(), ConversationId::new());
        let job = |conversation, text: &str| Job {
            message: Message {
                id: MessageId::new(),
                client_id: omnihub_core::ClientId::new(),
                conversation_id: conversation,
                direction: omnihub_core::model::Direction::Outbound,
                kind: omnihub_core::model::MessageKind::Message,
                provider_event_id: None,
                author_id: None,
                text: text.into(),
                status: DeliveryStatus::Pending,
                failure_reason: None,
                idempotency_key: None,
                created_at: chrono::Utc::now(),
                attachments: Vec::new(),
            },
            attempts: 0,
        };
        let per_chat = RateLimiter::keyed(Quota::per_hour(NonZeroU32::MIN));
        let mut queue: VecDeque<Job> =
            [job(a, "a1"), job(a, "a2"), job(b, "b1"), job(b, "b2")].into();
        let texts =
            |q: &VecDeque<Job>| q.iter().map(|j| j.message.text.clone()).collect::<Vec<_>>();
        let every = |_| Some(&per_chat);
        assert_eq!(next_free_chat(&mut queue, every), Ok(()));
        assert_eq!(texts(&queue), ["a1", "a2", "b1", "b2"]);
        queue.pop_front();
        // `a` just had its turn: `b` goes first, and `a2` is not sent ahead of it.
        assert_eq!(next_free_chat(&mut queue, every), Ok(()));
        assert_eq!(texts(&queue), ["b1", "a2", "b2"]);
        queue.pop_front();
        let wait = next_free_chat(&mut queue, every).unwrap_err();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert_eq!(texts(&queue), ["a2", "b2"]);
    }

    #[test]
    fn retry_delay_honours_the_provider_then_backs_off() {
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600)
        );
        let got: Vec<_> = (1..=5).map(|a| retry_delay(a, None).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16]);
        assert_eq!(retry_delay(40, None), Duration::from_secs(3600));
    }

    #[test]
    fn connectors_follow_the_provider_and_refuse_what_cannot_work() {
        let channel = |provider, settings| Channel {
            id: ChannelId::new(),
            client_id: omnihub_core::ClientId::new(),
            kind: omnihub_core::model::ChannelKind::Messaging,
            provider,
            name: "c".into(),
            settings,
            has_credentials: false,
            created_at: chrono::Utc::now(),
        };
        let api = channel(
            Provider::Api,
            serde_json::json!({"outbound_url": "http://127.0.0.1:9/in"}),
        );
        let endpoints = Endpoints::default();
        assert!(connector(&api, None, &endpoints).is_ok());
        let missing = channel(Provider::Api, serde_json::json!({}));
        assert!(matches!(
            connector(&missing, None, &endpoints),
            Err(SendError::Permanent { .. })
        ));
        let vk = channel(Provider::Vk, serde_json::json!({}));
        let credentials = serde_json::json!({"access_token": "t", "group_id": 1});
        assert!(connector(&vk, Some(&credentials), &endpoints).is_ok());
        assert!(matches!(
            connector(&vk, None, &endpoints),
            Err(SendError::Permanent { .. })
        ));
        let sms = channel(Provider::Sms, serde_json::json!({}));
        assert!(matches!(
            connector(&sms, None, &endpoints),
            Err(SendError::Permanent { .. })
        ));
    }
}
