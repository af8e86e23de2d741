//! An opt-in timeline of API requests: when each arrived on which connection and when its
//! answer was written, so a test can count the round trips a client operation took from
//! the server's side ([`round_trips`]) instead of asserting on wall-clock time. Recording
//! starts with [`crate::EmulatorHandle::start_trace`]; until then nothing is kept, and at
//! most [`MAX_ENTRIES`] requests are kept after. Never influences behaviour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Requests kept at most per trace; later ones are not recorded.
pub const MAX_ENTRIES: usize = 100_000;

/// One API request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTrace {
    pub dc: i32,
    /// The emulator's id of the TCP connection it came on.
    pub conn_id: u64,
    /// The TL method after unwrapping `invokeWithLayer`/`initConnection`.
    pub method: &'static str,
    /// Since the trace started: when the request was read off the connection.
    pub received: Duration,
    /// Since the trace started: when the last byte of its answer was handed to the socket
    /// (after the injected latency and the bandwidth pacer); `None` if never answered.
    pub answered: Option<Duration>,
}

#[derive(Default)]
struct Recording {
    origin: Option<Instant>,
    entries: Vec<RequestTrace>,
    /// (connection, client msg_id) → index in `entries`, until answered.
    open: HashMap<(u64, i64), usize>,
}

/// The shared recorder, cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Tracer {
    inner: Arc<Mutex<Recording>>,
}

impl Tracer {
    fn lock(&self) -> MutexGuard<'_, Recording> {
        // Plain data; a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets what was recorded and records from now on.
    pub(crate) fn start(&self) {
        *self.lock() = Recording {
            origin: Some(Instant::now()),
            ..Recording::default()
        };
    }

    pub(crate) fn is_on(&self) -> bool {
        self.lock().origin.is_some()
    }

    pub(crate) fn received(&self, dc: i32, conn_id: u64, msg_id: i64, method: &'static str) {
        let mut rec = self.lock();
        let Some(origin) = rec.origin else { return };
        if rec.entries.len() >= MAX_ENTRIES {
            return;
        }
        let at = rec.entries.len();
        rec.entries.push(RequestTrace {
            dc,
            conn_id,
            method,
            received: origin.elapsed(),
            answered: None,
        });
        rec.open.insert((conn_id, msg_id), at);
    }

    pub(crate) fn answered(&self, conn_id: u64, msg_id: i64) {
        let mut rec = self.lock();
        let Some(origin) = rec.origin else { return };
        if let Some(at) = rec.open.remove(&(conn_id, msg_id))
            && let Some(entry) = rec.entries.get_mut(at)
        {
            entry.answered = Some(origin.elapsed());
        }
    }

    pub(crate) fn entries(&self) -> Vec<RequestTrace> {
        self.lock().entries.clone()
    }
}

/// The round trips `requests` took one after another: the longest chain in which each
/// request arrived only after the previous one's answer had been written. Two requests
/// sent together (two halves of a chunk on two connections) count once, a request sent
/// because of an answer (a `getFile` after the `channels.getMessages` that gave its
/// location) counts again. Unanswered requests end a chain.
pub fn round_trips(requests: &[RequestTrace]) -> usize {
    let mut sorted: Vec<&RequestTrace> = requests.iter().collect();
    sorted.sort_by_key(|r| r.received);
    // depth[i]: the longest chain ending with request i.
    let mut depth = vec![0usize; sorted.len()];
    for i in 0..sorted.len() {
        let before = (0..i)
            .filter(|&j| sorted[j].answered.is_some_and(|a| a <= sorted[i].received))
            .map(|j| depth[j])
            .max()
            .unwrap_or(0);
        depth[i] = before + 1;
    }
    depth.into_iter().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(method: &'static str, received: u64, answered: u64) -> RequestTrace {
        RequestTrace {
            dc: 4,
            conn_id: 1,
            method,
            received: Duration::from_millis(received),
            answered: Some(Duration::from_millis(answered)),
        }
    }

    #[test]
    fn overlapping_requests_are_one_round_trip() {
        let halves = [at("upload.getFile", 0, 60), at("upload.getFile", 1, 61)];
        assert_eq!(round_trips(&halves), 1);
    }

    #[test]
    fn a_request_sent_after_an_answer_is_another_round_trip() {
        let serial = [
            at("channels.getMessages", 0, 50),
            at("upload.getFile", 51, 101),
            at("upload.getFile", 52, 102),
        ];
        assert_eq!(round_trips(&serial), 2);
        let halves_in_turn = [at("upload.getFile", 0, 60), at("upload.getFile", 60, 110)];
        assert_eq!(round_trips(&halves_in_turn), 2);
        assert_eq!(round_trips(&[]), 0);
    }

    #[test]
    fn recording_is_off_until_started() {
        let tracer = Tracer::default();
        tracer.received(4, 1, 10, "upload.getFile");
        assert!(tracer.entries().is_empty());
        tracer.start();
        tracer.received(4, 1, 10, "upload.getFile");
        tracer.answered(1, 11);
        assert_eq!(tracer.entries()[0].answered, None);
        tracer.answered(1, 10);
        assert!(tracer.entries()[0].answered.is_some());
    }
}
