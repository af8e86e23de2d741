//! Tests of the signed token format and the verifier; base62 and legacy test themselves.

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_700_000_000;
const SAMPLE: FileRef = FileRef {
    chat_id: -1_001_234_567_890,
    msg_id: 123_456,
};

fn key(id: u8) -> LinkKey {
    LinkKey::new(id, [id.wrapping_mul(31).wrapping_add(7); 32]).unwrap()
}

fn ring(current: u8, older: &[u8]) -> Keyring {
    Keyring::new(key(current), older.iter().map(|&id| key(id)).collect()).unwrap()
}

/// Signs arbitrary body bytes the way `sign` would, to reach errors only a key holder can.
fn sign_raw(key: &LinkKey, version: u8, body: &[u8]) -> String {
    let mut bytes = vec![version, key.id()];
    bytes.extend_from_slice(body);
    let tag = key.tag(&bytes);
    bytes.extend_from_slice(&tag);
    base62::encode(&bytes)
}

fn body_bytes(chat: Chat, msg_id: i32, expires_at: Option<u64>) -> Vec<u8> {
    postcard::to_allocvec(&Body {
        chat,
        msg_id,
        expires_at,
    })
    .unwrap()
}

#[test]
fn required_token_is_at_most_28_characters() {
    let token = ring(1, &[]).sign(SAMPLE, None);
    assert!(token.len() <= 28, "{token} is {} characters", token.len());
    assert_eq!(token.len(), 26);
}

#[test]
fn legacy_token_for_the_same_message_is_longer() {
    let signed = ring(1, &[]).sign(SAMPLE, None);
    let legacy = encode_legacy(SAMPLE);
    assert_eq!(legacy.len(), 59);
    assert!(legacy.len() > signed.len() * 2, "{legacy} vs {signed}");
}

#[test]
fn round_trip_without_and_with_expiry() {
    let keyring = ring(3, &[]);
    let claims = keyring.verify(&keyring.sign(SAMPLE, None), NOW).unwrap();
    assert_eq!(
        claims,
        LinkClaims {
            file: SAMPLE,
            expires_at: None,
            key_id: 3
        }
    );
    // "Never expires" really is never.
    assert!(
        keyring
            .verify(&keyring.sign(SAMPLE, None), u64::MAX)
            .is_ok()
    );

    let token = keyring.sign(SAMPLE, Some(NOW + 3600));
    let claims = keyring.verify(&token, NOW).unwrap();
    assert_eq!(claims.expires_at, Some(NOW + 3600));
    assert_eq!(claims.file, SAMPLE);
    assert!(token.len() <= 36, "{token}");
}

#[test]
fn expiry_is_exclusive() {
    let keyring = ring(1, &[]);
    let token = keyring.sign(SAMPLE, Some(NOW));
    assert!(keyring.verify(&token, NOW - 1).is_ok());
    assert_eq!(
        keyring.verify(&token, NOW),
        Err(TokenError::Expired { expired_at: NOW })
    );
    assert_eq!(
        keyring.verify(&token, NOW + 10),
        Err(TokenError::Expired { expired_at: NOW })
    );
}

#[test]
fn largest_token_fits_the_length_limit() {
    let keyring = ring(255, &[]);
    for chat_id in [i64::MIN, i64::MAX, CHANNEL_ID_BASE - 1, CHANNEL_ID_BASE, 0] {
        for msg_id in [i32::MIN, i32::MAX] {
            let file = FileRef { chat_id, msg_id };
            let token = keyring.sign(file, Some(u64::MAX - 1));
            assert!(token.len() <= MAX_SIGNED_TOKEN_LEN, "{token}");
            assert_eq!(keyring.verify(&token, 0).unwrap().file, file);
        }
    }
}

#[test]
fn malformed_text() {
    let keyring = ring(1, &[]);
    let malformed = |token: &str| match keyring.verify(token, NOW) {
        Err(TokenError::Malformed(m)) => m,
        other => panic!("{token}: {other:?}"),
    };
    assert_eq!(malformed(""), Malformed::Empty);
    assert!(matches!(
        malformed("abc$def"),
        Malformed::BadCharacter {
            position: 3,
            found: b'$'
        }
    ));
    assert!(matches!(
        malformed("abc/def"),
        Malformed::BadCharacter { .. }
    ));
    let long = "1".repeat(MAX_SIGNED_TOKEN_LEN + 1);
    assert_eq!(
        malformed(&long),
        Malformed::TooLong {
            len: long.len(),
            max: MAX_SIGNED_TOKEN_LEN
        }
    );
    let huge = "1".repeat(10 << 20);
    assert!(matches!(malformed(&huge), Malformed::TooLong { .. }));
    // Version 1 but too few bytes for header, body and tag.
    assert!(matches!(
        malformed(&base62::encode(&[1, 1, 0, 0])),
        Malformed::TooShort { len: 4, .. }
    ));
}

#[test]
fn malformed_version() {
    let keyring = ring(1, &[]);
    let good = keyring.sign(SAMPLE, None);
    let mut bytes = base62::decode(&good).unwrap();
    for version in [0u8, 2, 0x78, 255] {
        bytes[0] = version;
        assert_eq!(
            keyring.verify(&base62::encode(&bytes), NOW),
            Err(TokenError::Malformed(Malformed::UnknownVersion { version }))
        );
    }
}

#[test]
fn malformed_body_under_a_valid_tag() {
    let k = key(1);
    let keyring = ring(1, &[]);
    let verify = |token: String| keyring.verify(&token, NOW);

    let mut trailing = body_bytes(Chat::Channel(5), 6, None);
    trailing.extend_from_slice(&[0, 0]);
    assert_eq!(
        verify(sign_raw(&k, 1, &trailing)),
        Err(TokenError::Malformed(Malformed::TrailingBytes { count: 2 }))
    );
    // Enum tag 7 does not exist.
    assert_eq!(
        verify(sign_raw(&k, 1, &[7, 1, 1, 0])),
        Err(TokenError::Malformed(Malformed::Body))
    );
    // Option tag 2 does not exist.
    assert_eq!(
        verify(sign_raw(&k, 1, &[0, 1, 1, 2])),
        Err(TokenError::Malformed(Malformed::Body))
    );
    // Non-canonical spellings of real chats are refused even when signed.
    let other_channel = body_bytes(Chat::Other(CHANNEL_ID_BASE - 5), 6, None);
    assert_eq!(
        verify(sign_raw(&k, 1, &other_channel)),
        Err(TokenError::Malformed(Malformed::NonCanonical))
    );
    assert_eq!(
        verify(sign_raw(&k, 1, &body_bytes(Chat::Channel(0), 6, None))),
        Err(TokenError::Malformed(Malformed::NonCanonical))
    );
    assert_eq!(
        verify(sign_raw(
            &k,
            1,
            &body_bytes(Chat::Channel(u64::MAX), 6, None)
        )),
        Err(TokenError::Malformed(Malformed::NonCanonical))
    );
}

#[test]
fn bad_signature_and_unknown_key() {
    let signer = ring(1, &[]);
    let token = signer.sign(SAMPLE, None);
    let same_id_other_secret = Keyring::new(LinkKey::new(1, [0xAB; 16]).unwrap(), vec![]).unwrap();
    assert_eq!(
        same_id_other_secret.verify(&token, NOW),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        ring(2, &[]).verify(&token, NOW),
        Err(TokenError::UnknownKey { key_id: 1 })
    );
}

#[test]
fn unknown_key_wins_over_expiry_and_signature_over_expiry() {
    let token = ring(1, &[]).sign(SAMPLE, Some(NOW - 1));
    assert_eq!(
        ring(2, &[]).verify(&token, NOW),
        Err(TokenError::UnknownKey { key_id: 1 })
    );
    let impostor = Keyring::new(LinkKey::new(1, [9; 16]).unwrap(), vec![]).unwrap();
    assert_eq!(impostor.verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn tampering_any_single_character_is_an_error() {
    let keyring = ring(1, &[2]);
    for expires_at in [None, Some(NOW + 60)] {
        let token = keyring.sign(SAMPLE, expires_at);
        let original = token.as_bytes();
        for position in 0..original.len() {
            for &replacement in base62::ALPHABET.iter().chain(b"-_.~") {
                if replacement == original[position] {
                    continue;
                }
                let mut altered = original.to_vec();
                altered[position] = replacement;
                let altered = String::from_utf8(altered).unwrap();
                let result = keyring.verify(&altered, NOW);
                assert!(result.is_err(), "{altered} verified as {result:?}");
            }
            let mut dropped = token.clone();
            dropped.remove(position);
            assert!(keyring.verify(&dropped, NOW).is_err(), "{dropped}");
            let mut inserted = token.clone();
            inserted.insert(position, 'x');
            assert!(keyring.verify(&inserted, NOW).is_err(), "{inserted}");
        }
    }
}

#[test]
fn keys_with_different_ids_verify_their_own_tokens() {
    let keyring = ring(10, &[20, 30]);
    let t10 = keyring.sign(SAMPLE, None);
    let t20 = ring(20, &[]).sign(SAMPLE, None);
    let t30 = ring(30, &[]).sign(SAMPLE, None);
    assert_ne!(t10, t20);
    assert_eq!(keyring.verify(&t10, NOW).unwrap().key_id, 10);
    assert_eq!(keyring.verify(&t20, NOW).unwrap().key_id, 20);
    assert_eq!(keyring.verify(&t30, NOW).unwrap().key_id, 30);
    assert_eq!(keyring.current_key_id(), 10);
    assert_eq!(keyring.key_ids().collect::<Vec<_>>(), vec![10, 20, 30]);
}

#[test]
fn rotation_keeps_old_links_until_the_key_is_removed() {
    let before = ring(1, &[]);
    let old_token = before.sign(SAMPLE, None);

    let rotated = ring(2, &[1]);
    assert_eq!(rotated.verify(&old_token, NOW).unwrap().key_id, 1);
    let new_token = rotated.sign(SAMPLE, None);
    assert_eq!(rotated.verify(&new_token, NOW).unwrap().key_id, 2);
    // Edges not yet updated refuse the new key with a distinct error.
    assert_eq!(
        before.verify(&new_token, NOW),
        Err(TokenError::UnknownKey { key_id: 2 })
    );

    let retired = ring(2, &[]);
    assert_eq!(
        retired.verify(&old_token, NOW),
        Err(TokenError::UnknownKey { key_id: 1 })
    );
    assert!(retired.verify(&new_token, NOW).is_ok());
}

#[test]
fn key_validation() {
    assert_eq!(
        LinkKey::new(4, [0u8; 15]).unwrap_err(),
        KeyError::SecretTooShort { key_id: 4, len: 15 }
    );
    assert!(LinkKey::new(4, [0u8; 16]).is_ok());
    assert_eq!(
        Keyring::new(key(1), vec![key(2), key(1)]).unwrap_err(),
        KeyError::DuplicateKeyId { key_id: 1 }
    );
    let debug = format!("{:?}", key(1));
    assert!(debug.contains("id: 1") && !debug.contains("mac"), "{debug}");
}

#[test]
fn http_statuses() {
    assert_eq!(TokenError::Malformed(Malformed::Empty).http_status(), 404);
    assert_eq!(TokenError::BadSignature.http_status(), 404);
    assert_eq!(TokenError::UnknownKey { key_id: 1 }.http_status(), 403);
    assert_eq!(TokenError::Expired { expired_at: 1 }.http_status(), 410);
    assert_eq!(TokenError::LegacyDisabled.http_status(), 403);
}

#[test]
fn verifier_refuses_legacy_by_default() {
    let verifier = TokenVerifier::new(ring(1, &[]));
    assert!(!verifier.accepts_legacy());
    let legacy = encode_legacy(SAMPLE);
    assert_eq!(
        verifier.verify(&legacy, NOW),
        Err(TokenError::LegacyDisabled)
    );
    let signed = verifier.keyring().sign(SAMPLE, None);
    assert_eq!(verifier.verify(&signed, NOW).unwrap().file(), SAMPLE);
    assert!(matches!(
        verifier.verify("garbage", NOW),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn verifier_with_legacy_accepts_both() {
    let verifier = TokenVerifier::new(ring(1, &[])).with_legacy(true);
    let legacy = encode_legacy(SAMPLE);
    assert_eq!(
        verifier.verify(&legacy, NOW),
        Ok(VerifiedToken::Legacy(SAMPLE))
    );
    let signed = verifier.keyring().sign(SAMPLE, Some(NOW + 5));
    let verified = verifier.verify(&signed, NOW).unwrap();
    assert!(matches!(
        verified,
        VerifiedToken::Signed(LinkClaims { key_id: 1, .. })
    ));
    assert_eq!(verified.expires_at(), Some(NOW + 5));
    // Signed-format failures are not retried as legacy.
    assert_eq!(
        verifier.verify(&signed, NOW + 5),
        Err(TokenError::Expired {
            expired_at: NOW + 5
        })
    );
    assert!(matches!(
        verifier.verify("garbage", NOW),
        Err(TokenError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn signed_round_trip(
        chat_id in any::<i64>(),
        msg_id in any::<i32>(),
        expires_at in proptest::option::of(1u64..),
        key_id in any::<u8>(),
    ) {
        let keyring = ring(key_id, &[]);
        let file = FileRef { chat_id, msg_id };
        let token = keyring.sign(file, expires_at);
        prop_assert!(token.len() <= MAX_SIGNED_TOKEN_LEN);
        let claims = keyring.verify(&token, expires_at.map_or(u64::MAX, |e| e - 1)).unwrap();
        prop_assert_eq!(claims, LinkClaims { file, expires_at, key_id });
    }

    #[test]
    fn channel_messages_stay_short(channel in 1i64..(1 << 35), msg_id in 1i32..(1 << 27)) {
        // Any channel id of up to 35 bits and message ids below 2^27: 21 bytes at most.
        let file = FileRef { chat_id: CHANNEL_ID_BASE - channel, msg_id };
        prop_assert!(ring(1, &[]).sign(file, None).len() <= 28);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
        let verifier = TokenVerifier::new(ring(1, &[])).with_legacy(true);
        let _ = verifier.verify(&text, NOW);
    }
}
