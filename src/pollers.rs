//! Channels read by polling: every mailbox (IMAP, waiting in IDLE), the bots whose settings
//! ask for long polling instead of a webhook, and the social profiles whose network delivers
//! no comment webhooks (their comments are fetched by `social::poller`). A look at the store every few seconds finds them;
//! each gets one task, which polls with the channel's connector from the cursor kept in the
//! store, commits every update through the hub exactly as a webhook does, and only then keeps
//! the new cursor. A crash or a restart therefore loses nothing (the next poll starts from the
//! last kept cursor) and whatever is fetched twice is deduplicated on the provider's event id.
//!
//! One node polls each channel: the one holding its lease in the store (`poll_leases`), which
//! it claims when the channel has none or the last holder's ran out, and renews at every look
//! (every third of `[providers] poll_lease_secs` at most). A node that cannot renew in time
//! stops polling that channel before its lease runs out, so two nodes never poll at once; a
//! node that dies simply stops renewing, and another takes its channels over when the lease
//! ends. A node that stops cleanly releases its leases at once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use omnihub_connectors::registry;
use omnihub_core::model::{Channel, ChannelKind};
use omnihub_core::{ChannelId, ClientId};
use omnihub_store::StoreError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::http::routes::provider_hooks::apply;
use crate::state::AppState;

/// The longest time between two looks at the store (new channels, renewals).
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// Waits after a failed poll: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);
/// The gauge of the channels this node holds the lease on and polls.
pub const LEASES_HELD: &str = "omnihub_poll_leases_held";

/// The running pollers of this node. Dropping it (or [`Pollers::abort`]) stops polling at once
/// and leaves the leases to run out; [`Pollers::stop`] releases them for another node.
pub struct Pollers {
    node: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pollers {
    /// The name this node's leases are held under: its process id and a random part.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Stops polling without releasing the leases (another node waits for them to run out).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Stops polling and releases every lease this node holds.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Pollers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One channel's polling task, aborted when dropped (a lost lease, a removed channel, a stop).
struct Polling {
    client: ClientId,
    task: JoinHandle<()>,
    /// Until when this node may poll: its local view of the lease's end, from before it asked.
    held_until: Instant,
}

impl Drop for Polling {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts finding, leasing and polling channels, with a fresh node name.
pub fn start(state: AppState) -> Pollers {
    let node = format!(
        "pid-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let lease = Duration::from_secs(state.config.providers.poll_lease_secs.max(3));
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(state, node.clone(), lease, stopped));
    tracing::info!(%node, ?lease, "pollers started");
    Pollers { node, stop, task }
}

async fn run(state: AppState, node: String, lease: Duration, mut stopped: watch::Receiver<bool>) {
    let every = DISCOVER_EVERY.min(lease / 3);
    let mut running: HashMap<ChannelId, Polling> = HashMap::new();
    loop {
        look(&state, &node, lease, &mut running).await;
        metrics::gauge!(LEASES_HELD).set(running.len() as f64);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => break,
        }
    }
    for (id, polling) in running.drain() {
        drop(polling);
        if let Err(err) = state.store.release_poll_lease(id, &node).await {
            tracing::warn!(channel = %id, error = %err, "cannot release a poll lease");
        }
    }
    metrics::gauge!(LEASES_HELD).set(0.0);
}

/// One look at the store: claims or renews the lease of every polled channel, starts polling
/// those newly held, stops those lost, gone or no longer polled.
async fn look(
    state: &AppState,
    node: &str,
    lease: Duration,
    running: &mut HashMap<ChannelId, Polling>,
) {
    // A task that ended by itself found its channel gone or no longer polled.
    let ended: Vec<ChannelId> = running
        .iter()
        .filter(|(_, p)| p.task.is_finished())
        .map(|(id, _)| *id)
        .collect();
    for id in ended {
        running.remove(&id);
        release(state, id, node).await;
    }
    match polled_channels(state).await {
        Ok(channels) => {
            let mut polled = HashSet::new();
            for (channel, social) in channels {
                polled.insert(channel.id);
                let asked = Instant::now();
                let now = chrono::Utc::now();
                let until =
                    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
                match state
                    .store
                    .claim_poll_lease(channel.id, node, now, until)
                    .await
                {
                    Ok(true) => {
                        let held_until = asked + lease;
                        match running.get_mut(&channel.id) {
                            Some(polling) => polling.held_until = held_until,
                            None => {
                                tracing::info!(channel = %channel.id, node, "polling: lease taken");
                                let task = if social {
                                    tokio::spawn(crate::social::poller::poll_profile(
                                        state.clone(),
                                        channel.client_id,
                                        channel.id,
                                    ))
                                } else {
                                    tokio::spawn(poll_channel(
                                        state.clone(),
                                        channel.client_id,
                                        channel.id,
                                    ))
                                };
                                running.insert(
                                    channel.id,
                                    Polling {
                                        client: channel.client_id,
                                        task,
                                        held_until,
                                    },
                                );
                            }
                        }
                    }
                    Ok(false) => {
                        if running.remove(&channel.id).is_some() {
                            tracing::warn!(channel = %channel.id, node, "polling: lease lost to another node");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(channel = %channel.id, error = %err, "cannot renew a poll lease");
                    }
                }
            }
            // Removed channels and those switched to webhooks.
            let gone: Vec<ChannelId> = running
                .keys()
                .filter(|id| !polled.contains(id))
                .copied()
                .collect();
            for id in gone {
                running.remove(&id);
                release(state, id, node).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot list the polled channels"),
    }
    // A lease not renewed in time (the store unreachable): stop before another node may start.
    let margin = lease / 6;
    let now = Instant::now();
    running.retain(|id, polling| {
        let keep = polling.held_until > now + margin;
        if !keep {
            tracing::warn!(channel = %id, client = %polling.client, "polling paused: the lease could not be renewed");
        }
        keep
    });
}

/// Every channel polled now, each with whether it is a social profile (whose comments are
/// polled) rather than a channel read by polling.
async fn polled_channels(state: &AppState) -> Result<Vec<(Channel, bool)>, StoreError> {
    let mut channels: Vec<(Channel, bool)> = state
        .store
        .channels_of_providers(&registry::POLLED)
        .await?
        .into_iter()
        .filter(|c| c.kind != ChannelKind::Social && registry::polls(c.provider, &c.settings))
        .map(|c| (c, false))
        .collect();
    let social = crate::social::poller::polled_providers();
    if !social.is_empty() {
        channels.extend(
            state
                .store
                .channels_of_providers(&social)
                .await?
                .into_iter()
                .filter(|c| c.kind == ChannelKind::Social)
                .map(|c| (c, true)),
        );
    }
    Ok(channels)
}

async fn release(state: &AppState, id: ChannelId, node: &str) {
    if let Err(err) = state.store.release_poll_lease(id, node).await {
        tracing::warn!(channel = %id, error = %err, "cannot release a poll lease");
    }
}

/// Polls one channel until it is removed or stops polling.
async fn poll_channel(state: AppState, client: ClientId, id: ChannelId) {
    let mut retry = FIRST_RETRY;
    loop {
        match poll_once(&state, client, id).await {
            Ok(true) => retry = FIRST_RETRY,
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(channel = %id, error = %err, "polling failed; trying again");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}

/// One poll; false when the channel is gone or no longer polled.
async fn poll_once(state: &AppState, client: ClientId, id: ChannelId) -> anyhow::Result<bool> {
    let channel = match state.store.get_channel(client, id).await {
        Ok(channel) => channel,
        Err(StoreError::NotFound) => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    if !registry::polls(channel.provider, &channel.settings) {
        return Ok(false);
    }
    let credentials = state.store.channel_credentials(client, id).await?;
    let connector =
        state
            .provider_channels
            .get(&channel, credentials.as_ref(), &state.endpoints)?;
    let cursor = state.store.poll_cursor(client, id).await?;
    let polled = connector.poll(cursor.as_deref()).await?;
    for update in polled.updates {
        apply(state, &channel, &connector, update)
            .await
            .map_err(|err| anyhow::anyhow!("committing a polled update: {err:?}"))?;
    }
    if let Some(next) = polled.cursor
        && cursor.as_deref() != Some(next.as_str())
    {
        state.store.set_poll_cursor(client, id, &next).await?;
    }
    Ok(true)
}
