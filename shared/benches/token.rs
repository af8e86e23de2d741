//! Link token costs: signing, verifying a signed token, and decoding a legacy token beside
//! it, so the price of the edge's per-request check is measured against the old format.
//! Pure CPU work, no I/O; run with
//! `cargo bench -p tgcdn-shared --bench token -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier, decode_legacy, encode_legacy};

const NOW: u64 = 1_700_000_000;
const FILE: FileRef = FileRef {
    chat_id: -1_001_234_567_890,
    msg_id: 123_456,
};

fn keyring() -> Keyring {
    let current = LinkKey::new(2, [0x5a; 32]).expect("32-byte secret is long enough");
    let older = LinkKey::new(1, [0xa5; 32]).expect("32-byte secret is long enough");
    Keyring::new(current, vec![older]).expect("distinct key ids")
}

fn tokens(c: &mut Criterion) {
    let keyring = keyring();
    let signed = keyring.sign(FILE, None);
    let signed_expiring = keyring.sign(FILE, Some(NOW + 3600));
    let legacy = encode_legacy(FILE);
    let verifier = TokenVerifier::new(keyring.clone()).with_legacy(true);

    let mut group = c.benchmark_group("token");
    group.bench_function("sign", |b| b.iter(|| keyring.sign(black_box(FILE), None)));
    group.bench_function("sign_with_expiry", |b| {
        b.iter(|| keyring.sign(black_box(FILE), Some(NOW + 3600)))
    });
    group.bench_function("verify_signed", |b| {
        b.iter(|| keyring.verify(black_box(&signed), NOW))
    });
    group.bench_function("verify_signed_with_expiry", |b| {
        b.iter(|| keyring.verify(black_box(&signed_expiring), NOW))
    });
    group.bench_function("decode_legacy", |b| {
        b.iter(|| decode_legacy(black_box(&legacy)))
    });
    group.bench_function("verifier_signed", |b| {
        b.iter(|| verifier.verify(black_box(&signed), NOW))
    });
    group.bench_function("verifier_legacy_fallback", |b| {
        b.iter(|| verifier.verify(black_box(&legacy), NOW))
    });
    group.bench_function("encode_legacy", |b| {
        b.iter(|| encode_legacy(black_box(FILE)))
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
