//! Channels read by polling: every mailbox (IMAP, waiting in IDLE) and the bots whose settings
//! ask for long polling instead of a webhook. A look at the store every few seconds finds them;
//! each gets one task, which polls with the channel's connector from the cursor kept in the
//! store, commits every update through the hub exactly as a webhook does, and only then keeps
//! the new cursor. A crash or a restart therefore loses nothing (the next poll starts from the
//! last kept cursor) and whatever is fetched twice is deduplicated on the provider's event id.
//!
//! Every node polls: two nodes fetching the same updates commit them once.

use std::collections::HashMap;
use std::time::Duration;

use omnihub_connectors::registry;
use omnihub_core::{ChannelId, ClientId};
use omnihub_store::StoreError;
use tokio::task::JoinHandle;

use crate::http::routes::provider_hooks::apply;
use crate::state::AppState;

/// How often the store is asked which channels poll.
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// Waits after a failed poll: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Starts finding and polling channels; the returned task runs until aborted.
pub fn start(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<ChannelId, JoinHandle<()>> = HashMap::new();
        loop {
            running.retain(|_, task| !task.is_finished());
            match state.store.channels_of_providers(&registry::POLLED).await {
                Ok(channels) => {
                    for channel in channels {
                        if registry::polls(channel.provider, &channel.settings)
                            && !running.contains_key(&channel.id)
                        {
                            let task = tokio::spawn(poll_channel(
                                state.clone(),
                                channel.client_id,
                                channel.id,
                            ));
                            running.insert(channel.id, task);
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot list the polled channels"),
            }
            tokio::time::sleep(DISCOVER_EVERY).await;
        }
    })
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
