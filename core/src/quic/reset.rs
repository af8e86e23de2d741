//! The QUIC endpoint's stateless-reset key and connection-id generator, both keyed by a
//! secret derived from the TLS identity so that they survive a restart.
//!
//! Used by [`super::QuicServer::bind`] through [`endpoint_config`]. quinn's defaults are
//! random per process: after a crash the restarted core drops the old connections' packets
//! as carrying invalid connection ids, and could not sign a reset for them anyway, so each
//! edge waits out its idle timeout (tens of seconds of stalled downloads). Keyed by the
//! persisted private key, the new process takes the old ids as possibly its own and
//! answers with a stateless reset the edges accept, and they reconnect at once. Never logs or
//! exposes the key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use quinn::crypto::{CryptoError, HmacKey};
use quinn::{ConnectionId, ConnectionIdGenerator, EndpointConfig};
use sha2::{Digest, Sha256};

const DERIVATION_LABEL: &[u8] = b"tgcdn-core quic stateless reset v1";
const CID_LABEL: &[u8] = b"tgcdn-core quic connection ids v1";
/// quinn's default connection-id length.
const CID_LEN: usize = 8;

/// quinn's endpoint settings with restart-stable reset tokens and connection ids.
pub fn endpoint_config(private_key_der: &[u8]) -> EndpointConfig {
    let mut config = EndpointConfig::new(Arc::new(ResetKey::from_private_key(private_key_der)));
    let cid_key = keyed(CID_LABEL, private_key_der);
    config.cid_generator(move || Box::new(ResettableCids::new(cid_key.clone())));
    config
}

fn keyed(label: &[u8], private_key_der: &[u8]) -> Hmac<Sha256> {
    let derived = Sha256::new()
        .chain_update(label)
        .chain_update(private_key_der)
        .finalize();
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(&derived)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Connection ids from a keyed hash of a per-process seed and a counter: unpredictable and
/// unlinkable for anyone without the key. Unlike quinn's default (hashed ids checked with a
/// per-process key) they are not validated, so a restarted core does not drop the old
/// connections' packets as foreign but answers them with a stateless reset. (quinn does
/// not export `InvalidCid`, so a keyed validation cannot be written outside it.)
struct ResettableCids {
    key: Hmac<Sha256>,
    seed: [u8; 16],
    counter: u64,
}

impl ResettableCids {
    fn new(key: Hmac<Sha256>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Distinct per generator within the process too (quinn makes one per endpoint).
        static INSTANCES: AtomicU32 = AtomicU32::new(0);
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&nanos.to_le_bytes());
        seed[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        seed[12..].copy_from_slice(&INSTANCES.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        Self {
            key,
            seed,
            counter: 0,
        }
    }
}

impl ConnectionIdGenerator for ResettableCids {
    fn generate_cid(&mut self) -> ConnectionId {
        self.counter += 1;
        let noise = self
            .key
            .clone()
            .chain_update(self.seed)
            .chain_update(self.counter.to_le_bytes())
            .finalize()
            .into_bytes();
        ConnectionId::new(&noise[..CID_LEN])
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

/// HMAC-SHA256 under a key derived from the TLS private key (DER).
struct ResetKey {
    mac: Hmac<Sha256>,
}

impl ResetKey {
    fn from_private_key(key_der: &[u8]) -> Self {
        Self {
            mac: keyed(DERIVATION_LABEL, key_der),
        }
    }
}

impl HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let tag = self.mac.clone().chain_update(data).finalize().into_bytes();
        let n = signature_out.len().min(tag.len());
        signature_out[..n].copy_from_slice(&tag[..n]);
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.mac
            .clone()
            .chain_update(data)
            .verify_slice(signature)
            .map_err(|_| CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_private_key_gives_the_same_reset_tokens() {
        let (a, b, other) = (
            ResetKey::from_private_key(b"key one"),
            ResetKey::from_private_key(b"key one"),
            ResetKey::from_private_key(b"key two"),
        );
        let (mut ta, mut tb, mut to) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        a.sign(b"connection id", &mut ta);
        b.sign(b"connection id", &mut tb);
        other.sign(b"connection id", &mut to);
        assert_eq!(ta, tb);
        assert_ne!(ta, to);
        assert!(b.verify(b"connection id", &ta).is_ok());
        assert!(b.verify(b"other id", &ta).is_err());
    }

    #[test]
    fn connection_ids_are_distinct_and_of_the_default_length() {
        let mut one = ResettableCids::new(keyed(CID_LABEL, b"key one"));
        let ids: Vec<ConnectionId> = (0..100).map(|_| one.generate_cid()).collect();
        assert!(ids.iter().all(|id| id.len() == CID_LEN));
        let distinct: std::collections::HashSet<&[u8]> = ids.iter().map(|id| &id[..]).collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
