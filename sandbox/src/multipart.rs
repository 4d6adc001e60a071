//! Just enough of `multipart/form-data` (RFC 7578) for the fakes' upload endpoints: the parts,
//! their names, file names, content types and bytes. Anything malformed is an error the fake
//! answers 400 to, as the real endpoint would.

/// One part of a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// The parts of `body`, given the request's `Content-Type` header.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|param| param.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("multipart/form-data without a boundary")?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let start = find(rest, delimiter.as_bytes()).ok_or("no multipart delimiter")?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a delimiter not followed by CRLF")?;
        let header_end = find(rest, b"\r\n\r\n").ok_or("a part without a header end")?;
        let headers =
            std::str::from_utf8(&rest[..header_end]).map_err(|_| "non-UTF-8 part headers")?;
        rest = &rest[header_end + 4..];
        let next =
            find(rest, format!("\r\n{delimiter}").as_bytes()).ok_or("an unterminated part")?;
        let data = rest[..next].to_vec();
        rest = &rest[next + 2 + delimiter.len()..];
        let mut part = Part {
            name: String::new(),
            file_name: None,
            content_type: None,
            data,
        };
        for line in headers.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("a bad part header: {line}"));
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for param in value.split(';').map(str::trim).skip(1) {
                        if let Some((key, quoted)) = param.split_once('=') {
                            let unquoted = quoted.trim_matches('"').to_string();
                            match key {
                                "name" => part.name = unquoted,
                                "filename" => part.file_name = Some(unquoted),
                                _ => {}
                            }
                        }
                    }
                }
                "content-type" => part.content_type = Some(value.trim().to_string()),
                _ => {}
            }
        }
        if part.name.is_empty() {
            return Err("a part without a name".into());
        }
        parts.push(part);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--x\r\n--XyZ--\r\n";
        let parts = parse("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "messaging_product");
        assert_eq!(parts[0].data, b"whatsapp");
        assert_eq!(parts[1].file_name.as_deref(), Some("a.pdf"));
        assert_eq!(parts[1].content_type.as_deref(), Some("application/pdf"));
        assert_eq!(parts[1].data, b"%PDF\r\n--x");
        assert!(parse("multipart/form-data", body).is_err());
        assert!(parse("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken").is_err());
    }
}
