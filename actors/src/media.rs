//! Inbound attachments after the commit: the scheduler's `attachment.download` task fetches one
//! pending file through its channel's connector (`ProviderChannel::download`: Telegram's
//! getFile, WhatsApp's media URL, VK/Viber/MAX file URLs, a mailbox's MIME part), keeps it in
//! the media store and marks it ready, which appends a `message_updated` event so consoles
//! show the file at once. A webhook is never held up by a download: the message and its
//! pending files were committed (and the provider answered) before this runs.
//!
//! Transient failures (the provider limiting or down) are retried by the scheduler with
//! back-off; a refusal, a file over the size limit, or the last attempt marks the attachment
//! failed with the reason, so the console stops waiting for it.

use bytes::Bytes;
use omnihub_connectors::registry;
use omnihub_connectors::{SendError, provider::Media};
use omnihub_core::media::{
    AttachmentKind, AttachmentState, check_upload_type, default_file_name, sniff_image,
};
use omnihub_core::{AttachmentId, ClientId};
use omnihub_store::media::ByteStream;
use omnihub_store::{StoreError, StoredFile, Task};

use crate::scheduler::TaskFailure;
use crate::shared::Shared;

/// The type a provider gives when it does not know better; a type announced in the update
/// is kept over it.
const UNKNOWN_TYPE: &str = "application/octet-stream";

pub(crate) fn download_payload(payload: &serde_json::Value) -> Option<(ClientId, AttachmentId)> {
    let client = payload.get("client_id")?.as_str()?.parse().ok()?;
    let attachment = payload.get("attachment_id")?.as_str()?.parse().ok()?;
    Some((client, attachment))
}

/// Runs one `attachment.download` task; `last_attempt` turns a transient failure into a final
/// one.
pub(crate) async fn download(
    shared: &Shared,
    task: &Task,
    last_attempt: bool,
) -> Result<(), TaskFailure> {
    let (client, id) = download_payload(&task.payload)
        .ok_or_else(|| TaskFailure::Permanent(format!("malformed payload: {}", task.payload)))?;
    let store = &shared.store;
    let stored = match store.get_attachment(client, id).await {
        Ok(stored) => stored,
        // The conversation (and its files) was deleted meanwhile: nothing left to do.
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(TaskFailure::Retry(err.to_string())),
    };
    if stored.attachment.state != AttachmentState::Pending {
        return Ok(());
    }
    // Closed never: the semaphore lives as long as `shared`.
    let _turn = shared
        .downloads
        .acquire()
        .await
        .map_err(|err| TaskFailure::Retry(err.to_string()))?;
    let limit = shared.config.max_attachment_bytes;
    let fail = |reason: String| async move {
        match store.attachment_failed(client, id, &reason).await {
            Ok(event) => {
                if event.is_some() {
                    wake(shared, client).await;
                }
                Ok(())
            }
            Err(err) => Err(TaskFailure::Retry(err.to_string())),
        }
    };
    let Some(media) = shared.config.media.clone() else {
        return fail("media storage is not configured".into()).await;
    };
    let Some(file_ref) = stored.provider_ref.clone() else {
        return fail("the provider gave no reference to download".into()).await;
    };
    if stored
        .attachment
        .size
        .is_some_and(|size| u64::try_from(size).unwrap_or(0) > limit)
    {
        return fail(format!(
            "the file is larger than the limit of {limit} bytes"
        ))
        .await;
    }
    let channel = match store.get_channel(client, stored.channel_id).await {
        Ok(channel) => channel,
        Err(StoreError::NotFound) => return fail("the channel was removed".into()).await,
        Err(err) => return Err(TaskFailure::Retry(err.to_string())),
    };
    let credentials = store
        .channel_credentials(client, channel.id)
        .await
        .map_err(|err| TaskFailure::Retry(err.to_string()))?;
    let connector = match registry::provider_channel(
        channel.provider,
        credentials.as_ref(),
        &channel.settings,
        &shared.config.endpoints,
    ) {
        Ok(connector) => connector,
        Err(err) => return fail(err.to_string()).await,
    };
    let Media {
        bytes, mime_type, ..
    } = match connector.download(&file_ref).await {
        Ok(media) => media,
        Err(SendError::Transient { reason, .. }) if !last_attempt => {
            return Err(TaskFailure::Retry(reason));
        }
        Err(err) => return fail(err.reason().to_string()).await,
    };
    if bytes.len() as u64 > limit {
        return fail(format!(
            "the file is larger than the limit of {limit} bytes"
        ))
        .await;
    }
    // A photo's format is often unannounced: the bytes tell it.
    let sniffed = matches!(
        stored.attachment.kind,
        AttachmentKind::Image | AttachmentKind::Sticker
    )
    .then(|| sniff_image(&bytes))
    .flatten()
    .filter(|sniffed| *sniffed != stored.attachment.mime_type);
    let chunk: ByteStream<'static> =
        Box::pin(futures_util::stream::once(
            async move { Ok(Bytes::from(bytes)) },
        ));
    let put = match media.put(chunk, limit).await {
        Ok(put) => put,
        Err(err) => return Err(TaskFailure::Retry(err.to_string())),
    };
    let mime_type = sniffed.map(str::to_string).or_else(|| {
        mime_type
            .and_then(|m| check_upload_type(&m, "").ok())
            .filter(|_| stored.attachment.mime_type == UNKNOWN_TYPE)
    });
    // A name omnihub made up from the announced type follows the real one.
    let file_name = mime_type.as_deref().and_then(|real| {
        let generated = default_file_name(stored.attachment.kind, &stored.attachment.mime_type);
        (stored.attachment.file_name == generated)
            .then(|| default_file_name(stored.attachment.kind, real))
    });
    let file = StoredFile {
        storage_key: put.key.clone(),
        size: i64::try_from(put.size).unwrap_or(i64::MAX),
        sha256: put.sha256,
        mime_type,
        file_name,
    };
    match store.attachment_stored(client, id, &file).await {
        Ok(Some(_)) => {
            wake(shared, client).await;
            Ok(())
        }
        Ok(None) => {
            // Another run got there first: its copy is the one kept.
            let _ = media.delete(&put.key).await;
            Ok(())
        }
        Err(err) => {
            let _ = media.delete(&put.key).await;
            Err(TaskFailure::Retry(err.to_string()))
        }
    }
}

/// Has the client's publisher push the new event (starting the client's subtree if needed).
async fn wake(shared: &Shared, client: ClientId) {
    match shared.client(client).await {
        Ok((entry, _)) => entry.wake(),
        Err(err) => {
            tracing::debug!(%client, error = %err, "publisher not reachable; the event waits for the next read")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn download_payload_round_trip() {
        let client = ClientId::new();
        let attachment = AttachmentId::new();
        let payload = serde_json::json!({"client_id": client, "attachment_id": attachment});
        assert_eq!(download_payload(&payload), Some((client, attachment)));
        assert_eq!(download_payload(&serde_json::json!({})), None);
    }
}
