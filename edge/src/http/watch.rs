//! `GET /watch/{token}`: a small self-contained page with an HTML5 player, the file's name
//! and size, and a download button.
//!
//! Called by [`super::handle`] after the token and metadata checks. The page loads nothing
//! from elsewhere (no scripts, fonts or styles from other hosts) and every piece of file
//! data in it is HTML-escaped: file names come from Telegram users.

use super::headers::{content_type, path_segment};
use tgcdn_shared::wire::FileMeta;

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
<style>
body {{ margin: 0; background: #111; color: #eee; font: 16px/1.4 system-ui, sans-serif; }}
main {{ max-width: 960px; margin: 0 auto; padding: 16px; }}
video, audio, img {{ width: 100%; max-height: 80vh; background: #000; }}
h1 {{ font-size: 1.2em; word-break: break-all; }}
a.button {{ display: inline-block; padding: 8px 16px; background: #2a6ad3; color: #fff; border-radius: 4px; text-decoration: none; }}
</style>
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
    fn audio_and_other_types() {
        assert!(render("t", &test_meta(10, "a.mp3", "")).contains("<audio"));
        let page = render("t", &test_meta(10, "a.zip", ""));
        assert!(!page.contains("<video") && !page.contains("<audio"));
        assert!(page.contains("10 bytes"));
    }
}
