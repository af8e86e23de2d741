//! MTProto TCP transports, server side: full, abridged and intermediate framing.
//!
//! Pure: [`Mode::detect`] looks at a connection's first bytes, [`Decoder::decode`] finds
//! one frame in a read buffer, [`Encoder`] writes the header/trailer around a payload the
//! caller placed in its own buffer. The connection driver (`server.rs`) does the I/O.
//! Hostile bytes give a [`TransportError`], never a panic.

/// Largest frame accepted from a client (grammers sends at most 1 MiB + 8 KiB).
pub const MAX_FRAME: usize = 2 * 1024 * 1024;

/// Header space [`Encoder::finish`] may need in front of the payload.
pub const MAX_HEADER: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `len:u32 seq:u32 payload crc32:u32`, grammers' default.
    Full,
    /// `0xef` once, then `len/4` in one byte (or `0x7f` + 3 bytes) before each payload.
    Abridged,
    /// `0xeeeeeeee` once, then `len:u32` before each payload.
    Intermediate,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("frame length {0} is out of range")]
    BadLength(usize),
    #[error("transport sequence number {got}, expected {expected}")]
    BadSeq { expected: u32, got: u32 },
    #[error("crc32 mismatch")]
    BadCrc,
    #[error("unsupported transport (first bytes {0:02x?})")]
    Unsupported([u8; 4]),
}

impl Mode {
    /// Decides the transport from the first four bytes of a connection and how many of
    /// them are a one-off tag rather than frame data.
    pub fn detect(first: [u8; 4]) -> Result<(Mode, usize), TransportError> {
        match first {
            [0xef, ..] => Ok((Mode::Abridged, 1)),
            [0xee, 0xee, 0xee, 0xee] => Ok((Mode::Intermediate, 4)),
            [0xdd, 0xdd, 0xdd, 0xdd] => Err(TransportError::Unsupported(first)),
            _ => Ok((Mode::Full, 0)),
        }
    }
}

/// One decoded frame: where its payload lies in the buffer and how much to consume.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub payload: std::ops::Range<usize>,
    pub consumed: usize,
}

/// Incoming framing state for one connection.
pub struct Decoder {
    mode: Mode,
    recv_seq: u32,
}

impl Decoder {
    pub fn new(mode: Mode) -> Self {
        Self { mode, recv_seq: 0 }
    }

    /// Finds the next frame at the start of `buf`; `Ok(None)` means "read more".
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, TransportError> {
        match self.mode {
            Mode::Full => self.decode_full(buf),
            Mode::Intermediate => {
                let Some(len) = read_u32(buf, 0) else {
                    return Ok(None);
                };
                let len = len as usize;
                if len == 0 || len > MAX_FRAME || !len.is_multiple_of(4) {
                    return Err(TransportError::BadLength(len));
                }
                Ok((buf.len() >= 4 + len).then(|| Frame {
                    payload: 4..4 + len,
                    consumed: 4 + len,
                }))
            }
            Mode::Abridged => {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                let (header, words) = if first & 0x7f == 0x7f {
                    let Some(word) = read_u32(buf, 0) else {
                        return Ok(None);
                    };
                    (4, (word >> 8) as usize)
                } else {
                    (1, (first & 0x7f) as usize)
                };
                let len = words * 4;
                if len == 0 || len > MAX_FRAME {
                    return Err(TransportError::BadLength(len));
                }
                Ok((buf.len() >= header + len).then(|| Frame {
                    payload: header..header + len,
                    consumed: header + len,
                }))
            }
        }
    }

    fn decode_full(&mut self, buf: &[u8]) -> Result<Option<Frame>, TransportError> {
        let Some(len) = read_u32(buf, 0) else {
            return Ok(None);
        };
        let len = len as usize;
        if !(12..=MAX_FRAME).contains(&len) || !len.is_multiple_of(4) {
            return Err(TransportError::BadLength(len));
        }
        if buf.len() < len {
            return Ok(None);
        }
        let seq = read_u32(buf, 4).unwrap_or(u32::MAX);
        if seq != self.recv_seq {
            return Err(TransportError::BadSeq {
                expected: self.recv_seq,
                got: seq,
            });
        }
        let crc = read_u32(buf, len - 4).unwrap_or(0);
        if crc32fast::hash(&buf[..len - 4]) != crc {
            return Err(TransportError::BadCrc);
        }
        self.recv_seq = self.recv_seq.wrapping_add(1);
        Ok(Some(Frame {
            payload: 8..len - 4,
            consumed: len,
        }))
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// Outgoing framing state for one connection.
pub struct Encoder {
    mode: Mode,
    send_seq: u32,
}

impl Encoder {
    pub fn new(mode: Mode) -> Self {
        Self { mode, send_seq: 0 }
    }

    /// Frames the payload `buf[MAX_HEADER..]` (length a multiple of 4): writes the header
    /// right before it, appends the trailer, and returns where the packet starts in `buf`.
    pub fn finish(&mut self, buf: &mut Vec<u8>) -> usize {
        let payload_len = buf.len() - MAX_HEADER;
        match self.mode {
            Mode::Full => {
                let total = (payload_len + 12) as u32;
                buf[0..4].copy_from_slice(&total.to_le_bytes());
                buf[4..8].copy_from_slice(&self.send_seq.to_le_bytes());
                self.send_seq = self.send_seq.wrapping_add(1);
                let crc = crc32fast::hash(&buf[..]);
                buf.extend_from_slice(&crc.to_le_bytes());
                0
            }
            Mode::Intermediate => {
                buf[4..8].copy_from_slice(&(payload_len as u32).to_le_bytes());
                4
            }
            Mode::Abridged => {
                // Always the long header (0x7f + 3-byte length), which is valid for any
                // length: grammers' abridged reader takes a short-header frame whose first
                // payload word is negative for a transport error code, and an auth key id
                // has a 50 % chance of looking like one.
                let words = (payload_len / 4) as u32;
                buf[4..8].copy_from_slice(&((words << 8) | 0x7f).to_le_bytes());
                4
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(mode: Mode, payload: &[u8]) {
        let mut enc = Encoder::new(mode);
        let mut dec = Decoder::new(mode);
        let mut wire = Vec::new();
        for _ in 0..3 {
            let mut buf = vec![0u8; MAX_HEADER];
            buf.extend_from_slice(payload);
            let start = enc.finish(&mut buf);
            wire.extend_from_slice(&buf[start..]);
        }
        let mut at = 0;
        for _ in 0..3 {
            // A partial frame asks for more bytes.
            assert_eq!(dec.decode(&wire[at..at + 3]), Ok(None));
            let frame = dec.decode(&wire[at..]).expect("valid").expect("complete");
            assert_eq!(
                &wire[at + frame.payload.start..at + frame.payload.end],
                payload
            );
            at += frame.consumed;
        }
        assert_eq!(at, wire.len());
    }

    #[test]
    fn all_modes_roundtrip_small_and_large() {
        for mode in [Mode::Full, Mode::Abridged, Mode::Intermediate] {
            roundtrip(mode, &[1, 2, 3, 4, 5, 6, 7, 8]);
            roundtrip(mode, &vec![9u8; 4 * 0x7f]);
            roundtrip(mode, &vec![7u8; 600_000]);
        }
    }

    #[test]
    fn full_matches_grammers_empty_packet() {
        // grammers-mtproto's own test vector for an empty payload with seq 0.
        let mut buf = vec![0u8; MAX_HEADER];
        let start = Encoder::new(Mode::Full).finish(&mut buf);
        assert_eq!(&buf[start..], &[12, 0, 0, 0, 0, 0, 0, 0, 38, 202, 141, 50]);
    }

    #[test]
    fn detects_modes() {
        assert_eq!(Mode::detect([0xef, 1, 2, 3]), Ok((Mode::Abridged, 1)));
        assert_eq!(Mode::detect([0xee; 4]), Ok((Mode::Intermediate, 4)));
        assert_eq!(Mode::detect([40, 0, 0, 0]), Ok((Mode::Full, 0)));
        assert!(Mode::detect([0xdd; 4]).is_err());
    }

    #[test]
    fn rejects_bad_full_frames() {
        let mut buf = vec![0u8; MAX_HEADER];
        buf.extend_from_slice(&[1, 2, 3, 4]);
        Encoder::new(Mode::Full).finish(&mut buf);
        let mut bad_crc = buf.clone();
        bad_crc[9] ^= 1;
        assert_eq!(
            Decoder::new(Mode::Full).decode(&bad_crc),
            Err(TransportError::BadCrc)
        );
        let mut dec = Decoder::new(Mode::Full);
        assert!(dec.decode(&buf).is_ok());
        assert!(matches!(
            dec.decode(&buf),
            Err(TransportError::BadSeq { .. })
        ));
        let huge = (u32::MAX).to_le_bytes();
        assert!(Decoder::new(Mode::Full).decode(&huge).is_err());
        assert!(
            Decoder::new(Mode::Intermediate)
                .decode(&[3, 0, 0, 0])
                .is_err()
        );
    }
}
