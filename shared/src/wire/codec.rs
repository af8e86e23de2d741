//! Framing: `u32` little-endian body length, then the postcard body (layout in the parent
//! module's docs). Pure functions over byte slices, so the edge and core can drive them
//! from whatever stream reads they do, and fuzzing can drive them from anything.
//!
//! Decoding is incremental: `Ok(None)` means "feed more bytes", never "bad frame". Nothing
//! is allocated for a frame before its length prefix has passed the size check.

use postcard::ser_flavors::Flavor;
use serde::{Deserialize, Serialize};

use super::error::FrameError;
use super::message::{PUSH_KINDS, Push, REQUEST_KINDS, RESPONSE_KINDS, Request, Response};

/// Bytes of the length prefix in front of every frame body.
pub const LEN_PREFIX: usize = 4;

/// Largest frame body accepted or produced (64 KiB). Payloads (chunks, addon JSON) travel
/// after the frame and are not counted; every message within its field limits fits easily.
pub const MAX_FRAME_LEN: u32 = 64 * 1024;

/// Append one request frame to `out`. On error `out` is left as it was.
pub fn encode_request(req: &Request, out: &mut Vec<u8>) -> Result<(), FrameError> {
    req.validate()?;
    encode_frame(req, out)
}

/// Append one response frame to `out` (the payload, if any, is the caller's to write
/// after it). On error `out` is left as it was.
pub fn encode_response(resp: &Response, out: &mut Vec<u8>) -> Result<(), FrameError> {
    resp.validate()?;
    encode_frame(resp, out)
}

/// Append one push frame to `out`. On error `out` is left as it was.
pub fn encode_push(push: &Push, out: &mut Vec<u8>) -> Result<(), FrameError> {
    push.validate()?;
    encode_frame(push, out)
}

/// Decode the push frame at the start of `buf`, as [`decode_request`].
pub fn decode_push(buf: &[u8]) -> Result<Option<(Push, usize)>, FrameError> {
    let Some((body, consumed)) = split_frame(buf)? else {
        return Ok(None);
    };
    check_tag(body, PUSH_KINDS, "push")?;
    let push: Push = decode_body(body)?;
    push.validate()?;
    Ok(Some((push, consumed)))
}

/// Decode the request frame at the start of `buf`: `Ok(None)` if `buf` does not hold the
/// whole frame yet, `Ok(Some((request, bytes consumed)))` once it does.
pub fn decode_request(buf: &[u8]) -> Result<Option<(Request, usize)>, FrameError> {
    let Some((body, consumed)) = split_frame(buf)? else {
        return Ok(None);
    };
    check_tag(body, REQUEST_KINDS, "request")?;
    let req: Request = decode_body(body)?;
    req.validate()?;
    Ok(Some((req, consumed)))
}

/// Decode the response frame at the start of `buf`, as [`decode_request`]. The consumed
/// count covers the frame only; [`Response::payload_len`] bytes follow it.
pub fn decode_response(buf: &[u8]) -> Result<Option<(Response, usize)>, FrameError> {
    let Some((body, consumed)) = split_frame(buf)? else {
        return Ok(None);
    };
    check_tag(body, RESPONSE_KINDS, "response")?;
    let resp: Response = decode_body(body)?;
    resp.validate()?;
    Ok(Some((resp, consumed)))
}

/// Total size (prefix + body) of the frame starting at `buf`, once its prefix is there:
/// `Ok(None)` with fewer than [`LEN_PREFIX`] bytes. A stream reader calls this on the first
/// four bytes, then reads exactly the rest. Fails on an oversized prefix.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let body_len = u32::from_le_bytes(*prefix);
    if body_len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len: u64::from(body_len),
            max: MAX_FRAME_LEN,
        });
    }
    // body_len ≤ 64 KiB, so this cannot overflow usize on any supported target.
    Ok(Some(LEN_PREFIX + body_len as usize))
}

fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(total) = frame_len(buf)? else {
        return Ok(None);
    };
    Ok(buf.get(LEN_PREFIX..total).map(|body| (body, total)))
}

/// Reject unknown tags by name before serde does, since postcard reports them only as an
/// anonymous "Serde Deserialization Error".
fn check_tag(body: &[u8], known: u32, direction: &'static str) -> Result<(), FrameError> {
    let (tag, _) = postcard::take_from_bytes::<u32>(body)?;
    if tag >= known {
        return Err(FrameError::UnknownMessage { direction, tag });
    }
    Ok(())
}

fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes::<T>(body)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { extra: rest.len() });
    }
    Ok(msg)
}

fn encode_frame<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    let written = postcard::serialize_with_flavor(msg, AppendTo(out));
    let body_len = out.len() - start - LEN_PREFIX;
    if let Err(err) = written {
        out.truncate(start);
        return Err(err.into());
    }
    let prefix = match u32::try_from(body_len) {
        Ok(len) if len <= MAX_FRAME_LEN => len,
        _ => {
            out.truncate(start);
            return Err(FrameError::TooLarge {
                len: body_len as u64,
                max: MAX_FRAME_LEN,
            });
        }
    };
    out[start..start + LEN_PREFIX].copy_from_slice(&prefix.to_le_bytes());
    Ok(())
}

/// postcard output that appends to a caller's buffer, so encoding a frame reuses it
/// instead of allocating a fresh `Vec` per message.
struct AppendTo<'a>(&'a mut Vec<u8>);

impl Flavor for AppendTo<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
