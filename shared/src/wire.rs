//! The edge↔core wire protocol: message types, their framing and the edge's Hello proof.
//!
//! Called by the edge's upstream client and the core's QUIC handler, which move these
//! frames over quinn streams; this module never touches a socket, a runtime or a clock.
//! Decoding hostile bytes must never panic or allocate more than the frame it was given:
//! every failure is a [`FrameError`].
//!
//! # Transport
//!
//! The QUIC ALPN ([`ALPN`]) names the protocol version. The first stream an edge opens on a
//! connection carries [`Request::Hello`]; the core answers [`Response::Welcome`] or
//! [`Response::Error`] and refuses every other request on a connection without a valid
//! Hello. After that every request is its own bidirectional stream: the edge writes one
//! request frame and finishes its send side; the core writes one response frame, then —
//! for responses where [`Response::payload_len`] is `Some(len)` — exactly `len` raw bytes,
//! and finishes. The payload (a chunk of a file, an addon JSON body) is never re-serialised.
//! [`Request::MetaChunk`] is the one request answered by two frames: [`Response::Meta`],
//! then [`Response::Chunk`] and its bytes (or [`Response::Error`] in place of either), so
//! the first range of a file costs the edge one round trip instead of two. The core writes
//! the `Meta` frame as soon as it has it, before it downloads the chunk.
//!
//! The core also speaks first: once an edge is authenticated, it opens a unidirectional
//! stream per [`Push`] (its revocation list in parts, then each revocation or unrevocation)
//! and writes exactly one push frame, then finishes. The edge reads them in the order the
//! core opened them.
//! The edge accepts unidirectional streams only from the core and never answers them.
//!
//! # Frame layout
//!
//! ```text
//! +----------------------+---------------------------------------------+
//! | body length: u32 LE  | body: postcard encoding of Request/Response |
//! +----------------------+---------------------------------------------+
//! ```
//!
//! * The prefix is a fixed 4-byte little-endian `u32` (not a varint) so a stream reader
//!   knows after exactly [`LEN_PREFIX`] bytes how much more to read ([`frame_len`]).
//! * The body may be at most [`MAX_FRAME_LEN`] bytes; the limit is checked on the prefix,
//!   before anything is allocated or read.
//! * The body starts with the message tag (postcard's varint enum discriminant, i.e. the
//!   variant's declaration order). Variants are append-only: a tag this build does not know
//!   decodes to [`FrameError::UnknownMessage`]. Changing a variant's fields needs a new ALPN.
//! * The body must be consumed exactly; trailing bytes are an error. (postcard still accepts
//!   over-long varints, so never compare frames as bytes — nothing here signs them.)
//! * Every string field has a maximum length (see [`limits`]), checked when encoding (so a
//!   sender learns of its mistake) and when decoding.
//!
//! # Driving it from a stream
//!
//! ```text
//! edge:  buf.clear(); encode_request(&req, &mut buf)?; send.write_all(&buf); send.finish();
//!        read LEN_PREFIX bytes            -> frame_len(&head)? = Some(total)
//!        read total - LEN_PREFIX more     -> decode_response(&frame)? = Some((resp, total))
//!        match resp.payload_len() { Some(n) => read exactly n bytes, then expect end of
//!        stream; None => expect end of stream }   (every read under a deadline)
//! core:  the same with decode_request on the request side; for Chunk/Addon write the
//!        header frame, then the payload `Bytes` as is, then finish.
//! ```
//!
//! [`frame_len`] fails on an oversized prefix, so a reader never allocates for a lie.

mod auth;
mod codec;
mod error;
pub mod limits;
mod message;

#[cfg(test)]
mod tests;

pub use auth::{
    EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, HELLO_PROOF_LABEL, hello_proof,
    verify_hello_proof,
};
pub use codec::{
    LEN_PREFIX, MAX_FRAME_LEN, decode_push, decode_request, decode_response, encode_push,
    encode_request, encode_response, frame_len,
};
pub use error::{FrameError, WireError};
pub use message::{
    AddonHeader, AddonRequest, ChunkClass, ChunkHeader, ChunkRequest, FileMeta, Heartbeat, Hello,
    Push, Request, Response, Welcome,
};

/// QUIC ALPN of this protocol; the version lives here so a mismatched edge fails the TLS
/// handshake instead of misreading frames.
pub const ALPN: &[u8] = b"tgcdn/4";

/// The protocol version carried in [`Hello`]; must match the digit in [`ALPN`].
///
/// 2: [`AddonHeader`] gained its cache lifetimes and [`WireError::AddonDisabled`] was added.
/// 3: the core pushes [`Push`] frames on unidirectional streams (revocations). A version-2
/// edge would never read them, so it is refused at the TLS handshake (ALPN) instead of
/// serving revoked files from its cache.
/// 4: each core sends its whole revocation list on connect ([`Push::RevokedList`]) and
/// pushes [`Push::Unrevoked`]; an edge refuses a file any of its cores revoked, whichever
/// core serves it (a version-3 edge would ignore those lists). [`Request::MetaChunk`] (a
/// file's metadata and one chunk in one exchange), the [`ChunkClass`] of every chunk
/// request, and [`Welcome::download_connections`].
pub const PROTOCOL_VERSION: u16 = 4;
