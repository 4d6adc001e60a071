//! HTML in mail, both ways: incoming HTML bodies made safe to show (sanitized HTML, or plain
//! text), and outgoing plain text turned into the HTML alternative of a reply.
//!
//! Sanitizing is an allow-list (ammonia): scripts, styles and their contents, event-handler
//! attributes, forms, frames and every URL scheme except `http`, `https`, `mailto` and `tel` are
//! removed; links get `rel="noopener noreferrer nofollow"`. Remote images are dropped unless the
//! viewer asked for them, because loading one tells the sender the mail was opened.

use std::borrow::Cow;
use std::collections::HashSet;

/// Sanitized HTML that is safe to show, with remote images removed (their `src` dropped).
pub fn sanitize_html(html: &str) -> String {
    cleaner(false).clean(html).to_string()
}

/// Like [`sanitize_html`] but keeps `http`/`https` images, for a viewer who chose to load them.
pub fn sanitize_html_with_remote_images(html: &str) -> String {
    cleaner(true).clean(html).to_string()
}

/// The readable text of an HTML body: sanitized first, so nothing of a script or a style
/// survives, then flattened to text with paragraphs as line breaks.
pub fn html_to_text(html: &str) -> String {
    let safe = sanitize_html(html);
    mail_parser::decoders::html::html_to_text(&safe)
        .trim()
        .to_owned()
}

/// The HTML alternative of a plain-text reply: every character escaped, line breaks kept.
pub fn text_to_html(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 64);
    html.push_str("<!DOCTYPE html>\n<html><body><div>");
    for ch in text.chars() {
        match ch {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            '\r' => {}
            '\n' => html.push_str("<br>\n"),
            other => html.push(other),
        }
    }
    html.push_str("</div></body></html>\n");
    html
}

fn cleaner(remote_images: bool) -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto", "tel"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" && !remote_images {
                return None;
            }
            Some(Cow::Borrowed(value))
        });
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#"<html><head><style>body{display:none}</style>
        <script>alert('head')</script></head><body onload="steal()">
        <p>Hello <b>there</b></p><script>document.cookie</script>
        <a href="javascript:alert(1)">click</a> <a href="https://shop.example/x">shop</a>
        <img src="https://tracker.example/pixel.gif" onerror="boom()" alt="pixel">
        <iframe src="https://evil.example"></iframe><form action="https://evil.example">
        <input name="password"></form></body></html>"#;

    #[test]
    fn scripts_handlers_and_javascript_links_are_gone() {
        let safe = sanitize_html(HOSTILE);
        for gone in [
            "<script",
            "alert",
            "document.cookie",
            "onload",
            "onerror",
            "javascript:",
            "<iframe",
            "<form",
            "<input",
            "display:none",
            "tracker.example",
        ] {
            assert!(!safe.contains(gone), "{gone} survived in {safe}");
        }
        assert!(safe.contains("<b>there</b>"), "{safe}");
        assert!(safe.contains(r#"href="https://shop.example/x""#), "{safe}");
        assert!(safe.contains("noopener"), "{safe}");
    }

    #[test]
    fn remote_images_only_on_request() {
        let shown = sanitize_html_with_remote_images(HOSTILE);
        assert!(
            shown.contains("https://tracker.example/pixel.gif"),
            "{shown}"
        );
        assert!(!shown.contains("onerror"), "{shown}");
    }

    #[test]
    fn text_of_html_keeps_words_not_code() {
        let text = html_to_text(HOSTILE);
        assert!(text.contains("Hello"), "{text}");
        assert!(text.contains("there"), "{text}");
        assert!(text.contains("click"), "{text}");
        assert!(!text.contains("alert"), "{text}");
        assert!(!text.contains("cookie"), "{text}");
        assert!(!text.contains("display"), "{text}");
    }

    #[test]
    fn reply_html_is_escaped() {
        let html = text_to_html("a <b> & \"c\"\r\nnext <script>");
        assert!(html.contains("a &lt;b&gt; &amp; &quot;c&quot;<br>\nnext &lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
