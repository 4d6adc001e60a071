//! A stand-in for omnihub's webhook route: a loopback HTTP server that hands every request to a
//! provider channel's `webhook` and answers as the HTTP layer will (the handshake body, the
//! acknowledgement after the updates are "committed" here, 401/400/405 for refusals).

use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnihub_connectors::provider::{
    InboundMessage, InboundUpdate, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};

struct Shared {
    channel: Arc<dyn ProviderChannel>,
    received: Mutex<Vec<InboundUpdate>>,
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
        self.shared
            .received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|update| match update {
                InboundUpdate::Message(message) => Some(message.clone()),
                InboundUpdate::Status(_) => None,
            })
            .collect()
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
    match shared.channel.webhook(&webhook) {
        Ok(WebhookReply::Handshake { body }) => {
            HttpResponse::Ok().content_type("text/plain").body(body)
        }
        Ok(WebhookReply::Updates { updates, ack_body }) => {
            shared.received.lock().unwrap().extend(updates);
            HttpResponse::Ok().content_type("text/plain").body(ack_body)
        }
        Err(WebhookError::Unauthorized) => HttpResponse::Unauthorized().finish(),
        Err(WebhookError::Malformed(reason)) => HttpResponse::BadRequest().body(reason),
        Err(WebhookError::MethodNotAllowed) => HttpResponse::MethodNotAllowed().finish(),
    }
}
