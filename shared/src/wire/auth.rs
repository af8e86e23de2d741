//! The edge's proof of the cluster secret in `Hello`, bound to one QUIC connection.
//!
//! Called by the edge (to build `Hello`) and the core (to check it) with keying material
//! each exports from its side of the TLS session. Must never compare tags in variable time
//! nor accept a proof made for another connection.
//!
//! proof = HMAC-SHA256(cluster secret,
//!         HELLO_PROOF_LABEL ‖ u32le(len edge_id) ‖ edge_id ‖ u32le(len binding) ‖ binding)
//!
//! The lengths make the input unambiguous (no `("ab", "c…")` vs `("a", "bc…")` collision);
//! the label keeps this MAC from ever equalling a link-token MAC made with the same key.
//! The binding is `connection.export_keying_material(&mut [0; EXPORTER_LEN],
//! EXPORTER_LABEL, EXPORTER_CONTEXT)` (RFC 5705 / RFC 8446 §7.5 exporter): both ends derive
//! the same bytes, and no other TLS session can, so a recorded Hello is useless elsewhere.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Domain-separation label at the start of the proof's MAC input.
pub const HELLO_PROOF_LABEL: &[u8] = b"tgcdn/1 edge hello proof";

/// TLS exporter label for the channel binding (RFC 5705 labels start with "EXPORTER").
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-tgcdn-edge-hello";

/// TLS exporter context for the channel binding.
pub const EXPORTER_CONTEXT: &[u8] = b"";

/// Bytes of keying material to export for the channel binding.
pub const EXPORTER_LEN: usize = 32;

/// The `auth_proof` an edge puts in its `Hello`.
pub fn hello_proof(cluster_secret: &[u8], edge_id: &str, channel_binding: &[u8]) -> [u8; 32] {
    proof_mac(cluster_secret, edge_id, channel_binding)
        .finalize()
        .into_bytes()
        .into()
}

/// Whether `proof` is the right proof for this secret, edge and connection, compared in
/// constant time.
pub fn verify_hello_proof(
    cluster_secret: &[u8],
    edge_id: &str,
    channel_binding: &[u8],
    proof: &[u8; 32],
) -> bool {
    proof_mac(cluster_secret, edge_id, channel_binding)
        .verify_slice(proof)
        .is_ok()
}

fn proof_mac(cluster_secret: &[u8], edge_id: &str, channel_binding: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(cluster_secret)
        // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
        .expect("HMAC accepts keys of any length");
    mac.update(HELLO_PROOF_LABEL);
    update_with_len(&mut mac, edge_id.as_bytes());
    update_with_len(&mut mac, channel_binding);
    mac
}

fn update_with_len(mac: &mut Hmac<Sha256>, bytes: &[u8]) {
    // Inputs are bounded far below 4 GiB (edge ids by the wire limit, bindings by
    // EXPORTER_LEN); saturating keeps even a misuse from panicking.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    mac.update(&len.to_le_bytes());
    mac.update(bytes);
}
