//! The `hub` suite's baseline: a bare actix-web server with a POST handler that parses the same
//! JSON an API channel's webhook takes and answers 200 with the same shape, and a bare actix-ws
//! endpoint that welcomes sockets and broadcasts, on every POST, a frame of the same size as
//! omnihub's `message_created` event carrying the posted text. No store, no authentication
//! beyond comparing the bearer token, no actors.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{HttpRequest, HttpResponse, HttpServer, web};
use actix_ws::AggregatedMessage;
use anyhow::Context as _;
use bytestring::ByteString;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use crate::apps::WORKERS;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Message {
    event_id: String,
    conversation: String,
    user: User,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct User {
    id: String,
    name: String,
}

#[derive(Default)]
pub struct Shared {
    sessions: Mutex<Vec<actix_ws::Session>>,
    /// Length of the frames to broadcast (omnihub's, sampled); 0 until set.
    pub frame_len: AtomicUsize,
    seq: AtomicU64,
    token: String,
}

pub struct BareHub {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BareHub {
    pub fn start(token: &str) -> anyhow::Result<BareHub> {
        let shared = Arc::new(Shared {
            token: format!("Bearer {token}"),
            ..Shared::default()
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/hooks/api/{channel_id}", web::post().to(hook))
                .route("/ws", web::get().to(socket))
        })
        .workers(WORKERS)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .context("cannot bind the bare hub listener")?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .context("the server bound no address")?;
        let server = server.run();
        Ok(BareHub {
            addr,
            shared,
            handle: server.handle(),
            task: tokio::spawn(server),
        })
    }

    /// Forgets the sockets of an earlier phase.
    pub fn forget_sockets(&self) {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(false).await;
        self.task
            .await
            .context("the bare hub task panicked")?
            .context("the bare hub server failed")
    }
}

async fn hook(
    req: HttpRequest,
    shared: web::Data<Shared>,
    _channel: web::Path<String>,
    body: web::Json<Message>,
) -> HttpResponse {
    let authorised = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == shared.token.as_bytes());
    if !authorised {
        return HttpResponse::Unauthorized().finish();
    }
    let sessions = shared
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !sessions.is_empty() {
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let frame = render(seq, &body.text, shared.frame_len.load(Ordering::Relaxed));
        actix_web::rt::spawn(async move {
            for mut session in sessions {
                let _ = session.text(frame.clone()).await;
            }
        });
    }
    HttpResponse::Ok().json(json!({
        "message_id": "01900000-0000-7000-8000-000000000000",
        "duplicate": false,
    }))
}

/// An event frame carrying `text`, padded to `len` bytes where it is shorter.
fn render(seq: u64, text: &str, len: usize) -> ByteString {
    let mut frame = json!({
        "v": 1, "type": "event", "seq": seq, "kind": "message_created",
        "payload": {"text": text, "pad": ""},
    })
    .to_string();
    if frame.len() < len {
        let pad = "x".repeat(len - frame.len());
        frame = frame.replacen(r#""pad":"""#, &format!(r#""pad":"{pad}""#), 1);
    }
    ByteString::from(frame)
}

async fn socket(
    req: HttpRequest,
    body: web::Payload,
    shared: web::Data<Shared>,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let mut stream = stream
        .max_frame_size(64 * 1024)
        .aggregate_continuations()
        .max_continuation_size(64 * 1024);
    let shared = shared.into_inner();
    actix_web::rt::spawn(async move {
        let mut welcomed = false;
        while let Some(Ok(message)) = stream.next().await {
            match message {
                AggregatedMessage::Text(_) if !welcomed => {
                    welcomed = true;
                    if session.text(r#"{"v":1,"type":"welcome"}"#).await.is_err() {
                        return;
                    }
                    shared
                        .sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(session.clone());
                }
                AggregatedMessage::Ping(bytes) => {
                    // A failed pong means the socket is gone; the stream ends next.
                    let _ = session.pong(&bytes).await;
                }
                AggregatedMessage::Close(_) => break,
                _ => {}
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_padded_to_the_sampled_length() {
        let frame = render(3, "bench:1:2 hi", 300);
        assert_eq!(frame.len(), 300);
        assert_eq!(crate::sockets::delivery(&frame), Some((1, 2)));
        assert!(render(3, "t", 10).len() > 10);
    }
}
