//! A Bot API request's parameters, in the four ways Telegram accepts them: the query string,
//! `application/json`, `application/x-www-form-urlencoded` and `multipart/form-data` (the only
//! way to upload a file).

use super::schema::Param;

/// A file uploaded in a multipart request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field it came in (`photo`, `document`…).
    pub field: String,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parameters of one request, in arrival order, and its files.
#[derive(Debug, Default)]
pub(crate) struct RequestParams {
    pub params: Vec<(String, Param)>,
    pub files: Vec<UploadedFile>,
}

pub(crate) fn parse(
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<RequestParams, String> {
    let mut request = RequestParams::default();
    for (name, value) in form_pairs(query.as_bytes()) {
        request.params.push((name, Param::Text(value)));
    }
    if body.is_empty() {
        return Ok(request);
    }
    let content_type = content_type.unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|_| "Bad Request: can't parse JSON request body".to_string())?;
            let object = value
                .as_object()
                .ok_or("Bad Request: the JSON request body must be an object")?;
            for (name, value) in object {
                request
                    .params
                    .push((name.clone(), Param::Json(value.clone())));
            }
        }
        "application/x-www-form-urlencoded" => {
            for (name, value) in form_pairs(body) {
                request.params.push((name, Param::Text(value)));
            }
        }
        "multipart/form-data" => {
            let boundary = parameter(content_type, "boundary")
                .ok_or("Bad Request: multipart request without a boundary")?;
            for part in multipart(body, &boundary)? {
                match part.file_name {
                    Some(file_name) => {
                        request.params.push((part.name.clone(), Param::File));
                        request.files.push(UploadedFile {
                            field: part.name,
                            file_name: Some(file_name),
                            mime_type: part.content_type,
                            bytes: part.body,
                        });
                    }
                    None => {
                        let text = String::from_utf8(part.body).map_err(|_| {
                            format!("Bad Request: field \"{}\" is not UTF-8", part.name)
                        })?;
                        request.params.push((part.name, Param::Text(text)));
                    }
                }
            }
        }
        other => return Err(format!("Bad Request: unsupported content type {other:?}")),
    }
    Ok(request)
}

fn form_pairs(encoded: &[u8]) -> Vec<(String, String)> {
    if encoded.is_empty() {
        return Vec::new();
    }
    // The URL parser decodes `+` and percent escapes as forms need.
    let query = String::from_utf8_lossy(encoded);
    reqwest::Url::parse(&format!("http://form/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// `name=value` or `name="value"` among a header's `;`-separated parameters.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|item| {
        let (key, value) = item.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

struct FormPart {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// RFC 7578 parts between `--boundary` delimiters.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<FormPart>, String> {
    let malformed = || "Bad Request: malformed multipart body".to_string();
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut position = find(body, delimiter.as_bytes(), 0).ok_or_else(malformed)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = &body[position..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        if !rest.starts_with(b"\r\n") {
            return Err(malformed());
        }
        let start = position + 2;
        let end = find(body, next_delimiter.as_bytes(), start).ok_or_else(malformed)?;
        let part = &body[start..end];
        let header_end = find(part, b"\r\n\r\n", 0).ok_or_else(malformed)?;
        let headers = String::from_utf8_lossy(&part[..header_end]);
        let mut name = None;
        let mut file_name = None;
        let mut content_type = None;
        for line in headers.split("\r\n") {
            let Some((header, value)) = line.split_once(':') else {
                continue;
            };
            if header.trim().eq_ignore_ascii_case("content-disposition") {
                name = parameter(value, "name");
                file_name = parameter(value, "filename").map(|name| percent_decode(&name));
            } else if header.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_string());
            }
        }
        parts.push(FormPart {
            name: name.ok_or_else(malformed)?,
            file_name,
            content_type,
            body: part[header_end + 4..].to_vec(),
        });
        position = end + next_delimiter.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|index| index + from)
}

/// reqwest percent-encodes file names that are not plain ASCII.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn multipart_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"%D1%87%D0%B5%D0%BA.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\r\n--not-the-end\r\n--XyZ--\r\n";
        let request = parse("", Some("multipart/form-data; boundary=XyZ"), body).unwrap();
        assert!(matches!(&request.params[0], (n, Param::Text(v)) if n == "chat_id" && v == "42"));
        assert!(matches!(&request.params[1], (n, Param::File) if n == "photo"));
        let file = &request.files[0];
        assert_eq!(file.file_name.as_deref(), Some("чек.png"));
        assert_eq!(file.mime_type.as_deref(), Some("image/png"));
        assert_eq!(file.bytes, b"\x89PNG\r\n--not-the-end");
    }

    #[test]
    fn query_json_and_urlencoded() {
        let request = parse(
            "offset=5",
            Some("application/x-www-form-urlencoded"),
            b"text=a+b%21",
        )
        .unwrap();
        assert!(matches!(&request.params[1], (_, Param::Text(v)) if v == "a b!"));
        let request = parse("", Some("application/json"), br#"{"chat_id":1}"#).unwrap();
        assert!(matches!(&request.params[0], (_, Param::Json(v)) if v == 1));
        assert!(parse("", Some("application/json"), b"[1]").is_err());
        assert!(parse("", Some("text/plain"), b"x").is_err());
        assert!(
            parse(
                "",
                Some("multipart/form-data; boundary=a"),
                b"--a\r\nbroken"
            )
            .is_err()
        );
    }
}
