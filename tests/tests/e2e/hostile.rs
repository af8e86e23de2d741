//! Bad input never crashes anything: forged and expired links are refused by the edge alone,
//! garbage paths and garbage HTTP get 4xx, and random UDP datagrams on the core's QUIC port
//! leave it serving.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgcdn_tests::{client, sha256_hex};
use tgemu::Content;

use crate::common::{MIB, stack};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Links the edge must refuse without asking the core, with the status it must answer.
/// (`restart` checks the same links get the same answers while the core is down.)
pub fn refused_links(base: &str, file: FileRef, keyring: &Keyring) -> Vec<(String, u16)> {
    let forger = Keyring::new(LinkKey::new(1, [0x42u8; 32]).unwrap(), Vec::new()).unwrap();
    let unknown_key = Keyring::new(LinkKey::new(9, [0x42u8; 32]).unwrap(), Vec::new()).unwrap();
    let good = keyring.sign(file, None);
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    vec![
        (format!("{base}/dl/{}/f.mp4", forger.sign(file, None)), 404),
        (format!("{base}/dl/{tampered}/f.mp4"), 404),
        (
            format!("{base}/dl/{}/f.mp4", keyring.sign(file, Some(now() - 60))),
            410,
        ),
        (
            format!("{base}/dl/{}/f.mp4", unknown_key.sign(file, None)),
            403,
        ),
        (format!("{base}/dl/{}/f.mp4", "A".repeat(4000)), 404),
        (format!("{base}/dl/%00%ff%fe/f.mp4"), 404),
        (format!("{base}/dl/../../etc/passwd"), 404),
        (format!("{base}/dl/"), 404),
        (format!("{base}/nothing-here"), 404),
        (format!("{base}/"), 404),
    ]
}

#[test]
fn forged_expired_and_garbage_links_are_refused() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let posted = stack.post_file(
        Content::pseudo(1000),
        "small.bin",
        "application/octet-stream",
        2,
    );
    for (url, status) in refused_links(&stack.edge_url(), posted.file, stack.keyring()) {
        let response = client::get(&url, &[]).unwrap();
        assert_eq!(response.status(), status, "{url}");
    }
    // And the genuine link still works.
    assert_eq!(client::get(&posted.url, &[]).unwrap().status(), 200);
}

#[test]
fn garbage_http_gets_an_error_and_the_edge_keeps_serving() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello\r\n\r\n"[..],
        b"GET /dl/x HTTP/9.9\r\n\r\n",
        b"BREW /pot HTCPCP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
        &[0u8; 300][..],
    ] {
        let mut stream = TcpStream::connect(stack.edge_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut answer = Vec::new();
        // Either an error status or a closed connection; never a hang past the timeout.
        let _ = stream.read_to_end(&mut answer);
        if !answer.is_empty() {
            let text = String::from_utf8_lossy(&answer);
            assert!(text.starts_with("HTTP/1.1 4"), "{garbage:?} → {text}");
        }
    }
    let (core_alive, edge_alive) = stack.children_alive();
    assert!(core_alive && edge_alive);
    let healthz = client::get(&format!("{}/healthz", stack.edge_url()), &[]).unwrap();
    assert_eq!(healthz.status(), 200);
}

#[test]
fn random_udp_on_the_quic_port_leaves_the_core_serving() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // xorshift: reproducible noise without a dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..2000u64 {
        let len = (next() % 1500) as usize + 1;
        let mut datagram: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 4 == 0 && len > 7 {
            // A QUIC v1 long header (Initial) with nonsense after it.
            datagram[0] = 0xc0 | (datagram[0] & 0x0f);
            datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        socket.send_to(&datagram, stack.core_quic_addr()).unwrap();
    }
    // A file the edge has never seen, so serving it needs the core.
    let size = MIB + 99;
    let posted = stack.post_file(Content::pseudo(size), "after-noise.bin", "video/mp4", 1);
    let response = client::get(&posted.url, &[]).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        sha256_hex(&response.body),
        sha256_hex(
            &stack
                .emulator()
                .content_slice(posted.doc.id, 0, size as usize)
        )
    );
    assert!(stack.children_alive().0, "the core died");
}
