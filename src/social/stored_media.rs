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
