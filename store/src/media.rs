//! Where the bytes of attachments live: the [`MediaStore`] trait (put a stream of bytes and get
//! a key, open a key for reading, delete a key) and its filesystem implementation under the
//! data directory, [`FsMediaStore`]. The database keeps only the key (in `attachments`), so a
//! store for S3-compatible object storage can implement the same trait.
//!
//! Keys are random (128 bits, lower-case hex) and chosen here, never by a caller or a sender,
//! and every key is checked for that shape before it touches a path: no traversal is possible.
//! Writes go to a temporary file, are synced, and are renamed into place only once complete, so
//! a crash never leaves a half-written file under a key. Sizes are capped while streaming:
//! nothing larger than the limit is ever kept.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Why a media operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// No file under that key (or a key of the wrong shape, which cannot name one).
    #[error("no such media")]
    NotFound,
    /// The bytes went over the limit; nothing was kept.
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// Reading the bytes given to `put` failed (the upload broke off); nothing was kept.
    #[error("reading the file failed: {0}")]
    Source(io::Error),
    #[error("media storage: {0}")]
    Io(#[from] io::Error),
}

/// What `put` kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutMedia {
    pub key: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// An opened file: its size and a reader of its bytes.
pub struct MediaReader {
    pub size: u64,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

/// The bytes given to [`MediaStore::put`], chunk by chunk.
pub type ByteStream<'a> = BoxStream<'a, io::Result<Bytes>>;

/// Storage of attachment bytes by opaque key.
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores the stream under a new key, refusing (and keeping nothing) past `limit` bytes.
    async fn put(&self, bytes: ByteStream<'_>, limit: u64) -> Result<PutMedia, MediaError>;
    /// Opens the file under `key`.
    async fn open(&self, key: &str) -> Result<MediaReader, MediaError>;
    /// Deletes the file under `key`; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), MediaError>;
}

/// Reads a whole file into memory (the connectors send attachments from memory), refusing past
/// `limit` bytes.
pub async fn read_all(
    media: &dyn MediaStore,
    key: &str,
    limit: u64,
) -> Result<Vec<u8>, MediaError> {
    use tokio::io::AsyncReadExt;
    let mut opened = media.open(key).await?;
    if opened.size > limit {
        return Err(MediaError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.size).unwrap_or(0));
    (&mut opened.reader)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() as u64 > limit {
        return Err(MediaError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Files under a directory: `<root>/<k[0..2]>/<k[2..4]>/<key>`, written through `<root>/tmp`.
#[derive(Debug, Clone)]
pub struct FsMediaStore {
    root: PathBuf,
}

impl FsMediaStore {
    /// Uses (and creates) `root`, e.g. `<data dir>/media`.
    pub async fn open_dir(root: impl Into<PathBuf>) -> Result<FsMediaStore, MediaError> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        Ok(FsMediaStore { root })
    }

    fn path_of(&self, key: &str) -> Option<PathBuf> {
        valid_key(key).then(|| self.root.join(&key[0..2]).join(&key[2..4]).join(key))
    }
}

/// 32 lower-case hex digits: the only keys this store makes, and the only ones it accepts.
fn valid_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_key() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[async_trait]
impl MediaStore for FsMediaStore {
    async fn put(&self, mut bytes: ByteStream<'_>, limit: u64) -> Result<PutMedia, MediaError> {
        let key = new_key();
        let temp = self.root.join("tmp").join(format!("{key}.part"));
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            let mut hasher = Sha256::new();
            let mut size: u64 = 0;
            while let Some(chunk) = bytes.next().await {
                let chunk = chunk.map_err(MediaError::Source)?;
                size = size.saturating_add(chunk.len() as u64);
                if size > limit {
                    return Err(MediaError::TooLarge { limit });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok::<_, MediaError>((size, hex(&hasher.finalize())))
        }
        .await;
        let (size, sha256) = match written {
            Ok(done) => done,
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
        };
        let Some(path) = self.path_of(&key) else {
            return Err(MediaError::NotFound);
        };
        let placed = async {
            let dir = path.parent().unwrap_or(Path::new("."));
            tokio::fs::create_dir_all(dir).await?;
            tokio::fs::rename(&temp, &path).await?;
            // The rename itself is durable only once its directory is synced.
            tokio::fs::File::open(dir).await?.sync_all().await?;
            Ok::<_, io::Error>(())
        }
        .await;
        if let Err(err) = placed {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(err.into());
        }
        Ok(PutMedia { key, size, sha256 })
    }

    async fn open(&self, key: &str) -> Result<MediaReader, MediaError> {
        let path = self.path_of(key).ok_or(MediaError::NotFound)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(MediaError::NotFound),
            Err(err) => return Err(err.into()),
        };
        let size = file.metadata().await?.len();
        Ok(MediaReader {
            size,
            reader: Box::pin(file),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let Some(path) = self.path_of(key) else {
            return Ok(());
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_keys_of_our_own_shape_name_a_path() {
        assert!(valid_key(&new_key()));
        assert!(!valid_key("../../../../etc/passwd"));
        assert!(!valid_key("0123456789abcdef0123456789ABCDEF"));
        assert!(!valid_key("0123456789abcdef0123456789abcde/"));
        assert!(!valid_key(""));
    }
}
