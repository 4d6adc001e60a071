//! Where a post's file is read from: a [`MediaSource`] knows the file's size and opens a fresh
//! reader of its bytes each time it is asked, so a video goes to the network in pieces straight
//! from storage (never whole in memory) and a retried upload starts again from the first byte.
//!
//! Connectors know nothing of the media store: the server hands them a source built on an
//! [`OpenMedia`] of its own, and tests and small files use [`MediaSource::from_bytes`]. Every
//! reader yields exactly the announced size: a file that turns out shorter or longer, or that
//! fails to read, is an error of the read, so an upload breaks off instead of sending a
//! truncated file as if it were whole.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::SendError;

/// A reader of a file's bytes, as an [`OpenMedia`] opens it.
pub type MediaRead = Pin<Box<dyn AsyncRead + Send>>;

/// Opens a file's bytes for reading, again and again.
#[async_trait]
pub trait OpenMedia: Send + Sync + fmt::Debug {
    /// A new reader of the file from its first byte.
    async fn open(&self) -> io::Result<MediaRead>;
}

/// A file of a post: its size and a way to read it, cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaSource {
    size: u64,
    opener: Arc<dyn OpenMedia>,
}

/// Two sources are equal when they read the same opener (not when their bytes match).
impl PartialEq for MediaSource {
    fn eq(&self, other: &MediaSource) -> bool {
        self.size == other.size && Arc::ptr_eq(&self.opener, &other.opener)
    }
}

impl Eq for MediaSource {}

impl MediaSource {
    /// A file of `size` bytes, read through `opener`.
    pub fn new(size: u64, opener: Arc<dyn OpenMedia>) -> MediaSource {
        MediaSource { size, opener }
    }

    /// A file already in memory (an image, a test's bytes).
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> MediaSource {
        let bytes = InMemory(bytes.into());
        MediaSource::new(bytes.0.len() as u64, Arc::new(bytes))
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// A new reader from the first byte, yielding exactly [`MediaSource::size`] bytes or an
    /// error.
    pub async fn open(&self) -> io::Result<ExactReader> {
        Ok(ExactReader {
            inner: self.opener.open().await?.take(self.size),
        })
    }

    /// The whole file in memory, for the small files (images) a network takes only inside
    /// one request body; refused past `max` bytes, so a video is never read whole by mistake.
    pub async fn read_whole(&self, max: u64) -> io::Result<Vec<u8>> {
        if self.size > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes is too large to hold in memory", self.size),
            ));
        }
        let mut reader = self.open().await?;
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        reader.read_to_end(&mut bytes).await?;
        Ok(bytes)
    }
}

/// The bytes of a file in memory.
struct InMemory(Arc<[u8]>);

impl fmt::Debug for InMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InMemory({} bytes)", self.0.len())
    }
}

#[async_trait]
impl OpenMedia for InMemory {
    async fn open(&self) -> io::Result<MediaRead> {
        Ok(Box::pin(io::Cursor::new(Arc::clone(&self.0))))
    }
}

/// A reader that yields exactly the size its source announced: it fails with
/// `UnexpectedEof` when the file ends early and with `InvalidData` when it goes on past it.
pub struct ExactReader {
    inner: tokio::io::Take<MediaRead>,
}

impl AsyncRead for ExactReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let remaining = self.inner.limit();
        if remaining == 0 {
            // The end only once the file agrees: one more byte means it is not the file
            // whose size was announced.
            let mut probe = [0u8; 1];
            let mut probe = ReadBuf::new(&mut probe);
            return match self.inner.get_mut().as_mut().poll_read(cx, &mut probe) {
                Poll::Ready(Ok(())) if probe.filled().is_empty() => Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the media file is longer than its announced size",
                ))),
                other => other,
            };
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the media file ended {remaining} bytes before its announced size"),
                )))
            }
            other => other,
        }
    }
}

impl ExactReader {
    /// The next `len` bytes, fewer only at the end of the file.
    pub async fn read_chunk(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let left = usize::try_from(self.inner.limit()).unwrap_or(usize::MAX);
        let mut chunk = Vec::with_capacity(len.min(left));
        (&mut *self)
            .take(len as u64)
            .read_to_end(&mut chunk)
            .await?;
        Ok(chunk)
    }

    /// The rest of the file as a stream of pieces, for a streamed request body.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Vec<u8>>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut reader| async move {
            let piece = reader.read_chunk(STREAM_PIECE).await?;
            Ok(if piece.is_empty() {
                None
            } else {
                Some((piece, reader))
            })
        })
    }
}

/// The size of the pieces a streamed body is sent in.
const STREAM_PIECE: usize = 64 * 1024;

/// The failure a read of a post's file means for sending it: a file gone or not the size it
/// was said to be is permanent, any other read error transient.
pub fn read_failed(err: io::Error) -> SendError {
    let reason = format!("reading the media file failed: {err}");
    match err.kind() {
        io::ErrorKind::NotFound
        | io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::UnexpectedEof => SendError::Permanent { reason },
        _ => SendError::Transient {
            retry_after: None,
            reason,
        },
    }
}

/// An image of a post as a multipart part, read whole (refused past `max` bytes).
pub async fn image_part(
    image: &super::PostMedia,
    max: u64,
) -> Result<reqwest::multipart::Part, SendError> {
    let bytes = image.source.read_whole(max).await.map_err(read_failed)?;
    reqwest::multipart::Part::bytes(bytes)
        .file_name(image.file_name.clone())
        .mime_str(&image.mime_type)
        .map_err(|err| crate::rest_client::permanent(format!("bad image type: {err}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A file whose store says `size` bytes but whose reader yields `bytes`, then fails when
    /// `fail` is set.
    #[derive(Debug)]
    struct Stored {
        bytes: Vec<u8>,
        fail: bool,
    }

    #[async_trait]
    impl OpenMedia for Stored {
        async fn open(&self) -> io::Result<MediaRead> {
            let start = io::Cursor::new(self.bytes.clone());
            if self.fail {
                let broken = Broken;
                Ok(Box::pin(start.chain(broken)))
            } else {
                Ok(Box::pin(start))
            }
        }
    }

    /// A reader whose disk fails.
    struct Broken;

    impl AsyncRead for Broken {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::Error::other("the disk failed")))
        }
    }

    fn stored(size: u64, bytes: &[u8], fail: bool) -> MediaSource {
        MediaSource::new(
            size,
            Arc::new(Stored {
                bytes: bytes.to_vec(),
                fail,
            }),
        )
    }

    async fn read(source: &MediaSource) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        source.open().await?.read_to_end(&mut bytes).await?;
        Ok(bytes)
    }

    #[tokio::test]
    async fn every_open_reads_the_same_bytes_from_the_first() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for source in [
            MediaSource::from_bytes(bytes.clone()),
            stored(bytes.len() as u64, &bytes, false),
        ] {
            assert_eq!(source.size(), bytes.len() as u64);
            let copy = source.clone();
            assert_eq!(copy, source);
            assert_eq!(read(&source).await.unwrap(), bytes);
            assert_eq!(read(&copy).await.unwrap(), bytes);
            // In pieces, as uploads read it: the pieces add up to the file.
            let mut reader = source.open().await.unwrap();
            let mut pieces = Vec::new();
            loop {
                let piece = reader.read_chunk(30_000).await.unwrap();
                if piece.is_empty() {
                    break;
                }
                pieces.push(piece);
            }
            assert_eq!(
                pieces.iter().map(Vec::len).collect::<Vec<_>>(),
                [30_000, 30_000, 30_000, 10_000]
            );
            assert_eq!(pieces.concat(), bytes);
            assert_eq!(source.read_whole(100_000).await.unwrap(), bytes);
        }
    }

    #[tokio::test]
    async fn a_file_not_of_its_size_or_failing_is_an_error_not_a_short_upload() {
        let bytes = vec![7u8; 1000];
        // Shorter than announced.
        let short = stored(1500, &bytes, false);
        let err = read(&short).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut reader = short.open().await.unwrap();
        assert_eq!(reader.read_chunk(800).await.unwrap().len(), 800);
        assert!(reader.read_chunk(800).await.is_err());
        // Longer than announced.
        let err = read(&stored(999, &bytes, false)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A read that fails midway.
        let err = read(&stored(2000, &bytes, true)).await.unwrap_err();
        assert_eq!(err.to_string(), "the disk failed");
        let stream = stored(2000, &bytes, true)
            .open()
            .await
            .unwrap()
            .into_stream();
        let pieces: Vec<io::Result<Vec<u8>>> = futures_util::StreamExt::collect(stream).await;
        assert!(pieces.last().unwrap().is_err());
        // Each is a failure of the send, never a truncated success.
        assert!(!read_failed(io::Error::from(io::ErrorKind::UnexpectedEof)).is_transient());
        assert!(read_failed(io::Error::other("the disk failed")).is_transient());
        // A video is never read whole.
        let err = MediaSource::from_bytes(bytes.clone())
            .read_whole(999)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
