//! How the fake providers call omnihub back: signed POSTs of webhook bodies and GET handshakes,
//! each recorded with the answer omnihub gave, so a test can see what was delivered and how it
//! was received, and deliver the very same bytes again as a provider's retry would.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A callback that does not answer within this counts as failed, as at the providers.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// One webhook POST as sent, and omnihub's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    /// The exact bytes sent (and signed).
    pub body: Vec<u8>,
    /// The headers sent besides the content type (the signature).
    pub headers: Vec<(String, String)>,
    /// The HTTP status omnihub answered, or `None` when it could not be reached.
    pub status: Option<u16>,
    pub answer: String,
}

impl Delivery {
    /// The body as JSON (the fakes only send JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn accepted(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// Lower-case hex of HMAC-SHA256(`key`, `body`): the signature both Meta and Viber use.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this branch cannot run.
        return String::new();
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// An HTTP client for callbacks.
#[derive(Clone)]
pub struct Caller {
    client: reqwest::Client,
}

impl Caller {
    pub fn new() -> Caller {
        let client = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            // Webhooks go to a local omnihub, whose demo certificate is self-signed.
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Caller { client }
    }

    /// POSTs `body` with `headers` (as JSON unless they carry a `Content-Type`), and records
    /// omnihub's answer.
    pub async fn post(&self, url: &str, body: Vec<u8>, headers: Vec<(String, String)>) -> Delivery {
        let mut request = self.client.post(url).body(body.clone());
        // JSON unless the headers say otherwise (Twilio and Zadarma post forms).
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("Content-Type", "application/json");
        }
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let (status, answer) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (Some(status), response.text().await.unwrap_or_default())
            }
            Err(error) => (None, error.to_string()),
        };
        Delivery {
            url: url.to_string(),
            body,
            headers,
            status,
            answer,
        }
    }

    /// Delivers a recorded delivery again, byte for byte (a provider's retry).
    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        self.post(
            &delivery.url,
            delivery.body.clone(),
            delivery.headers.clone(),
        )
        .await
    }

    /// A GET with `query` appended; the status (`None` when unreachable) and the body.
    pub async fn get(&self, url: &str, query: &[(&str, &str)]) -> (Option<u16>, String) {
        let Ok(mut url) = reqwest::Url::parse(url) else {
            return (None, format!("not a URL: {url}"));
        };
        url.query_pairs_mut().extend_pairs(query);
        match self.client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (Some(status), response.text().await.unwrap_or_default())
            }
            Err(error) => (None, error.to_string()),
        }
    }
}

/// A file fetched by URL, as the provider's media fetcher got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    pub nosniff: bool,
    pub bytes: Vec<u8>,
}

impl Caller {
    /// GETs `url` as a provider fetching media does (no credentials); `Err` when unreachable.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let status = response.status().as_u16();
        let content_type = header("content-type");
        let content_disposition = header("content-disposition");
        let nosniff = header("x-content-type-options").as_deref() == Some("nosniff");
        let bytes = response
            .bytes()
            .await
            .map_err(|err| err.to_string())?
            .to_vec();
        Ok(Fetched {
            status,
            content_type,
            content_disposition,
            nosniff,
            bytes,
        })
    }
}

impl Default for Caller {
    fn default() -> Self {
        Caller::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
