//! A stand-in for omnihub's webhook route: a loopback HTTP server that hands every request to a
//! provider channel's `webhook` and answers as the HTTP layer will (the handshake body, the
//! acknowledgement after the updates are "committed" here, 401/400/405 for refusals). Every
//! outcome is kept, refusals included, so tests can see what was turned away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnihub_connectors::provider::{
    InboundMessage, InboundUpdate, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use tokio::sync::watch;

/// How long [`WebhookReceiver::wait_for_updates`] waits for deliveries made in the background.
const WAIT: Duration = Duration::from_secs(5);

/// What the channel made of one request.
pub type Outcome = Result<WebhookReply, WebhookError>;

struct Shared {
    channel: Arc<dyn ProviderChannel>,
    received: Mutex<Vec<InboundUpdate>>,
    outcomes: Mutex<Vec<Outcome>>,
    changed: watch::Sender<usize>,
}

pub struct WebhookReceiver {
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl WebhookReceiver {
    pub fn start(channel: Arc<dyn ProviderChannel>) -> WebhookReceiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            channel,
            received: Mutex::new(Vec::new()),
            outcomes: Mutex::new(Vec::new()),
            changed: watch::Sender::new(0),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hook", web::to(hook))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        WebhookReceiver {
            url,
            shared,
            handle,
        }
    }

    /// The customer messages received so far, in order.
    pub fn messages(&self) -> Vec<InboundMessage> {
        self.updates()
            .into_iter()
            .filter_map(|update| match update {
                InboundUpdate::Message(message) => Some(message),
                InboundUpdate::Status(_)
                | InboundUpdate::Blocked { .. }
                | InboundUpdate::Unblocked { .. } => None,
            })
            .collect()
    }

    /// Every update of every accepted request (messages and statuses), in order.
    pub fn updates(&self) -> Vec<InboundUpdate> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Every request's outcome, in arrival order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.shared.outcomes.lock().unwrap().clone()
    }

    /// Waits until at least `count` customer messages were accepted (or a few seconds passed)
    /// and returns them all either way.
    pub async fn wait_for_messages(&self, count: usize) -> Vec<InboundMessage> {
        let mut changes = self.shared.changed.subscribe();
        let _ =
            tokio::time::timeout(WAIT, changes.wait_for(|_| self.messages().len() >= count)).await;
        self.messages()
    }

    /// Waits until at least `count` updates were accepted (or a few seconds passed) and returns
    /// them all either way.
    pub async fn wait_for_updates(&self, count: usize) -> Vec<InboundUpdate> {
        let mut changes = self.shared.changed.subscribe();
        let _ =
            tokio::time::timeout(WAIT, changes.wait_for(|_| self.updates().len() >= count)).await;
        self.updates()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn hook(shared: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let webhook = WebhookRequest::new(
        request.method().as_str(),
        request.query_string(),
        headers,
        &body,
    );
    let outcome = shared.channel.webhook(&webhook);
    let response = match &outcome {
        Ok(WebhookReply::Handshake { body }) => HttpResponse::Ok()
            .content_type("text/plain")
            .body(body.clone()),
        Ok(WebhookReply::Updates { updates, ack_body }) => {
            shared
                .received
                .lock()
                .unwrap()
                .extend(updates.iter().cloned());
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(*ack_body)
        }
        Err(WebhookError::Unauthorized) => HttpResponse::Unauthorized().finish(),
        Err(WebhookError::Malformed(reason)) => HttpResponse::BadRequest().body(reason.clone()),
        Err(WebhookError::MethodNotAllowed) => HttpResponse::MethodNotAllowed().finish(),
    };
    shared.outcomes.lock().unwrap().push(outcome);
    shared.changed.send_modify(|n| *n += 1);
    response
}
