//! How long each side of the edge↔core hop works on one request, set from one another: the
//! core gives up on a request (and answers why — flood wait, unavailable) before the edge
//! stops waiting for that answer, with room for the answer to travel.
//!
//! Before these were tied, the edge waited 30 s for a chunk while the core's fetch deadline
//! was 40 s: a core sleeping through a long flood wait or retrying a slow Telegram reached
//! the viewer as an edge timeout (504), and its own answer — a flood wait another core
//! could have routed around — was never read. Both sides take their figures from here, and
//! the relation is checked when this crate compiles.

use std::time::Duration;

/// How long the edge waits for one request's answer on its stream (one attempt).
pub const EDGE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Room between the core giving up and the edge giving up: a 1 MiB answer over a slow
/// path, and the scheduling of two loaded processes.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// The longest the core works on one request (lookup and fetch together) before it answers
/// with its reason for failing.
pub const CORE_REQUEST_DEADLINE: Duration = EDGE_REQUEST_TIMEOUT.saturating_sub(ANSWER_MARGIN);

/// How long the edge waits for a file's metadata, retries over its connection included.
pub const EDGE_META_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest the core looks a file up (Telegram's `channels.getMessages`, retries across
/// bots included) before it answers why it could not.
pub const CORE_LOOKUP_DEADLINE: Duration = EDGE_META_TIMEOUT.saturating_sub(ANSWER_MARGIN);

const _: () = assert!(
    CORE_LOOKUP_DEADLINE.as_millis() + ANSWER_MARGIN.as_millis() <= EDGE_META_TIMEOUT.as_millis()
        && CORE_LOOKUP_DEADLINE.as_millis() <= CORE_REQUEST_DEADLINE.as_millis()
        && CORE_LOOKUP_DEADLINE.as_millis() > 0,
    "the core must answer a lookup before the edge stops waiting"
);

const _: () = assert!(
    CORE_REQUEST_DEADLINE.as_millis() + ANSWER_MARGIN.as_millis()
        <= EDGE_REQUEST_TIMEOUT.as_millis()
        && CORE_REQUEST_DEADLINE.as_millis() > 0,
    "the core must answer before the edge stops waiting"
);
