//! Building the links the bot hands out: `{public_base}/dl/{token}/{file name}` and
//! `{public_base}/watch/{token}`, and making a user's file name safe for a URL path segment.
//!
//! Pure: no I/O, no Telegram. Called by the front-end's reply formatting and the catalogue's
//! stream URLs (a leaf, so the catalogue does not import the front-end). The file name in a
//! link is cosmetic (the token decides what is served), so sanitising favours a name a
//! person can read — spaces become `_`, path separators and control characters go — and
//! percent-encodes whatever is still not URL-safe (non-ASCII letters stay readable in a
//! browser's address bar, which decodes them).

/// Longest file name kept in a link, in characters (the extension is kept when cutting).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest extension kept whole when a name is shortened.
const MAX_EXTENSION_CHARS: usize = 10;

/// The download link of `token`, with `file_name` (already sanitised or not) as last segment.
pub fn download_link(public_base: &str, token: &str, file_name: &str) -> String {
    let name = sanitize_file_name(file_name).unwrap_or_else(|| "file".to_owned());
    format!(
        "{}/dl/{token}/{}",
        public_base.trim_end_matches('/'),
        percent_encode_segment(&name)
    )
}

/// The player page of `token`.
pub fn watch_link(public_base: &str, token: &str) -> String {
    format!("{}/watch/{token}", public_base.trim_end_matches('/'))
}

/// A readable name that is safe inside one URL path segment once percent-encoded: no path
/// separators, control characters or characters that end a path (`?`, `#`), runs of
/// whitespace and such characters become one `_`, no leading dots (`..` is not a name),
/// at most [`MAX_NAME_CHARS`] characters. `None` when nothing usable is left.
pub fn sanitize_file_name(raw: &str) -> Option<String> {
    let mut cleaned = String::with_capacity(raw.len());
    let mut pending_separator = false;
    for c in raw.chars() {
        if is_separator(c) {
            pending_separator = true;
            continue;
        }
        if pending_separator && !cleaned.is_empty() {
            cleaned.push('_');
        }
        pending_separator = false;
        cleaned.push(c);
    }
    let cleaned = cleaned.trim_start_matches(['.', '_']);
    if cleaned.is_empty() {
        return None;
    }
    Some(shorten(cleaned))
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '/' | '\\' | '?' | '#' | '%' | '"' | '<' | '>' | '|' | ':' | '*'
        )
}

/// Cuts a name to [`MAX_NAME_CHARS`] characters, keeping a short extension.
fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_owned();
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.chars().count() <= MAX_EXTENSION_CHARS);
    match extension {
        Some(ext) => {
            let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
            let stem: String = name.chars().take(keep).collect();
            format!("{stem}.{ext}")
        }
        None => name.chars().take(MAX_NAME_CHARS).collect(),
    }
}

/// Percent-encodes every byte except RFC 3986 unreserved characters (`A–Z a–z 0–9 - . _ ~`),
/// so the result is one path segment whatever the input.
pub fn percent_encode_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(segment.len());
    for &byte in segment.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// A name for a file that came without one: `{prefix}_{msg_id}.{extension of mime}`.
pub fn default_file_name(prefix: &str, msg_id: i32, mime_type: Option<&str>) -> String {
    format!(
        "{prefix}_{msg_id}.{}",
        extension_for_mime(mime_type.unwrap_or(""))
    )
}

/// The usual extension of the MIME types users send; `bin` for the rest.
pub fn extension_for_mime(mime_type: &str) -> &'static str {
    let essence = mime_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "video/mp4" => "mp4",
        "video/x-matroska" => "mkv",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "video/x-msvideo" => "avi",
        "audio/mpeg" => "mp3",
        "audio/mp4" | "audio/x-m4a" => "m4a",
        "audio/ogg" => "ogg",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/wav" | "audio/x-wav" => "wav",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "text/plain" => "txt",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_base_token_and_encoded_name() {
        assert_eq!(
            download_link("https://cdn.example/", "AbC123", "My Film (2024).mkv"),
            "https://cdn.example/dl/AbC123/My_Film_%282024%29.mkv"
        );
        assert_eq!(
            watch_link("https://cdn.example//", "AbC123"),
            "https://cdn.example/watch/AbC123"
        );
        assert_eq!(
            download_link("http://h", "t", "../.."),
            "http://h/dl/t/file",
            "nothing usable left"
        );
    }

    #[test]
    fn sanitising_keeps_names_readable() {
        let cases = [
            ("film.mkv", "film.mkv"),
            ("  two   words .mp4", "two_words_.mp4"),
            ("a/b\\c?d#e%f.txt", "a_b_c_d_e_f.txt"),
            ("../../etc/passwd", "etc_passwd"),
            (".hidden", "hidden"),
            ("tab\there\nnewline", "tab_here_newline"),
            ("Фильм 2.mp4", "Фильм_2.mp4"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                sanitize_file_name(raw).as_deref(),
                Some(expected),
                "{raw:?}"
            );
        }
        for empty in ["", "   ", "///", "..", "\u{0}\u{1}"] {
            assert_eq!(sanitize_file_name(empty), None, "{empty:?}");
        }
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.mkv", "x".repeat(300));
        let short = sanitize_file_name(&long).unwrap();
        assert_eq!(short.chars().count(), MAX_NAME_CHARS);
        assert!(short.ends_with(".mkv"));
        let no_ext = "é".repeat(300);
        assert_eq!(
            sanitize_file_name(&no_ext).unwrap().chars().count(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn encoding_leaves_one_path_segment() {
        assert_eq!(percent_encode_segment("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(percent_encode_segment("é /?#"), "%C3%A9%20%2F%3F%23");
        for raw in ["a/b", "../x", "q?x=1", "#frag", "%2F", "\u{202e}rtl"] {
            let encoded = percent_encode_segment(raw);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "{encoded}"
            );
        }
    }

    #[test]
    fn default_names_follow_the_mime_type() {
        assert_eq!(
            default_file_name("video", 42, Some("video/mp4")),
            "video_42.mp4"
        );
        assert_eq!(
            default_file_name("photo", 7, Some("IMAGE/JPEG; q=1")),
            "photo_7.jpg"
        );
        assert_eq!(default_file_name("file", 1, None), "file_1.bin");
    }
}
