//! `GET /watch/{token}`: a small self-contained page with an HTML5 player, the file's name
//! and size, and a download button.
//!
//! Called by [`super::handle`] after the token and metadata checks. The page loads nothing
//! from elsewhere (no scripts, fonts or styles from other hosts) and every piece of file
//! data in it is HTML-escaped: file names come from Telegram users.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::headers::{content_type, path_segment};
use tgcdn_shared::wire::FileMeta;

/// The page's only style sheet, inline so the page needs nothing else; allowed by its hash
/// in [`content_security_policy`], so no other inline style or any script can run.
const STYLE: &str = "
body { margin: 0; background: #111; color: #eee; font: 16px/1.4 system-ui, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 16px; }
video, audio, img { width: 100%; max-height: 80vh; background: #000; }
h1 { font-size: 1.2em; word-break: break-all; }
a.button { display: inline-block; padding: 8px 16px; background: #2a6ad3; color: #fff; border-radius: 4px; text-decoration: none; }
";

/// The `Content-Security-Policy` of the page: nothing but its own style sheet (by hash) and
/// media from this origin (`/dl`), no script at all, no forms, no framing. A file name that
/// slipped past escaping still could not run anything.
pub fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = base64(&Sha256::digest(STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; media-src 'self'; img-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// Standard base64 with padding, as CSP hash sources are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page for `meta`, whose bytes are at `/dl/{token}/{name}`.
pub fn render(token: &str, meta: &FileMeta) -> String {
    let name = if meta.name.trim().is_empty() {
        "file"
    } else {
        meta.name.as_str()
    };
    let mime = content_type(&meta.mime, name);
    let src = format!("/dl/{}/{}", path_segment(token), path_segment(name));
    let title = escape_html(name);
    let src_attr = escape_html(&src);
    let mime_attr = escape_html(&mime);
    let player = if mime.starts_with("video/") {
        format!(
            "<video controls preload=\"metadata\" playsinline><source src=\"{src_attr}\" type=\"{mime_attr}\">Your browser cannot play this video.</video>"
        )
    } else if mime.starts_with("audio/") {
        format!(
            "<audio controls preload=\"metadata\"><source src=\"{src_attr}\" type=\"{mime_attr}\">Your browser cannot play this audio.</audio>"
        )
    } else if mime.starts_with("image/") {
        format!("<img src=\"{src_attr}\" alt=\"{title}\">")
    } else {
        String::new()
    };
    let size = human_size(meta.size);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
{player}
<h1>{title}</h1>
<p>{size}</p>
<p><a class="button" href="{src_attr}?download" download>Download</a></p>
</main>
</body>
</html>
"#
    )
}

/// Escapes the five characters that matter in HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1536` → `1.5 KiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_meta;

    #[test]
    fn escapes_hostile_names() {
        let meta = test_meta(3 << 30, "<script>alert('x')</script>\".mp4", "video/mp4");
        let page = render("tok", &meta);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;.mp4"));
        assert!(page.contains("<video"));
        assert!(page.contains("3.0 GiB"));
        assert!(page.contains("/dl/tok/%3Cscript%3E"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn csp_allows_exactly_the_pages_style_and_same_origin_media() {
        let page = render("tok", &test_meta(10, "a.mp4", "video/mp4"));
        let policy = content_security_policy();
        let styles: Vec<&str> = page.split("<style>").skip(1).collect();
        assert_eq!(styles.len(), 1, "one style element");
        let inline = styles[0].split("</style>").next().unwrap();
        let hash = base64(&Sha256::digest(inline.as_bytes()));
        assert!(
            policy.contains(&format!("style-src 'sha256-{hash}'")),
            "{policy}"
        );
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains("media-src 'self'") && !policy.contains("script-src"));
        assert!(!page.contains("<script") && !page.contains(" style="));
        // The player's source is a same-origin path, which `media-src 'self'` allows.
        assert!(page.contains("<source src=\"/dl/tok/a.mp4\""));
        assert!(http::HeaderValue::from_str(policy).is_ok());
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn audio_and_other_types() {
        assert!(render("t", &test_meta(10, "a.mp3", "")).contains("<audio"));
        let page = render("t", &test_meta(10, "a.zip", ""));
        assert!(!page.contains("<video") && !page.contains("<audio"));
        assert!(page.contains("10 bytes"));
    }
}
