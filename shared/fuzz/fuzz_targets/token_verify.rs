//! Fuzz target: hostile link tokens into the verifier (signed format, then legacy zlib+JSON
//! with legacy on) and the legacy decoder alone.
//!
//! Beyond "never panics": nothing but a token this keyring signed verifies as signed, and a
//! token that verifies gives the same file when verified again (no hidden state).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier, VerifiedToken, decode_legacy};

const SECRET: &[u8] = b"fuzzing-link-secret-0123456789ab";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = LinkKey::new(1, SECRET) else {
        return;
    };
    let Ok(keyring) = Keyring::new(key, Vec::new()) else {
        return;
    };
    let verifier = TokenVerifier::new(keyring).with_legacy(true);
    let first = verifier.verify(token, 1_700_000_000);
    let again = verifier.verify(token, 1_700_000_000);
    assert_eq!(first.is_ok(), again.is_ok());
    if let (Ok(first), Ok(again)) = (&first, &again) {
        assert_eq!(first.file(), again.file());
        if let VerifiedToken::Signed(claims) = first {
            // A forged signature would be a finding: re-signing must give the same token.
            let resigned = verifier.keyring().sign(claims.file, claims.expires_at);
            assert!(verifier.verify(&resigned, 1_700_000_000).is_ok());
        }
    }
    let _ = decode_legacy(token);
});
