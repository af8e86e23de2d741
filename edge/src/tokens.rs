//! Verified link tokens remembered by their text, in front of
//! [`TokenVerifier::verify`].
//!
//! Called by the download and watch routes for every request. A viewer sends many range
//! requests on one link, and the base62 decode plus the HMAC is the largest item on the
//! cache-hit path; a direct-mapped table of `entries` slots (the setting
//! `TGCDN_TOKEN_CACHE`) keeps the last verdict per slot, so the common request costs one
//! hash and one string compare. Only tokens that verified are stored — a flood of forged or
//! random tokens never fills or evicts anything but its own misses, and the table's size
//! is fixed at start-up. A stored token's expiry is checked against `now` on every hit, so
//! a link stops working at its expiry whatever is cached; the keyring never changes while
//! the process runs, so nothing else can make a stored verdict stale (revocation is the
//! core's check, on every `Meta`). Pure apart from the slots' locks: `now` is passed in.

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tgcdn_shared::token::{TokenError, TokenVerifier, VerifiedToken};

/// Slots of the table unless configured (`TGCDN_TOKEN_CACHE`): a slot holds at most one
/// token of at most 128 characters, so the default costs well under 2 MiB.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 8192;

/// A [`TokenVerifier`] with a bounded memory of the tokens it accepted.
#[derive(Debug)]
pub struct TokenCheck {
    verifier: TokenVerifier,
    slots: Box<[Mutex<Option<Entry>>]>,
    /// Keyed per process, so nobody can aim many tokens at one slot.
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    token: Box<str>,
    verified: VerifiedToken,
}

/// How often the table answered, for tests and diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCheckCounts {
    pub hits: u64,
    pub misses: u64,
}

impl TokenCheck {
    /// A check remembering up to `entries` tokens; 0 verifies every request afresh.
    pub fn new(verifier: TokenVerifier, entries: usize) -> Self {
        TokenCheck {
            verifier,
            slots: (0..entries).map(|_| Mutex::new(None)).collect(),
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The same answer as [`TokenVerifier::verify`] at `now_unix`.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<VerifiedToken, TokenError> {
        let Some(slot) = self.slot(token) else {
            return self.verifier.verify(token, now_unix);
        };
        let remembered = {
            // A poisoned slot still holds a whole entry (it is only ever replaced whole).
            let entry = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            entry
                .as_ref()
                .filter(|entry| *entry.token == *token)
                .map(|entry| entry.verified)
        };
        if let Some(verified) = remembered {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return match verified.expires_at() {
                Some(expired_at) if now_unix >= expired_at => {
                    Err(TokenError::Expired { expired_at })
                }
                _ => Ok(verified),
            };
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let verified = self.verifier.verify(token, now_unix)?;
        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Entry {
            token: token.into(),
            verified,
        });
        Ok(verified)
    }

    pub fn counts(&self) -> TokenCheckCounts {
        TokenCheckCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn slot(&self, token: &str) -> Option<&Mutex<Option<Entry>>> {
        if self.slots.is_empty() {
            return None;
        }
        let index = self.hasher.hash_one(token) % self.slots.len() as u64;
        // The remainder is below the slice's length, which is a usize.
        self.slots.get(index as usize)
    }
}

#[cfg(test)]
mod tests {
    use tgcdn_shared::FileRef;
    use tgcdn_shared::token::{Keyring, LinkKey};

    use super::*;

    const NOW: u64 = 1_700_000_000;
    const FILE: FileRef = FileRef {
        chat_id: -1_001_234_567_890,
        msg_id: 42,
    };

    fn keyring() -> Keyring {
        Keyring::new(LinkKey::new(1, [7u8; 32]).unwrap(), Vec::new()).unwrap()
    }

    #[test]
    fn a_second_request_on_a_link_is_answered_from_the_table() {
        let check = TokenCheck::new(TokenVerifier::new(keyring()), 16);
        let token = keyring().sign(FILE, None);
        assert_eq!(check.verify(&token, NOW).unwrap().file(), FILE);
        assert_eq!(check.verify(&token, NOW).unwrap().file(), FILE);
        let counts = check.counts();
        assert_eq!((counts.hits, counts.misses), (1, 1));
    }

    #[test]
    fn a_remembered_link_still_expires() {
        let check = TokenCheck::new(TokenVerifier::new(keyring()), 16);
        let token = keyring().sign(FILE, Some(NOW + 10));
        assert!(check.verify(&token, NOW).is_ok());
        assert_eq!(
            check.verify(&token, NOW + 10),
            Err(TokenError::Expired {
                expired_at: NOW + 10
            })
        );
        assert_eq!(check.counts().hits, 1, "the expiry came from the table");
    }

    #[test]
    fn refused_tokens_are_never_stored() {
        let check = TokenCheck::new(TokenVerifier::new(keyring()), 16);
        let mut forged = keyring().sign(FILE, None);
        let last = forged.pop().unwrap();
        forged.push(if last == 'a' { 'b' } else { 'a' });
        for _ in 0..3 {
            assert!(check.verify(&forged, NOW).is_err());
            assert!(check.verify("not a token!", NOW).is_err());
        }
        assert_eq!(check.counts().hits, 0);
        assert!(
            check
                .slots
                .iter()
                .all(|slot| slot.lock().unwrap().is_none())
        );
    }

    #[test]
    fn tokens_sharing_a_slot_are_told_apart_by_their_text() {
        // One slot: every token lands on it.
        let check = TokenCheck::new(TokenVerifier::new(keyring()), 1);
        let other = FileRef { msg_id: 43, ..FILE };
        let first = keyring().sign(FILE, None);
        let second = keyring().sign(other, None);
        assert_eq!(check.verify(&first, NOW).unwrap().file(), FILE);
        assert_eq!(check.verify(&second, NOW).unwrap().file(), other);
        assert_eq!(check.verify(&first, NOW).unwrap().file(), FILE);
        assert_eq!(check.counts().hits, 0, "each token evicted the other");
    }

    #[test]
    fn zero_entries_verify_every_time() {
        let check = TokenCheck::new(TokenVerifier::new(keyring()), 0);
        let token = keyring().sign(FILE, None);
        assert!(check.verify(&token, NOW).is_ok());
        assert!(check.verify(&token, NOW).is_ok());
        assert_eq!(check.counts().hits, 0);
    }

    #[test]
    fn legacy_tokens_follow_the_verifier() {
        let legacy = tgcdn_shared::token::encode_legacy(FILE);
        let off = TokenCheck::new(TokenVerifier::new(keyring()), 16);
        assert_eq!(off.verify(&legacy, NOW), Err(TokenError::LegacyDisabled));
        let on = TokenCheck::new(TokenVerifier::new(keyring()).with_legacy(true), 16);
        assert_eq!(on.verify(&legacy, NOW).unwrap().file(), FILE);
        assert_eq!(on.verify(&legacy, NOW).unwrap().file(), FILE);
        assert_eq!(on.counts().hits, 1);
    }
}
