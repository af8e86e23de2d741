//! The MTProto session layer of one server connection, without I/O.
//!
//! Owns: unwrapping a decrypted client plaintext into messages (containers and
//! `gzip_packed` flattened), server msg_id / seq_no generation (wall clock passed in),
//! the salt schedule, and the bytes of service messages. The connection driver feeds it
//! decrypted frames and asks it for headers; the API layer never sees it.
//! Hostile input gives a [`SessionError`], never a panic.

use std::io::Read;
use std::time::Duration;

use grammers_tl_types::{self as tl, Serializable};

pub const MSG_CONTAINER: u32 = 0x73f1_f8dc;
pub const GZIP_PACKED: u32 = 0x3072_cfa1;
pub const RPC_RESULT: u32 = 0xf35c_6d01;
pub const MSGS_ACK: u32 = 0x62d6_b459;
pub const PING: u32 = 0x7abe_77ec;
pub const PING_DELAY_DISCONNECT: u32 = 0xf342_7b8c;
pub const GET_FUTURE_SALTS: u32 = 0xb921_bd04;
pub const DESTROY_SESSION: u32 = 0xe751_2126;

/// A message body larger than this trips an assert in grammers-mtproto 0.11
/// (`MessageContainer::MAXIMUM_SIZE` is 1 044 448): never send one that big to grammers.
pub const GRAMMERS_MAX_BODY: usize = 1_044_448 - 1;

/// Largest decompressed `gzip_packed` request accepted.
const MAX_GZIP_OUTPUT: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("plaintext is truncated at byte {0}")]
    Truncated(usize),
    #[error("message length {0} is out of range")]
    BadLength(i64),
    #[error("container nesting is not allowed")]
    NestedContainer,
    #[error("gzip_packed payload does not inflate")]
    BadGzip,
}

/// One client message after unwrapping containers and gzip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InMsg {
    pub msg_id: i64,
    pub seq_no: i32,
    pub body: Vec<u8>,
    /// The client sent it as `gzip_packed`.
    pub gzipped: bool,
}

impl InMsg {
    pub fn constructor(&self) -> u32 {
        read_u32(&self.body, 0).unwrap_or(0)
    }
}

/// A decrypted client plaintext.
#[derive(Debug)]
pub struct Envelope {
    pub salt: i64,
    pub session_id: i64,
    /// msg_id / seq_no of the outer message (the container, if any).
    pub outer_msg_id: i64,
    pub outer_seq_no: i32,
    pub messages: Vec<InMsg>,
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn read_i64(buf: &[u8], at: usize) -> Result<i64, SessionError> {
    buf.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_le_bytes)
        .ok_or(SessionError::Truncated(at))
}

fn read_i32(buf: &[u8], at: usize) -> Result<i32, SessionError> {
    read_u32(buf, at)
        .map(|v| v as i32)
        .ok_or(SessionError::Truncated(at))
}

/// Reads `msg_id seq_no bytes body` at `at`; returns the message and the offset after it.
fn read_message(buf: &[u8], at: usize) -> Result<(i64, i32, &[u8], usize), SessionError> {
    let msg_id = read_i64(buf, at)?;
    let seq_no = read_i32(buf, at + 8)?;
    let len = read_i32(buf, at + 12)?;
    if len < 4 || len % 4 != 0 {
        return Err(SessionError::BadLength(len as i64));
    }
    let start = at + 16;
    let end = start + len as usize;
    let body = buf.get(start..end).ok_or(SessionError::Truncated(end))?;
    Ok((msg_id, seq_no, body, end))
}

/// Unwraps a decrypted plaintext (`salt session_id message padding`).
pub fn parse_plaintext(plain: &[u8]) -> Result<Envelope, SessionError> {
    let salt = read_i64(plain, 0)?;
    let session_id = read_i64(plain, 8)?;
    let (msg_id, seq_no, body, _) = read_message(plain, 16)?;
    let mut messages = Vec::new();
    if read_u32(body, 0) == Some(MSG_CONTAINER) {
        let count = read_i32(body, 4)?;
        if !(0..=1024).contains(&count) {
            return Err(SessionError::BadLength(count as i64));
        }
        let mut at = 8;
        for _ in 0..count {
            let (id, seq, inner, next) = read_message(body, at)?;
            if read_u32(inner, 0) == Some(MSG_CONTAINER) {
                return Err(SessionError::NestedContainer);
            }
            messages.push(InMsg {
                msg_id: id,
                seq_no: seq,
                body: unpack_gzip(inner)?,
                gzipped: is_gzip(inner),
            });
            at = next;
        }
    } else {
        messages.push(InMsg {
            msg_id,
            seq_no,
            body: unpack_gzip(body)?,
            gzipped: is_gzip(body),
        });
    }
    Ok(Envelope {
        salt,
        session_id,
        outer_msg_id: msg_id,
        outer_seq_no: seq_no,
        messages,
    })
}

fn is_gzip(body: &[u8]) -> bool {
    read_u32(body, 0) == Some(GZIP_PACKED)
}

/// `gzip_packed#3072cfa1 packed_data:bytes` → the inflated body; anything else as is.
pub fn unpack_gzip(body: &[u8]) -> Result<Vec<u8>, SessionError> {
    if read_u32(body, 0) != Some(GZIP_PACKED) {
        return Ok(body.to_vec());
    }
    let packed = read_tl_bytes(body, 4).ok_or(SessionError::BadGzip)?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(packed)
        .take(MAX_GZIP_OUTPUT)
        .read_to_end(&mut out)
        .map_err(|_| SessionError::BadGzip)?;
    Ok(out)
}

/// Reads a TL `bytes` value at `at`.
fn read_tl_bytes(buf: &[u8], at: usize) -> Option<&[u8]> {
    let first = *buf.get(at)?;
    let (start, len) = if first < 254 {
        (at + 1, first as usize)
    } else {
        let b = buf.get(at + 1..at + 4)?;
        (
            at + 4,
            b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16,
        )
    };
    buf.get(start..start + len)
}

/// Appends the TL `bytes` header for a payload of `len` bytes; returns the padding the
/// caller must append after the payload.
pub fn tl_bytes_header(out: &mut Vec<u8>, len: usize) -> usize {
    let header = if len < 254 {
        out.push(len as u8);
        1
    } else {
        out.extend_from_slice(&[254, len as u8, (len >> 8) as u8, (len >> 16) as u8]);
        4
    };
    (4 - (header + len) % 4) % 4
}

/// Whether the server message is an answer (msg_id ≡ 1 mod 4) or server-initiated (≡ 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    Response = 1,
    ServerInitiated = 3,
}

/// Server msg_ids: the wall clock (seconds << 32 | fraction), strictly increasing per
/// connection, with the low two bits naming the kind.
#[derive(Default)]
pub struct MsgIdGen {
    last: i64,
}

impl MsgIdGen {
    pub fn next(&mut self, since_epoch: Duration, kind: MsgKind) -> i64 {
        let fraction = ((since_epoch.subsec_nanos() as u64) << 32) / 1_000_000_000;
        let candidate = ((since_epoch.as_secs() << 32) | fraction) as i64 & !3;
        let base = if candidate > self.last {
            candidate
        } else {
            (self.last & !3) + 4
        };
        self.last = base | kind as i64;
        self.last
    }
}

/// seq_no: odd and counting for content-related messages, even otherwise.
#[derive(Default)]
pub struct SeqNo {
    content_sent: i32,
}

impl SeqNo {
    pub fn next(&mut self, content_related: bool) -> i32 {
        if content_related {
            self.content_sent += 1;
            self.content_sent * 2 - 1
        } else {
            self.content_sent * 2
        }
    }
}

/// Server salts: one per 30-minute slot, derived from an emulator secret. A client salt is
/// valid in its slot and the one after (Telegram's overlap).
#[derive(Clone, Copy)]
pub struct SaltSchedule {
    secret: u64,
}

const SALT_SLOT_SECS: u64 = 1800;

impl SaltSchedule {
    pub fn new(secret: u64) -> Self {
        Self { secret }
    }

    fn salt_for_slot(&self, slot: u64) -> i64 {
        let mut z = self.secret ^ slot.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (z ^ (z >> 29)) as i64 | 1
    }

    pub fn current(&self, since_epoch: Duration) -> i64 {
        self.salt_for_slot(since_epoch.as_secs() / SALT_SLOT_SECS)
    }

    pub fn is_valid(&self, salt: i64, since_epoch: Duration) -> bool {
        let slot = since_epoch.as_secs() / SALT_SLOT_SECS;
        salt == self.salt_for_slot(slot) || salt == self.salt_for_slot(slot.saturating_sub(1))
    }

    /// The `future_salts` answer to `get_future_salts` (bare, not inside `rpc_result`).
    pub fn future_salts(&self, req_msg_id: i64, num: i32, since_epoch: Duration) -> Vec<u8> {
        let now = since_epoch.as_secs();
        let slot = now / SALT_SLOT_SECS;
        // At least two salts: with a single one grammers asks again forever.
        let salts = (0..num.clamp(2, 64) as u64)
            .map(|i| tl::types::FutureSalt {
                valid_since: ((slot + i) * SALT_SLOT_SECS) as i32,
                valid_until: ((slot + i + 1) * SALT_SLOT_SECS + SALT_SLOT_SECS) as i32,
                salt: self.salt_for_slot(slot + i),
            })
            .collect();
        tl::enums::FutureSalts::Salts(tl::types::FutureSalts {
            req_msg_id,
            now: now as i32,
            salts: tl::RawVec(salts),
        })
        .to_bytes()
    }
}

pub fn new_session_created(first_msg_id: i64, unique_id: i64, server_salt: i64) -> Vec<u8> {
    tl::enums::NewSession::Created(tl::types::NewSessionCreated {
        first_msg_id,
        unique_id,
        server_salt,
    })
    .to_bytes()
}

pub fn bad_server_salt(bad_msg_id: i64, bad_msg_seqno: i32, new_server_salt: i64) -> Vec<u8> {
    tl::enums::BadMsgNotification::BadServerSalt(tl::types::BadServerSalt {
        bad_msg_id,
        bad_msg_seqno,
        error_code: 48,
        new_server_salt,
    })
    .to_bytes()
}

pub fn pong(msg_id: i64, ping_id: i64) -> Vec<u8> {
    tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id }).to_bytes()
}

pub fn rpc_error(code: i32, message: &str) -> Vec<u8> {
    tl::enums::RpcError::Error(tl::types::RpcError {
        error_code: code,
        error_message: message.to_owned(),
    })
    .to_bytes()
}

/// The ping id of a `ping` / `ping_delay_disconnect` body.
pub fn ping_id(body: &[u8]) -> Option<i64> {
    read_i64(body, 4).ok()
}

/// The `num` of a `get_future_salts` body.
pub fn future_salts_num(body: &[u8]) -> Option<i32> {
    read_i32(body, 4).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn message(msg_id: i64, seq: i32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&msg_id.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(body.len() as i32).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn plaintext(body_message: &[u8]) -> Vec<u8> {
        let mut out = 5i64.to_le_bytes().to_vec();
        out.extend_from_slice(&9i64.to_le_bytes());
        out.extend_from_slice(body_message);
        out.extend_from_slice(&[0u8; 12]);
        out
    }

    #[test]
    fn msg_ids_increase_follow_the_clock_and_carry_their_kind() {
        let mut ids = MsgIdGen::default();
        let t = Duration::new(1_700_000_000, 500_000_000);
        let a = ids.next(t, MsgKind::Response);
        let b = ids.next(t, MsgKind::Response);
        let c = ids.next(t, MsgKind::ServerInitiated);
        assert!(a < b && b < c);
        assert_eq!((a % 4, b % 4, c % 4), (1, 1, 3));
        assert_eq!(a >> 32, 1_700_000_000);
        // A clock step backwards still yields increasing ids.
        let d = ids.next(Duration::new(1_600_000_000, 0), MsgKind::Response);
        assert!(d > c && d % 4 == 1);
    }

    #[test]
    fn seq_no_is_odd_for_content() {
        let mut seq = SeqNo::default();
        assert_eq!(seq.next(false), 0);
        assert_eq!(seq.next(true), 1);
        assert_eq!(seq.next(true), 3);
        assert_eq!(seq.next(false), 4);
    }

    #[test]
    fn salts_are_valid_in_their_slot_and_the_next() {
        let s = SaltSchedule::new(42);
        let t = Duration::from_secs(1_700_000_000);
        let salt = s.current(t);
        assert_ne!(salt, 0);
        assert!(s.is_valid(salt, t));
        assert!(s.is_valid(salt, t + Duration::from_secs(SALT_SLOT_SECS)));
        assert!(!s.is_valid(salt, t + Duration::from_secs(3 * SALT_SLOT_SECS)));
        assert!(!s.is_valid(0, t));
    }

    #[test]
    fn parses_single_container_and_gzip() {
        let single = parse_plaintext(&plaintext(&message(100, 1, &[1, 0, 0, 0]))).unwrap();
        assert_eq!(
            (single.salt, single.session_id, single.outer_msg_id),
            (5, 9, 100)
        );
        assert_eq!(single.messages[0].body, [1, 0, 0, 0]);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[7u8; 600]).unwrap();
        let packed = gz.finish().unwrap();
        let mut gzip_body = GZIP_PACKED.to_le_bytes().to_vec();
        let pad = tl_bytes_header(&mut gzip_body, packed.len());
        gzip_body.extend_from_slice(&packed);
        gzip_body.extend(std::iter::repeat_n(0, pad));

        let mut container = MSG_CONTAINER.to_le_bytes().to_vec();
        container.extend_from_slice(&2i32.to_le_bytes());
        container.extend(message(104, 3, &[2, 0, 0, 0]));
        container.extend(message(108, 5, &gzip_body));
        let env = parse_plaintext(&plaintext(&message(112, 6, &container))).unwrap();
        assert_eq!(env.outer_msg_id, 112);
        assert_eq!(env.messages.len(), 2);
        assert_eq!(env.messages[0].msg_id, 104);
        assert_eq!(env.messages[1].body, vec![7u8; 600]);
        assert!(env.messages[1].gzipped && !env.messages[0].gzipped);
    }

    #[test]
    fn rejects_truncated_and_lying_lengths() {
        assert!(parse_plaintext(&[0u8; 20]).is_err());
        let mut lying = plaintext(&message(1, 1, &[1, 0, 0, 0]));
        lying[28..32].copy_from_slice(&4000i32.to_le_bytes());
        assert!(parse_plaintext(&lying).is_err());
        let mut neg = plaintext(&message(1, 1, &[1, 0, 0, 0]));
        neg[28..32].copy_from_slice(&(-8i32).to_le_bytes());
        assert!(parse_plaintext(&neg).is_err());
    }

    #[test]
    fn tl_bytes_header_pads_to_four() {
        for len in [0usize, 1, 3, 253, 254, 255, 524_288] {
            let mut out = Vec::new();
            let pad = tl_bytes_header(&mut out, len);
            assert_eq!((out.len() + len + pad) % 4, 0, "len {len}");
        }
    }
}
