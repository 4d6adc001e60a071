//! A library file as the connectors read it: a [`MediaSource`] over the media store, which
//! opens the stored file afresh for every upload (a retried upload starts from the first
//! byte), so a video goes out in pieces and is never held whole in memory.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use omnihub_connectors::social::MediaSource;
use omnihub_connectors::social::source::{MediaRead, OpenMedia};
use omnihub_store::media::{MediaError, MediaStore};

/// The file under `key`, checked to be at most `limit` bytes (the size the library recorded):
/// its source, of the size the store finds.
pub async fn source_of(
    media: &Arc<dyn MediaStore>,
    key: &str,
    limit: u64,
) -> Result<MediaSource, MediaError> {
    let opened = media.open(key).await?;
    if opened.size > limit {
        return Err(MediaError::TooLarge { limit });
    }
    let opener = StoredFile {
        media: Arc::clone(media),
        key: key.to_string(),
        size: opened.size,
    };
    Ok(MediaSource::new(opened.size, Arc::new(opener)))
}

/// Opens one stored file, refusing it if its size has changed since the source was made.
#[derive(Debug)]
struct StoredFile {
    media: Arc<dyn MediaStore>,
    key: String,
    size: u64,
}

#[async_trait]
impl OpenMedia for StoredFile {
    async fn open(&self) -> io::Result<MediaRead> {
        let opened = self.media.open(&self.key).await.map_err(|err| match err {
            MediaError::NotFound => io::Error::new(io::ErrorKind::NotFound, "no such media"),
            MediaError::Io(err) | MediaError::Source(err) => err,
            other => io::Error::other(other.to_string()),
        })?;
        if opened.size != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the stored file is {} bytes where {} were announced",
                    opened.size, self.size
                ),
            ));
        }
        Ok(opened.reader)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use omnihub_store::media::FsMediaStore;
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn read(source: &MediaSource) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        source.open().await?.read_to_end(&mut bytes).await?;
        Ok(bytes)
    }

    #[tokio::test]
    async fn a_stored_file_is_read_afresh_each_time_and_checked_against_the_library() {
        let dir = std::env::temp_dir().join(format!("omnihub-media-{}", uuid::Uuid::new_v4()));
        let media: Arc<dyn MediaStore> = Arc::new(FsMediaStore::open_dir(&dir).await.unwrap());
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = futures_util::stream::iter([Ok(bytes::Bytes::from(bytes.clone()))]);
        let put = media.put(Box::pin(chunks), 1 << 20).await.unwrap();

        let source = source_of(&media, &put.key, put.size).await.unwrap();
        assert_eq!(source.size(), bytes.len() as u64);
        assert_eq!(read(&source).await.unwrap(), bytes);
        assert_eq!(
            read(&source).await.unwrap(),
            bytes,
            "opened again from the start"
        );
        // Larger than the library recorded: refused as `read_all` refused it.
        assert!(matches!(
            source_of(&media, &put.key, put.size - 1).await,
            Err(MediaError::TooLarge { .. })
        ));
        // Gone from the store by the time it is uploaded: an error, not an empty upload.
        media.delete(&put.key).await.unwrap();
        let err = read(&source).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
}
