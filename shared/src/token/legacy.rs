//! The older bots' link format (Telegram-Stremio stream ids), read for compatibility only.
//!
//! A legacy token is `base62(zlib_level9(json.dumps({"chat_id": …, "msg_id": …})))`. It
//! carries no signature: anyone can decode one and mint links to every other message of the
//! channel. [`crate::token::TokenVerifier`] therefore refuses it unless the operator opts in.
//! This module decodes untrusted input, so decompression is capped at
//! [`MAX_LEGACY_JSON_LEN`] bytes and must never allocate more than that for a zip bomb.
//! [`encode_legacy`] exists so tests and benches can make such tokens; nothing in tgcdn
//! should hand them out.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::Deserialize;

use super::{Malformed, TokenError, base62};
use crate::FileRef;

/// Largest decompressed JSON accepted. The real records are under 60 bytes.
pub const MAX_LEGACY_JSON_LEN: usize = 1024;

/// The two fields a link needs. Other keys are ignored, as the Python addon's decoder
/// ignored them (its newer links carry e.g. `quality`); everything else stays strict:
/// both fields required, exact types, no duplicates, one object and nothing after it.
#[derive(Deserialize)]
struct LegacyRecord {
    chat_id: i64,
    msg_id: i32,
}

/// Reads a legacy token. Malformed input of any kind is [`TokenError::Malformed`].
pub fn decode_legacy(token: &str) -> Result<FileRef, TokenError> {
    let compressed = base62::decode(token).map_err(Malformed::from)?;
    if compressed.is_empty() {
        return Err(Malformed::Empty.into());
    }
    let json = inflate_bounded(&compressed)?;
    // serde's derived struct also accepts a JSON array; the bots only ever wrote objects.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(Malformed::LegacyJson.into());
    }
    let record: LegacyRecord = serde_json::from_slice(&json).map_err(|_| Malformed::LegacyJson)?;
    Ok(FileRef {
        chat_id: record.chat_id,
        msg_id: record.msg_id,
    })
}

/// Makes a legacy token exactly as the Python bots did: `json.dumps` with its default
/// `", "` / `": "` separators and `chat_id` first, zlib level 9, base62.
pub fn encode_legacy(file: FileRef) -> String {
    let json = format!(
        "{{\"chat_id\": {}, \"msg_id\": {}}}",
        file.chat_id, file.msg_id
    );
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(64), Compression::best());
    // Writing into a Vec cannot fail; the io::Result only exists for other sinks.
    let compressed = encoder
        .write_all(json.as_bytes())
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    base62::encode(&compressed)
}

fn inflate_bounded(compressed: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut json = Vec::with_capacity(128);
    // One byte past the limit tells "too large" apart from "exactly at the limit".
    let limit = (MAX_LEGACY_JSON_LEN + 1) as u64;
    ZlibDecoder::new(compressed)
        .take(limit)
        .read_to_end(&mut json)
        .map_err(|_| Malformed::LegacyZlib)?;
    if json.len() > MAX_LEGACY_JSON_LEN {
        return Err(Malformed::LegacyTooLarge);
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Deserialize)]
    struct Vectors {
        alphabet: String,
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        chat_id: i64,
        msg_id: i32,
        json: String,
        token: String,
        token_len: usize,
    }

    fn vectors() -> Vectors {
        let text = include_str!("../../testdata/legacy_tokens.json");
        serde_json::from_str(text).expect("testdata parses")
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn vectors_decode_to_their_messages() {
        let v = vectors();
        assert_eq!(v.alphabet.as_bytes(), base62::ALPHABET);
        assert_eq!(v.vectors.len(), 5);
        for vector in &v.vectors {
            assert_eq!(vector.token.len(), vector.token_len);
            let file = decode_legacy(&vector.token).unwrap();
            assert_eq!(
                file,
                FileRef {
                    chat_id: vector.chat_id,
                    msg_id: vector.msg_id
                }
            );
        }
    }

    /// miniz_oxide (flate2's default backend) and Python's zlib pick different matches at
    /// level 9 for this record, so our token differs from the Python one (81 characters
    /// against 72). Both decode to the same message; only decoding must be compatible.
    const MINIZ_DIFFERS_FROM_ZLIB: FileRef = FileRef {
        chat_id: -1009876543210,
        msg_id: 2147483647,
    };

    #[test]
    fn encode_reproduces_the_vectors() {
        for vector in vectors().vectors {
            let file = FileRef {
                chat_id: vector.chat_id,
                msg_id: vector.msg_id,
            };
            let expected_json = format!(
                "{{\"chat_id\": {}, \"msg_id\": {}}}",
                file.chat_id, file.msg_id
            );
            assert_eq!(expected_json, vector.json);
            let ours = encode_legacy(file);
            if file == MINIZ_DIFFERS_FROM_ZLIB {
                assert_ne!(
                    ours, vector.token,
                    "backend now matches zlib: make this exact"
                );
                assert_eq!(decode_legacy(&ours).unwrap(), file);
            } else {
                assert_eq!(ours, vector.token, "{}", vector.json);
            }
        }
    }

    #[test]
    fn accepts_either_key_order_and_whitespace() {
        let token = base62::encode(&zlib(br#"{"msg_id":7,"chat_id":-100123}"#));
        assert_eq!(
            decode_legacy(&token).unwrap(),
            FileRef {
                chat_id: -100123,
                msg_id: 7
            }
        );
        let token = base62::encode(&zlib(b" {\"chat_id\": 5,\n \"msg_id\": 6} "));
        assert_eq!(
            decode_legacy(&token).unwrap(),
            FileRef {
                chat_id: 5,
                msg_id: 6
            }
        );
    }

    /// The Python addon wrote extra keys into newer links and its decoder read past them.
    #[test]
    fn ignores_extra_keys_like_the_python_decoder() {
        let file = FileRef {
            chat_id: -1001234567890,
            msg_id: 77,
        };
        for json in [
            &br#"{"chat_id": -1001234567890, "msg_id": 77, "quality": "1080p"}"#[..],
            br#"{"quality": "2160p", "chat_id": -1001234567890, "msg_id": 77}"#,
            br#"{"chat_id": -1001234567890, "msg_id": 77, "extra": {"a": [1, null]}}"#,
        ] {
            let token = base62::encode(&zlib(json));
            assert_eq!(
                decode_legacy(&token),
                Ok(file),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn rejects_bad_json() {
        for json in [
            &br#"{"chat_id": 1}"#[..],
            br#"{"chat_id": 1, "msg_id": 2, "chat_id": 3}"#,
            br#"{"chat_id": 1, "quality": "1080p"}"#,
            br#"{"chat_id": 1, "msg_id": 2} junk"#,
            br#"{"chat_id": "1", "msg_id": 2}"#,
            br#"{"chat_id": 1, "msg_id": 4294967296}"#,
            br#"{"chat_id": 1.5, "msg_id": 2}"#,
            br#"[1, 2]"#,
            b"\xff\xfe",
        ] {
            let token = base62::encode(&zlib(json));
            assert_eq!(
                decode_legacy(&token),
                Err(TokenError::Malformed(Malformed::LegacyJson)),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn rejects_non_zlib_and_bad_text() {
        assert_eq!(
            decode_legacy(""),
            Err(TokenError::Malformed(Malformed::Empty))
        );
        assert_eq!(
            decode_legacy("abcdef"),
            Err(TokenError::Malformed(Malformed::LegacyZlib))
        );
        assert!(matches!(
            decode_legacy("abc-def"),
            Err(TokenError::Malformed(Malformed::BadCharacter {
                position: 3,
                ..
            }))
        ));
        // A valid stream cut short is a zlib error, not a panic.
        let mut cut = zlib(br#"{"chat_id": 1, "msg_id": 2}"#);
        cut.truncate(cut.len() - 6);
        assert_eq!(
            decode_legacy(&base62::encode(&cut)),
            Err(TokenError::Malformed(Malformed::LegacyZlib))
        );
    }

    #[test]
    fn zip_bomb_is_refused_without_inflating_it() {
        // 10 MiB of spaces compresses to ~10 KiB: too long for a token. Within the token
        // length limit, the largest expansion zlib allows is still far past the cap.
        let bomb = zlib(&vec![b' '; 64 * 1024]);
        assert!(bomb.len() <= 95, "bomb is {} bytes", bomb.len());
        assert_eq!(
            decode_legacy(&base62::encode(&bomb)),
            Err(TokenError::Malformed(Malformed::LegacyTooLarge))
        );
        let too_long = base62::encode(&zlib(&vec![b' '; 10 << 20]));
        assert!(matches!(
            decode_legacy(&too_long),
            Err(TokenError::Malformed(Malformed::TooLong { .. }))
        ));
    }

    proptest! {
        #[test]
        fn round_trips(chat_id in any::<i64>(), msg_id in any::<i32>()) {
            let file = FileRef { chat_id, msg_id };
            prop_assert_eq!(decode_legacy(&encode_legacy(file)).unwrap(), file);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[0-9a-zA-Z]{0,140}") {
            let _ = decode_legacy(&text);
        }
    }
}
