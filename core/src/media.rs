//! Attachments: the record of a file attached to a message, and the pure rules about files
//! that every layer shares — which kinds exist, which MIME types an operator may upload, which
//! are safe to show inline in a browser, and how a sender's file name is made safe to use in a
//! `Content-Disposition` header and a mail part. No IO here: the bytes live in the media store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::*;

/// What a file is, as the providers tell it (structured attachments such as locations and
/// contacts are no files and stay in the message text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Image,
    Video,
    Audio,
    Voice,
    Document,
    Sticker,
}

impl AttachmentKind {
    pub const ALL: [AttachmentKind; 6] = [
        AttachmentKind::Image,
        AttachmentKind::Video,
        AttachmentKind::Audio,
        AttachmentKind::Voice,
        AttachmentKind::Document,
        AttachmentKind::Sticker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Video => "video",
            AttachmentKind::Audio => "audio",
            AttachmentKind::Voice => "voice",
            AttachmentKind::Document => "document",
            AttachmentKind::Sticker => "sticker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of an uploaded file by its MIME type: images and videos are sent as such (a
    /// photo in Telegram, an image in WhatsApp), everything else as a document.
    pub fn of_mime(mime: &str) -> Self {
        let mime = mime.to_ascii_lowercase();
        if is_inline_image(&mime) {
            AttachmentKind::Image
        } else if mime.starts_with("video/") {
            AttachmentKind::Video
        } else if mime.starts_with("audio/") {
            AttachmentKind::Audio
        } else {
            AttachmentKind::Document
        }
    }
}

/// Where an attachment's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentState {
    /// Still at the provider: the download runs after the message was committed.
    Pending,
    /// In the media store; downloadable.
    Ready,
    /// The download gave up (too large, refused by the provider, too many failures).
    Failed,
}

impl AttachmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentState::Pending => "pending",
            AttachmentState::Ready => "ready",
            AttachmentState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AttachmentState::Pending,
            AttachmentState::Ready,
            AttachmentState::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A file of a message, or an upload waiting for the reply that sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: AttachmentId,
    pub client_id: ClientId,
    pub conversation_id: ConversationId,
    /// `None` for an upload not sent yet.
    pub message_id: Option<MessageId>,
    pub kind: AttachmentKind,
    /// Sender-controlled: render as text, never as markup.
    pub file_name: String,
    pub mime_type: String,
    /// Bytes; known once stored (sometimes announced by the provider before).
    pub size: Option<i64>,
    /// Hex SHA-256 of the bytes, once stored.
    pub sha256: Option<String>,
    pub state: AttachmentState,
    /// Why the download failed, in the provider's words.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Images a browser may show inline from our origin: raster formats without scripts. SVG is
/// not among them (it can carry script), nor is anything unknown.
pub fn is_inline_image(mime: &str) -> bool {
    matches!(
        mime.trim().to_ascii_lowercase().as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// The type of a raster image by its first bytes (PNG, JPEG, GIF, WebP); `None` for anything
/// else. Providers often say nothing of a photo's format (Telegram's photo sizes), so the bytes
/// tell it once downloaded.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The type of a video from its first bytes: MP4 and QuickTime (an ISO base media file whose
/// `ftyp` box names a video brand; `qt  ` is QuickTime, audio-only brands such as `M4A ` are
/// not videos) and WebM (an EBML header whose document type is `webm`; other Matroska files
/// are not WebM). The declared type and the file name play no part.
pub fn sniff_video(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return match &bytes[8..12] {
            b"qt  " => Some("video/quicktime"),
            b"M4A " | b"M4B " | b"M4P " | b"F4A " | b"F4B " => None,
            _ => Some("video/mp4"),
        };
    }
    if bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        // The DocType element (0x4282) sits in the EBML header, within the first bytes.
        let header = &bytes[..bytes.len().min(64)];
        let webm = header
            .windows(7)
            .any(|w| w[..2] == [0x42, 0x82] && w[3..7] == *b"webm");
        return webm.then_some("video/webm");
    }
    None
}

/// MIME types operators may not upload: what a browser or mail client would run or render as
/// a page, and executables.
const REFUSED_UPLOAD_TYPES: &[&str] = &[
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "application/javascript",
    "text/javascript",
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-sh",
    "application/java-archive",
    "application/vnd.microsoft.portable-executable",
];

/// File-name endings refused whatever type the browser claimed.
const REFUSED_UPLOAD_EXTENSIONS: &[&str] = &[
    "html", "htm", "xhtml", "svg", "js", "mjs", "exe", "msi", "bat", "cmd", "com", "scr", "sh",
    "jar", "ps1", "vbs",
];

/// Why an upload is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadRefusal {
    /// The MIME type is not a `type/subtype` token.
    MalformedType,
    /// A type (or file-name ending) that could run as a page or a program.
    ForbiddenType,
}

/// Checks an operator's upload by its declared type and its file name; the type returned is
/// the normalized one (lower case, no parameters).
pub fn check_upload_type(mime: &str, file_name: &str) -> Result<String, UploadRefusal> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match essence.split_once('/') {
        Some((top, sub)) if token(top) && token(sub) => {}
        _ => return Err(UploadRefusal::MalformedType),
    }
    if REFUSED_UPLOAD_TYPES.contains(&essence.as_str()) {
        return Err(UploadRefusal::ForbiddenType);
    }
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if REFUSED_UPLOAD_EXTENSIONS.contains(&extension.as_str()) {
        return Err(UploadRefusal::ForbiddenType);
    }
    Ok(essence)
}

/// Longest file name kept, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// A sender's file name made safe to keep and to send in headers: the last path component
/// only, no control characters, no quotes or backslashes, no leading dots, at most
/// [`MAX_FILE_NAME_CHARS`]; `fallback` when nothing is left.
pub fn safe_file_name(raw: &str, fallback: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '"' | '\\' | '/' | ':' | '*' | '?' | '<' | '>' | '|')
        })
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned
    }
}

/// The name a file is stored under when the sender gave none: `image.jpg`, `file.pdf`…
pub fn default_file_name(kind: AttachmentKind, mime: &str) -> String {
    let stem = match kind {
        AttachmentKind::Image => "image",
        AttachmentKind::Video => "video",
        AttachmentKind::Audio => "audio",
        AttachmentKind::Voice => "voice",
        AttachmentKind::Sticker => "sticker",
        AttachmentKind::Document => "file",
    };
    let extension = match mime.split(';').next().unwrap_or_default().trim() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    };
    format!("{stem}.{extension}")
}

/// Bytes of a file's head that [`sniff_type`] looks at; a caller reads at least this many (or
/// the whole file, when shorter) before asking.
pub const SNIFF_BYTES: usize = 512;

/// The type of a file by its content, for uploads whose sender is not trusted (the website
/// widget's visitors): the first bytes decide, never the type the browser declared. Container
/// formats that the first bytes cannot tell apart are refined by the file name's ending (a ZIP
/// is a `.docx`, `.xlsx`… when so named, an OLE file a `.doc`, `.xls`…), and text that is
/// valid UTF-8 with no control characters is `text/plain` (`text/csv` when so named) unless it
/// opens like markup, which is `text/html` so that it is refused. Anything else is
/// `application/octet-stream`.
pub fn sniff_type(head: &[u8], file_name: &str) -> &'static str {
    if let Some(image) = sniff_image(head) {
        return image;
    }
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"%PDF-") {
        return "application/pdf";
    }
    if starts(b"PK\x03\x04") {
        return match extension.as_str() {
            "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "odt" => "application/vnd.oasis.opendocument.text",
            "ods" => "application/vnd.oasis.opendocument.spreadsheet",
            _ => "application/zip",
        };
    }
    if starts(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        return match extension.as_str() {
            "doc" => "application/msword",
            "xls" => "application/vnd.ms-excel",
            "ppt" => "application/vnd.ms-powerpoint",
            _ => "application/octet-stream",
        };
    }
    if let Some(video) = sniff_video(head) {
        return video;
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "audio/mp4";
    }
    if starts(b"OggS") {
        return "audio/ogg";
    }
    if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe0 == 0xe0) {
        return "audio/mpeg";
    }
    if head.len() >= 12 && starts(b"RIFF") && &head[8..12] == b"WAVE" {
        return "audio/wav";
    }
    if starts(b"MZ") || starts(b"\x7fELF") {
        return "application/x-msdownload";
    }
    if looks_like_text(head) {
        if opens_like_markup(head) {
            return "text/html";
        }
        return if extension == "csv" {
            "text/csv"
        } else {
            "text/plain"
        };
    }
    "application/octet-stream"
}

/// UTF-8 (a character cut at the end of the head is fine) without NUL or other control
/// characters than tab, line breaks and form feed.
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

/// What a browser would sniff as a page or an image with script: `<!doctype html`, `<html`,
/// `<script`, `<svg`, `<?xml`… after leading white space and a byte-order mark.
fn opens_like_markup(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = start
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
        "<svg",
        "<?xml",
        "<!--",
    ]
    .iter()
    .any(|tag| lower.starts_with(tag))
}

/// Whether `mime` is among `allowed`: exact types, or `type/*` for a whole family.
pub fn type_allowed(mime: &str, allowed: &[String]) -> bool {
    let mime = mime.to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        match a.strip_suffix("/*") {
            Some(family) => mime.split_once('/').is_some_and(|(top, _)| top == family),
            None => a == mime,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_names_lose_paths_quotes_and_control_characters() {
        assert_eq!(safe_file_name("../../etc/passwd", "f"), "passwd");
        assert_eq!(
            safe_file_name("C:\\Users\\a\\report.pdf", "f"),
            "report.pdf"
        );
        assert_eq!(safe_file_name("a\"b\r\n.txt", "f"), "ab.txt");
        assert_eq!(safe_file_name("..", "file.bin"), "file.bin");
        assert_eq!(safe_file_name(".htaccess", "f"), "htaccess");
        assert_eq!(safe_file_name("   ", "file.bin"), "file.bin");
        assert_eq!(safe_file_name("отчёт 1.pdf", "f"), "отчёт 1.pdf");
        assert_eq!(safe_file_name(&"x".repeat(500), "f").chars().count(), 200);
    }

    #[test]
    fn only_raster_images_are_inline() {
        assert!(is_inline_image("image/png"));
        assert!(is_inline_image("IMAGE/JPEG"));
        assert!(!is_inline_image("image/svg+xml"));
        assert!(!is_inline_image("text/html"));
        assert!(!is_inline_image("application/pdf"));
    }

    #[test]
    fn uploads_of_pages_scripts_and_programs_are_refused() {
        assert_eq!(
            check_upload_type("Application/PDF; charset=x", "a.pdf"),
            Ok("application/pdf".into())
        );
        assert_eq!(
            check_upload_type("text/html", "a.txt"),
            Err(UploadRefusal::ForbiddenType)
        );
        assert_eq!(
            check_upload_type("image/svg+xml", "a.svg"),
            Err(UploadRefusal::ForbiddenType)
        );
        assert_eq!(
            check_upload_type("application/octet-stream", "setup.EXE"),
            Err(UploadRefusal::ForbiddenType)
        );
        assert_eq!(
            check_upload_type("nonsense", "a.txt"),
            Err(UploadRefusal::MalformedType)
        );
        assert_eq!(
            check_upload_type("text/plain\r\nX: y", "a.txt"),
            Err(UploadRefusal::MalformedType)
        );
    }

    #[test]
    fn kinds_follow_the_type_and_round_trip() {
        assert_eq!(AttachmentKind::of_mime("image/png"), AttachmentKind::Image);
        assert_eq!(
            AttachmentKind::of_mime("image/svg+xml"),
            AttachmentKind::Document
        );
        assert_eq!(AttachmentKind::of_mime("video/mp4"), AttachmentKind::Video);
        for kind in AttachmentKind::ALL {
            assert_eq!(AttachmentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            default_file_name(AttachmentKind::Image, "image/jpeg"),
            "image.jpg"
        );
    }

    #[test]
    fn the_content_decides_the_type_not_the_name() {
        assert_eq!(sniff_type(b"\x89PNG\r\n\x1a\n....", "a.pdf"), "image/png");
        assert_eq!(sniff_type(b"%PDF-1.7\n", "photo.png"), "application/pdf");
        assert_eq!(
            sniff_type(b"PK\x03\x04rest", "report.docx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(
            sniff_type(b"PK\x03\x04rest", "report.zip"),
            "application/zip"
        );
        assert_eq!(sniff_type(b"hello, world\n", "notes.txt"), "text/plain");
        assert_eq!(
            sniff_type(b"\0\0\0\x18ftypisom\0\0\x02\0", "clip.txt"),
            "video/mp4"
        );
        assert_eq!(
            sniff_type(b"\0\0\0\x14ftypqt  \0\0\x02\0", "clip.mp4"),
            "video/quicktime"
        );
        assert_eq!(
            sniff_type(b"\0\0\0\x18ftypM4A \0\0\x02\0", "song.mp4"),
            "audio/mp4"
        );
        let webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87";
        assert_eq!(sniff_type(webm, "clip.mkv"), "video/webm");
        let matroska = b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska";
        assert_eq!(
            sniff_type(matroska, "clip.webm"),
            "application/octet-stream"
        );
        assert_eq!(sniff_type(b"a,b\n1,2\n", "t.csv"), "text/csv");
        assert_eq!(sniff_type("привет".as_bytes(), "x"), "text/plain");
        // a Cyrillic letter cut in the middle at the end of the head is still text
        assert_eq!(sniff_type(&"привет".as_bytes()[..5], "x"), "text/plain");
        assert_eq!(sniff_type(b"  <!DOCTYPE html><p>x", "a.txt"), "text/html");
        assert_eq!(
            sniff_type(b"\xef\xbb\xbf<svg onload=alert(1)>", "a.png"),
            "text/html"
        );
        assert_eq!(
            sniff_type(b"MZ\x90\x00", "invoice.pdf"),
            "application/x-msdownload"
        );
        assert_eq!(
            sniff_type(b"\x00\x01\x02\x03", "a.txt"),
            "application/octet-stream"
        );
        assert_eq!(sniff_type(b"\x00\x00\x00\x18ftypmp42", "v"), "video/mp4");
    }

    #[test]
    fn allowed_types_take_families() {
        let allowed = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(type_allowed("image/png", &allowed));
        assert!(type_allowed("Application/PDF", &allowed));
        assert!(!type_allowed("text/plain", &allowed));
        assert!(!type_allowed("imagex/png", &allowed));
    }
}
