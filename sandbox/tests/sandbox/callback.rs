//! omnihub's side of a webhook, reduced to what the provider tests need: an HTTP server that
//! hands every request, raw, to a connector's `webhook()` and answers as the HTTP layer will
//! (handshake body, 200 with the acknowledgement, 401, 400, 405), keeping every outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnihub_connectors::provider::{
    InboundUpdate, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use tokio::sync::watch;

pub const WAIT: Duration = Duration::from_secs(5);

type Outcome = Result<WebhookReply, WebhookError>;

struct State {
    channel: Arc<dyn ProviderChannel>,
    outcomes: Mutex<Vec<Outcome>>,
    changed: watch::Sender<usize>,
}

pub struct CallbackServer {
    url: String,
    state: Arc<State>,
    server: ServerHandle,
}

impl CallbackServer {
    pub async fn start(channel: Arc<dyn ProviderChannel>) -> CallbackServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}/hooks/test/1", listener.local_addr().unwrap());
        let state = Arc::new(State {
            channel,
            outcomes: Mutex::new(Vec::new()),
            changed: watch::Sender::new(0),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        CallbackServer {
            url,
            state,
            server: handle,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request's outcome, in arrival order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.state.outcomes.lock().unwrap().clone()
    }

    /// The updates of every accepted request, in order.
    pub fn updates(&self) -> Vec<InboundUpdate> {
        self.outcomes()
            .into_iter()
            .filter_map(|outcome| match outcome {
                Ok(WebhookReply::Updates { updates, .. }) => Some(updates),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Waits until at least `count` updates were accepted (or [`WAIT`] passed).
    pub async fn wait_for_updates(&self, count: usize) -> Vec<InboundUpdate> {
        let mut changes = self.state.changed.subscribe();
        let _ =
            tokio::time::timeout(WAIT, changes.wait_for(|_| self.updates().len() >= count)).await;
        self.updates()
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

async fn receive(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = request.headers().iter().filter_map(|(name, value)| {
        Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
    });
    let method = request.method().as_str().to_string();
    let webhook = WebhookRequest::new(&method, request.query_string(), headers, &body);
    let outcome = state.channel.webhook(&webhook);
    let response = match &outcome {
        Ok(WebhookReply::Handshake { body }) => HttpResponse::Ok()
            .content_type("text/plain")
            .body(body.clone()),
        Ok(WebhookReply::Updates { ack_body, .. }) => HttpResponse::Ok().body(*ack_body),
        Err(WebhookError::Unauthorized) => HttpResponse::Unauthorized().finish(),
        Err(WebhookError::Malformed(reason)) => HttpResponse::BadRequest().body(reason.clone()),
        Err(WebhookError::MethodNotAllowed) => HttpResponse::MethodNotAllowed().finish(),
    };
    state.outcomes.lock().unwrap().push(outcome);
    state.changed.send_modify(|n| *n += 1);
    response
}
