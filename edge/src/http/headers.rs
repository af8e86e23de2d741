//! Header values derived from a file's metadata: `Content-Type`, `Content-Disposition`,
//! `ETag`, `Last-Modified`, `Cache-Control`. Pure functions, unit-tested, and
//! [`FileHeaders`], the ones that depend on the file alone, built once per metadata fetch.
//!
//! Called by the download and watch handlers, and (for [`FileHeaders::new`]) by the metadata
//! cache when it fills. Every value built here is a valid header value whatever bytes the
//! file name or mime type hold (they come from Telegram users).

use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tgcdn_shared::FileRef;
use tgcdn_shared::range::format_http_date;
use tgcdn_shared::wire::FileMeta;

/// RFC 5987 `attr-char`s stay as they are; everything else is percent-encoded.
const ATTR_CHAR_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Characters escaped in a URL path segment (the file name in `/dl/{token}/{name}` links).
const PATH_SEGMENT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A file's metadata with the response headers that depend on it alone, ready to clone
/// into each response (a `HeaderValue` clone is a reference count, not a copy). Cached by
/// [`crate::fetch::MetaSource`] for as long as the metadata is.
#[derive(Debug)]
pub struct FileHeaders {
    pub meta: FileMeta,
    /// The entity tag as text, for conditional requests.
    pub etag: String,
    /// The `Content-Type` as text, for multipart part headers.
    pub content_type: String,
    /// `None` only if a value could not be a header (dropped, as before, with a warning).
    pub etag_value: Option<HeaderValue>,
    pub last_modified: Option<HeaderValue>,
    pub content_type_value: Option<HeaderValue>,
    pub inline: Option<HeaderValue>,
    pub attachment: Option<HeaderValue>,
    /// Whether a browser should show the file in place unless `?download` asks otherwise.
    pub inline_media: bool,
    /// A type a browser would execute on the edge's origin (see [`is_active_content`]): sent
    /// as an attachment with `Content-Security-Policy: sandbox`.
    pub active: bool,
}

impl FileHeaders {
    pub fn new(file: FileRef, meta: FileMeta) -> Self {
        let etag = etag(
            &meta.unique_id,
            &format!("{}-{}-{}", file.chat_id, file.msg_id, meta.size),
        );
        let content_type = content_type(&meta.mime, &meta.name);
        FileHeaders {
            etag_value: header_value("etag", etag.clone()),
            last_modified: header_value("last-modified", format_http_date(meta.date)),
            content_type_value: header_value("content-type", content_type.clone()),
            inline: header_value(
                "content-disposition",
                content_disposition(&meta.name, false),
            ),
            attachment: header_value("content-disposition", content_disposition(&meta.name, true)),
            inline_media: is_inline_media(&content_type),
            active: is_active_content(&content_type),
            etag,
            content_type,
            meta,
        }
    }

    /// `Content-Disposition` for this response.
    pub fn disposition(&self, attachment: bool) -> Option<&HeaderValue> {
        if attachment || !self.inline_media {
            self.attachment.as_ref()
        } else {
            self.inline.as_ref()
        }
    }
}

/// A header value from text that may, in theory, hold bytes a header cannot; such a value
/// is dropped (and logged) rather than failing the request.
pub fn header_value(name: &'static str, text: String) -> Option<HeaderValue> {
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(text)) {
        Ok(value) => Some(value),
        Err(_) => {
            tracing::warn!(header = name, "dropped an unrepresentable header value");
            None
        }
    }
}

/// The fallback when a file has no usable name.
pub const DEFAULT_FILE_NAME: &str = "file";

/// The mime type to send: the document's own if it looks like one, else a guess from the
/// name, else `application/octet-stream`.
pub fn content_type(mime: &str, name: &str) -> String {
    let mime = mime.trim();
    if is_plausible_mime(mime) {
        return mime.to_ascii_lowercase();
    }
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

fn is_plausible_mime(mime: &str) -> bool {
    let Some((kind, subtype)) = mime.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    token(kind) && token(subtype)
}

/// Whether a browser should show this type in place (`inline`) rather than save it. Never
/// true for [`is_active_content`] types, whatever their prefix (`image/svg+xml`).
pub fn is_inline_media(content_type: &str) -> bool {
    let media = ["video/", "audio/", "image/"]
        .iter()
        .any(|prefix| content_type.starts_with(prefix))
        || content_type == "application/pdf"
        || content_type == "text/plain";
    media && !is_active_content(content_type)
}

/// Whether a browser opening this type would run script or markup on the edge's origin:
/// HTML, XHTML, SVG, any XML (XSLT can render HTML), JavaScript and their kin. The files come
/// from Telegram users, so such a file must never be a document of our origin: it is sent as
/// an attachment with `Content-Security-Policy: sandbox` (and `nosniff` keeps a harmless label
/// from being second-guessed into one of these).
pub fn is_active_content(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        // Not a media type at all: a browser would sniff it; treat it as dangerous.
        return true;
    };
    // Beyond the substring checks below: types browsers render as documents that can run
    // script or load active content.
    const ACTIVE: &[&str] = &[
        "application/xml",
        "text/xml",
        "text/xsl",
        "application/xslt",
        "text/jscript",
        "text/livescript",
        "application/x-shockwave-flash",
        "text/cache-manifest",
        "multipart/x-mixed-replace",
        "message/rfc822",
    ];
    let (base, suffix) = match subtype.split_once('+') {
        Some((base, suffix)) => (base, Some(suffix)),
        None => (subtype, None),
    };
    // `+xml` types (SVG, XHTML, MathML, RSS, …) are all parsed as XML documents.
    suffix == Some("xml")
        || subtype.contains("javascript")
        || subtype.contains("ecmascript")
        || subtype.contains("html")
        || ACTIVE.contains(&format!("{kind}/{base}").as_str())
}

/// `Content-Disposition` per RFC 6266: an ASCII `filename` fallback for old clients and the
/// exact UTF-8 name as `filename*=UTF-8''…` (RFC 5987).
pub fn content_disposition(name: &str, attachment: bool) -> String {
    let name = if name.trim().is_empty() {
        DEFAULT_FILE_NAME
    } else {
        name
    };
    let kind = if attachment { "attachment" } else { "inline" };
    let fallback = ascii_fallback(name);
    let encoded = utf8_percent_encode(name, ATTR_CHAR_ENCODE);
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The name with every character a quoted-string cannot safely carry (non-ASCII, controls,
/// `"` and `\`) replaced by `_`.
fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A strong entity tag from the file's Telegram unique id, which never changes for a file.
/// Characters an entity tag cannot hold are dropped; `fallback` is used if none remain.
pub fn etag(unique_id: &str, fallback: &str) -> String {
    let clean: String = unique_id
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"')
        .collect();
    let tag = if clean.is_empty() { fallback } else { &clean };
    format!("\"{tag}\"")
}

/// `Cache-Control` for a file response: the file behind a link never changes, so it is
/// immutable, but a cache may keep it no longer than the link lives.
pub fn cache_control(max_age_secs: u64, expires_at: Option<u64>, now_unix: u64) -> String {
    let max_age = match expires_at {
        Some(expiry) => max_age_secs.min(expiry.saturating_sub(now_unix)),
        None => max_age_secs,
    };
    format!("public, max-age={max_age}, immutable")
}

/// A name as one URL path segment.
pub fn path_segment(name: &str) -> String {
    utf8_percent_encode(name, PATH_SEGMENT_ENCODE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_prefers_the_documents_mime() {
        assert_eq!(content_type("video/MP4", "x.mkv"), "video/mp4");
        assert_eq!(content_type("", "film.mkv"), "video/x-matroska");
        assert_eq!(content_type("garbage\r\n", "a.mp3"), "audio/mpeg");
        assert_eq!(content_type("", "noext"), "application/octet-stream");
        assert!(is_inline_media("video/mp4"));
        assert!(!is_inline_media("application/zip"));
    }

    #[test]
    fn browser_executable_types_are_active_and_never_inline() {
        for active in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "application/xhtml+xml",
            "image/svg+xml",
            "application/xml",
            "text/xml",
            "application/rss+xml",
            "application/mathml+xml",
            "text/javascript",
            "application/javascript",
            "application/x-javascript",
            "application/ecmascript",
            "text/xsl",
            "application/x-shockwave-flash",
            "multipart/x-mixed-replace",
            "not a type",
        ] {
            assert!(is_active_content(active), "{active}");
            assert!(!is_inline_media(active), "{active}");
        }
        for passive in [
            "video/mp4",
            "audio/mpeg",
            "image/png",
            "image/jpeg",
            "text/plain",
            "application/pdf",
            "application/zip",
            "application/octet-stream",
            "application/json",
            "text/vtt",
        ] {
            assert!(!is_active_content(passive), "{passive}");
        }
        // The name's guess is active too when the document carries no usable type.
        assert!(is_active_content(&content_type("", "x.svg")));
        assert!(is_active_content(&content_type("", "x.html")));
    }

    #[test]
    fn content_disposition_encodes_utf8_and_has_ascii_fallback() {
        assert_eq!(
            content_disposition("Фильм \"1\" 😀.mkv", false),
            "inline; filename=\"_____ _1_ _.mkv\"; \
             filename*=UTF-8''%D0%A4%D0%B8%D0%BB%D1%8C%D0%BC%20%221%22%20%F0%9F%98%80.mkv"
        );
        assert_eq!(
            content_disposition("a b.txt", true),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        assert_eq!(
            content_disposition("  ", true),
            "attachment; filename=\"file\"; filename*=UTF-8''file"
        );
        // Header-breaking bytes never survive.
        let value = content_disposition("x\r\ny: z\\.bin", true);
        assert!(http::HeaderValue::from_str(&value).is_ok());
        assert!(!value.contains('\r') && !value.contains("\\"));
    }

    #[test]
    fn etag_is_strong_and_clean() {
        assert_eq!(etag("AgADxyz", "f"), "\"AgADxyz\"");
        assert_eq!(etag("a\"b c", "f"), "\"abc\"");
        assert_eq!(etag("", "1-2-3"), "\"1-2-3\"");
    }

    #[test]
    fn cache_control_never_outlives_the_link() {
        assert_eq!(
            cache_control(86_400, None, 0),
            "public, max-age=86400, immutable"
        );
        assert_eq!(
            cache_control(86_400, Some(1_000), 900),
            "public, max-age=100, immutable"
        );
        assert_eq!(
            cache_control(86_400, Some(10), 900),
            "public, max-age=0, immutable"
        );
    }

    #[test]
    fn file_headers_are_built_once_with_both_dispositions() {
        let file = FileRef {
            chat_id: -100,
            msg_id: 7,
        };
        let meta = FileMeta {
            size: 42,
            mime: "video/mp4".to_owned(),
            name: "a b.mp4".to_owned(),
            unique_id: String::new(),
            date: 1_700_000_000,
            dc: 2,
        };
        let known = FileHeaders::new(file, meta);
        assert_eq!(known.etag, "\"-100-7-42\"");
        assert_eq!(known.etag_value.as_ref().unwrap(), "\"-100-7-42\"");
        assert_eq!(
            known.last_modified.as_ref().unwrap(),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(known.content_type_value.as_ref().unwrap(), "video/mp4");
        let inline = known.disposition(false).unwrap().to_str().unwrap();
        assert!(inline.starts_with("inline;"), "{inline}");
        let saved = known.disposition(true).unwrap().to_str().unwrap();
        assert!(saved.starts_with("attachment;"), "{saved}");
        // Not media: always an attachment.
        let zip = FileMeta {
            mime: "application/zip".to_owned(),
            ..known.meta.clone()
        };
        let zip = FileHeaders::new(file, zip);
        assert!(
            zip.disposition(false)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        assert!(!known.active && !zip.active);
        // An SVG is an image a browser would run script in: never inline.
        let svg = FileMeta {
            mime: "image/svg+xml".to_owned(),
            ..known.meta.clone()
        };
        let svg = FileHeaders::new(file, svg);
        assert!(svg.active);
        let disposition = svg.disposition(false).unwrap().to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
    }

    #[test]
    fn path_segment_escapes_slashes_and_unicode() {
        assert_eq!(path_segment("a/b ё.mkv"), "a%2Fb%20%D1%91.mkv");
    }
}
