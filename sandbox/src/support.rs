//! Small pieces the HTTP fakes share: a per-second request budget, a multipart/form-data
//! reader for upload endpoints, a JSON Schema compiler that tolerates the dialects providers
//! publish, and a log of requests that broke the provider's schema.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Counts requests per key in a sliding one-second window.
#[derive(Default)]
pub(crate) struct RateWindow {
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateWindow {
    /// Whether one more request under `key` fits `per_second`; a refused one is not counted
    /// against the window (providers count what they served).
    pub(crate) fn admit(&self, key: &str, per_second: u32) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let now = Instant::now();
        let window = seen.entry(key.to_string()).or_default();
        while window
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() >= per_second as usize {
            return false;
        }
        window.push_back(now);
        true
    }
}

/// One part of a multipart/form-data body.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub name: String,
    /// The `filename` of a file part.
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parts of a multipart/form-data body (RFC 7578), or why it is not one.
pub(crate) fn multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|param| param.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("not multipart/form-data with a boundary")?;
    if !content_type.trim_start().starts_with("multipart/form-data") {
        return Err("not multipart/form-data".into());
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, &delimiter).ok_or("no opening boundary")?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a boundary not followed by CRLF")?;
        let header_end = find(rest, b"\r\n\r\n").ok_or("a part without headers")?;
        let headers = String::from_utf8_lossy(&rest[..header_end]).into_owned();
        rest = &rest[header_end + 4..];
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let end = find(rest, &closing).ok_or("a part without a closing boundary")?;
        let bytes = rest[..end].to_vec();
        rest = &rest[end + closing.len()..];
        let mut name = None;
        let mut file_name = None;
        let mut content_type = None;
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                for param in value.split(';').map(str::trim) {
                    if let Some(v) = param.strip_prefix("name=") {
                        name = Some(v.trim_matches('"').to_string());
                    } else if let Some(v) = param.strip_prefix("filename=") {
                        file_name = Some(v.trim_matches('"').to_string());
                    }
                }
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_string());
            }
        }
        parts.push(Part {
            name: name.ok_or("a part without a name")?,
            file_name,
            content_type,
            bytes,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Compiles a draft-07 schema; the providers' own schemas are known to compile, so a failure
/// here is a bug in how the fake assembled them and is reported as a violation of its own.
pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(schema)
        .map_err(|err| format!("schema does not compile: {err}"))
}

/// Every way `instance` breaks `validator`, as readable lines.
pub(crate) fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect()
}

/// Requests that broke the provider's published schema, in arrival order.
#[derive(Default)]
pub(crate) struct Violations(Mutex<Vec<String>>);

impl Violations {
    pub(crate) fn record(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::warn!(violation = %what, "sandbox: request breaks the provider's schema");
        if let Ok(mut list) = self.0.lock() {
            list.push(what);
        }
    }

    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().map(|list| list.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn multipart_parts_are_read() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--xyz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--xyz--\r\n";
        let parts = multipart("multipart/form-data; boundary=xyz", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "photo");
        assert_eq!(parts[0].file_name.as_deref(), Some("a.png"));
        assert_eq!(parts[1].file_name, None);
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].bytes, b"\x89PNG");
        assert_eq!(parts[1].bytes, b"1");
        assert!(multipart("application/json", body).is_err());
    }

    #[test]
    fn the_window_admits_a_budget_per_second() {
        let window = RateWindow::default();
        assert!((0..3).all(|_| window.admit("a", 3)));
        assert!(!window.admit("a", 3));
        assert!(window.admit("b", 3));
    }
}
