//! The read-ahead window of one sequential response body: how many chunks it may have in
//! flight (being fetched or fetched and not yet sent) at once.
//!
//! Called by [`crate::body::ChunkBody`] only. Pure state machine: no I/O, no clock (`now`
//! is passed in), so it is unit-tested with made-up instants.
//!
//! The rule is TCP's in spirit. Speed is bytes in flight over time per request, so a fixed
//! window caps a stream at a fixed multiple of the core's per-chunk latency. The window:
//! * starts small ([`WindowLimits::initial`]), so a viewer who reads a few bytes and leaves
//!   (a player probing the file) costs little; a body that reads the file from its start
//!   or to its end (a full `GET`, `bytes=0-`, `bytes=N-`: a viewer, not a probe) starts at
//!   [`WindowLimits::initial_sequential`] instead ([`ReadaheadWindow::for_body`]);
//! * doubles, like TCP slow start, each time the reader has taken a whole window of chunks
//!   promptly — it was waiting for each chunk, or took it within
//!   [`WindowLimits::stall_after`] of it being ready — i.e. about once per chunk round trip;
//! * halves when the reader stalls — a chunk sat ready longer than `stall_after` because the
//!   client stopped reading (hyper stopped polling the body: backpressure) — since buffering
//!   for a reader who is not reading only holds memory and core capacity;
//! * stays within `[min, max]`; `max` is the per-stream bound from configuration, lowered to
//!   what the core can keep busy ([`WindowLimits::for_core`]: [`CHUNKS_PER_CORE_CONNECTION`]
//!   per download connection it advertised), since chunks beyond that only queue there.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bounds and thresholds of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    /// Chunks in flight when a stream starts.
    pub initial: usize,
    /// Chunks in flight when a stream reads from the file's start or to its end.
    pub initial_sequential: usize,
    /// Never fewer than this (at least 1: the chunk being sent).
    pub min: usize,
    /// Never more than this (per-stream cap, `TGCDN_READAHEAD_MAX`).
    pub max: usize,
    /// A chunk ready for longer than this before the reader took it means the reader stalled.
    pub stall_after: Duration,
}

impl Default for WindowLimits {
    fn default() -> Self {
        WindowLimits {
            initial: 2,
            initial_sequential: 4,
            min: 1,
            // A cap: `for_core` lowers it to 4 chunks per core connection (32 for 8 paced
            // connections, bench/README.md); 64 fills a core of 4 bots × 4 connections.
            max: 64,
            stall_after: Duration::from_millis(500),
        }
    }
}

/// Chunks in flight that keep one of the core's download connections busy: a connection
/// carries 8 `getFile` parts (4 chunks) at once by default, and 8 connections were measured
/// to need ~32 chunks in flight to be full (bench/README.md).
pub const CHUNKS_PER_CORE_CONNECTION: usize = 4;

impl WindowLimits {
    /// These limits with `max` lowered to what a core with `connections` download
    /// connections keeps busy ([`CHUNKS_PER_CORE_CONNECTION`] each); unchanged while the
    /// figure is unknown. The configured `max` stays the cap.
    pub fn for_core(self, connections: Option<u32>) -> Self {
        let Some(connections) = connections.filter(|c| *c > 0) else {
            return self;
        };
        let busy = usize::try_from(connections)
            .unwrap_or(usize::MAX)
            .saturating_mul(CHUNKS_PER_CORE_CONNECTION);
        let max = self.max.min(busy).max(1);
        WindowLimits {
            initial: self.initial.min(max),
            initial_sequential: self.initial_sequential.min(max),
            min: self.min.min(max),
            max,
            ..self
        }
    }

    /// Limits with `max` as the per-stream cap, keeping `min ≤ initial ≤ max`.
    pub fn with_max(max: usize) -> Self {
        let max = max.max(1);
        let defaults = WindowLimits::default();
        WindowLimits {
            initial: defaults.initial.min(max),
            initial_sequential: defaults.initial_sequential.min(max),
            min: defaults.min.min(max),
            max,
            ..defaults
        }
    }
}

/// The window controller of one stream.
#[derive(Debug, Clone)]
pub struct ReadaheadWindow {
    limits: WindowLimits,
    size: usize,
    /// When each chunk became ready, for chunks ready but not yet consumed, by index.
    ready: VecDeque<(u64, Instant)>,
    /// Chunks taken promptly since the window last changed size.
    prompt_in_round: usize,
    grown: u64,
    shrunk: u64,
}

impl ReadaheadWindow {
    pub fn new(limits: WindowLimits) -> Self {
        let min = limits.min.max(1);
        let max = limits.max.max(min);
        let limits = WindowLimits { min, max, ..limits };
        ReadaheadWindow {
            size: limits.initial.clamp(min, max),
            limits,
            ready: VecDeque::new(),
            prompt_in_round: 0,
            grown: 0,
            shrunk: 0,
        }
    }

    /// The window of one response body: `sequential` when it reads from the file's first
    /// byte or through its last (see the module docs), which earns the larger start.
    pub fn for_body(limits: WindowLimits, sequential: bool) -> Self {
        let initial = if sequential {
            limits.initial.max(limits.initial_sequential)
        } else {
            limits.initial
        };
        ReadaheadWindow::new(WindowLimits { initial, ..limits })
    }

    /// How many chunks the stream may have in flight now.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How often the window grew and shrank (for tests and debug logs).
    pub fn adjustments(&self) -> (u64, u64) {
        (self.grown, self.shrunk)
    }

    /// Chunk `index` finished fetching at `now`.
    pub fn on_chunk_ready(&mut self, index: u64, now: Instant) {
        if !self.ready.iter().any(|(i, _)| *i == index) {
            self.ready.push_back((index, now));
        }
    }

    /// The reader took chunk `index` at `now`. A chunk never reported ready counts as one
    /// the reader waited for (it is taken the moment it arrives).
    pub fn on_consumed(&mut self, index: u64, now: Instant) {
        let ready_at = match self.ready.iter().position(|(i, _)| *i == index) {
            Some(pos) => self.ready.remove(pos).map(|(_, at)| at),
            None => None,
        };
        let waited_on_reader = ready_at
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or_default();
        if waited_on_reader > self.limits.stall_after {
            self.shrink();
        } else {
            self.grow();
        }
    }

    fn grow(&mut self) {
        self.prompt_in_round += 1;
        if self.prompt_in_round < self.size || self.size >= self.limits.max {
            return;
        }
        self.size = (self.size * 2).min(self.limits.max);
        self.prompt_in_round = 0;
        self.grown += 1;
    }

    fn shrink(&mut self) {
        // A stall starts a new round: growth needs a whole prompt window again.
        self.prompt_in_round = 0;
        let halved = (self.size / 2).max(self.limits.min);
        if halved < self.size {
            self.size = halved;
            self.shrunk += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> WindowLimits {
        WindowLimits {
            initial: 2,
            initial_sequential: 4,
            min: 1,
            max,
            stall_after: Duration::from_millis(100),
        }
    }

    /// Reports chunks `from..to` ready and takes each at once.
    fn take_promptly(window: &mut ReadaheadWindow, from: u64, to: u64, at: Instant) {
        for index in from..to {
            window.on_chunk_ready(index, at);
            window.on_consumed(index, at);
        }
    }

    #[test]
    fn starts_at_initial() {
        assert_eq!(ReadaheadWindow::new(limits(16)).size(), 2);
        assert_eq!(ReadaheadWindow::new(limits(1)).size(), 1);
    }

    #[test]
    fn sequential_body_starts_larger_within_bounds() {
        assert_eq!(ReadaheadWindow::for_body(limits(32), true).size(), 4);
        assert_eq!(ReadaheadWindow::for_body(limits(32), false).size(), 2);
        assert_eq!(ReadaheadWindow::for_body(limits(3), true).size(), 3);
        assert_eq!(ReadaheadWindow::for_body(limits(1), true).size(), 1);
    }

    #[test]
    fn doubles_after_each_prompt_window_like_slow_start() {
        let t0 = Instant::now();
        let mut window = ReadaheadWindow::new(limits(32));
        let mut sizes = Vec::new();
        let mut next = 0;
        for _ in 0..5 {
            let size = window.size() as u64;
            // One chunk short of a full window: no growth yet.
            take_promptly(&mut window, next, next + size - 1, t0);
            assert_eq!(window.size() as u64, size);
            take_promptly(&mut window, next + size - 1, next + size, t0);
            next += size;
            sizes.push(window.size());
        }
        assert_eq!(sizes, [4, 8, 16, 32, 32]);
        // 2 + 4 + 8 + 16 chunks to reach the cap.
        assert_eq!(next, 2 + 4 + 8 + 16 + 32);
        assert_eq!(window.adjustments(), (4, 0));
    }

    #[test]
    fn grows_while_reader_keeps_up_up_to_max() {
        let t0 = Instant::now();
        let mut window = ReadaheadWindow::new(limits(12));
        for index in 0..40 {
            let at = t0 + Duration::from_millis(10 * index);
            window.on_chunk_ready(index, at);
            window.on_consumed(index, at + Duration::from_millis(5));
            assert!(window.size() <= 12);
        }
        assert_eq!(window.size(), 12);
    }

    #[test]
    fn reader_waiting_on_fetch_grows_window() {
        let t0 = Instant::now();
        let mut window = ReadaheadWindow::new(limits(16));
        // Consumed without a prior ready report: the reader was waiting for it.
        window.on_consumed(0, t0);
        window.on_consumed(1, t0 + Duration::from_secs(1));
        assert_eq!(window.size(), 4);
    }

    #[test]
    fn shrinks_when_reader_stalls_and_never_below_min() {
        let t0 = Instant::now();
        let mut window = ReadaheadWindow::new(limits(16));
        for index in 0..14 {
            window.on_consumed(index, t0);
        }
        assert_eq!(window.size(), 16);
        for index in 14..30 {
            window.on_chunk_ready(index, t0);
        }
        window.on_consumed(14, t0 + Duration::from_secs(2));
        assert_eq!(window.size(), 8);
        for index in 15..30 {
            window.on_consumed(index, t0 + Duration::from_secs(5));
        }
        assert_eq!(window.size(), 1);
        assert!(window.adjustments().1 >= 4);
    }

    #[test]
    fn stall_restarts_the_round() {
        let t0 = Instant::now();
        let mut window = ReadaheadWindow::new(limits(32));
        take_promptly(&mut window, 0, 6, t0);
        assert_eq!(window.size(), 8);
        // 7 of 8 prompt, then a stall: halved, and the 7 no longer count.
        take_promptly(&mut window, 6, 13, t0);
        window.on_chunk_ready(13, t0);
        window.on_consumed(13, t0 + Duration::from_secs(1));
        assert_eq!(window.size(), 4);
        let t1 = t0 + Duration::from_secs(2);
        take_promptly(&mut window, 14, 17, t1);
        assert_eq!(window.size(), 4);
        take_promptly(&mut window, 17, 18, t1);
        assert_eq!(window.size(), 8);
    }

    #[test]
    fn recovers_after_stall() {
        let t0 = Instant::now();
        let mut window = ReadaheadWindow::new(limits(16));
        window.on_chunk_ready(0, t0);
        window.on_consumed(0, t0 + Duration::from_secs(1));
        assert_eq!(window.size(), 1);
        let t1 = t0 + Duration::from_secs(2);
        // 1 → 2 after one chunk, 2 → 4 after two more.
        take_promptly(&mut window, 1, 4, t1);
        assert_eq!(window.size(), 4);
    }

    #[test]
    fn with_max_keeps_bounds_consistent() {
        let limits = WindowLimits::with_max(0);
        assert_eq!(
            (
                limits.min,
                limits.initial,
                limits.initial_sequential,
                limits.max
            ),
            (1, 1, 1, 1)
        );
        let limits = WindowLimits::with_max(32);
        assert_eq!(
            (
                limits.min,
                limits.initial,
                limits.initial_sequential,
                limits.max
            ),
            (1, 2, 4, 32)
        );
        assert_eq!(WindowLimits::default().max, 64);
    }

    #[test]
    fn the_core_s_connections_lower_the_cap_never_raise_it() {
        let cap = WindowLimits::with_max(64);
        assert_eq!(cap.for_core(None), cap);
        assert_eq!(cap.for_core(Some(0)), cap);
        assert_eq!(cap.for_core(Some(8)).max, 32);
        assert_eq!(cap.for_core(Some(16)).max, 64);
        assert_eq!(cap.for_core(Some(1000)).max, 64);
        let one = cap.for_core(Some(1));
        assert_eq!(one.max, CHUNKS_PER_CORE_CONNECTION);
        assert!(one.min <= one.initial && one.initial <= one.initial_sequential);
        assert!(one.initial_sequential <= one.max);
    }
}
