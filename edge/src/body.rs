//! The body of a `200`/`206` response: fixed byte strings (multipart headers) and chunk
//! slices in order, each slice sent as a zero-copy `Bytes::slice` of the cached chunk.
//!
//! Built by the HTTP layer from a [`crate::range::ResponsePlan`]'s spans; polled by hyper.
//! Chunks come from [`crate::fetch::ChunkSource`] (cache, then upstream). It owns the stream's
//! read-ahead: at most [`ReadaheadWindow::size`] chunk fetches of this body are in flight
//! (started and not yet sent), and a new one starts as soon as one is sent — a sliding
//! window, never a batch with a barrier. Because hyper polls the body only when the client
//! connection can take more, a slow client never makes this body hold more than its window.
//! It never buffers beyond that and never panics on a failed fetch: the error ends the
//! stream (hyper then aborts the connection, so a truncated body is never mistaken for a
//! complete one). The HTTP layer awaits [`ChunkBody::first_chunk`] before it sends the
//! head, so the first chunk failing is an error status instead.
//!
//! Memory is bounded by the edge's [`crate::budget`], not by how fast clients read:
//! * a read-ahead fetch starts only with a lease of its chunk's bytes, and once the chunk
//!   has landed in the cache the body lets go of it (bytes and lease): what is read ahead
//!   lives in the cache, counted there, and a client that stops reading holds nothing
//!   beyond the chunk it is about to send;
//! * the chunk being sent travels to hyper as a [`ChunkFrame`] carrying its hold
//!   ([`crate::cache::ChunkCache::hold`]: one lease per allocation, however many responses
//!   send it, reported as cached while the cache keeps it too), released when hyper drops
//!   the frame — a chunk evicted while a slow client drains it is counted;
//! * when the budget is spent, the next chunk is sent as copies of at most
//!   [`COPY_PIECE`] bytes taken from the cache, holding no chunk between polls; the stream
//!   goes on, slower, rather than waiting for budget other slow clients hold.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use http_body::{Body, Frame, SizeHint};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::{CHUNK_SIZE, ChunkSlice, chunk_len};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::budget::Lease;
use crate::cache::{CacheOutcome, ChunkHold, ChunkKey};
use crate::fetch::ChunkSource;
use crate::range::Segment;
use crate::readahead::{ReadaheadWindow, WindowLimits};
use crate::slots::FillClass;
use crate::upstream::UpstreamError;

/// What a finished (or abandoned) body reports for the request's log line and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodySummary {
    pub bytes_sent: u64,
    pub hits: u32,
    pub misses: u32,
    pub coalesced: u32,
    /// Every byte was produced (the client may still not have received them all).
    pub completed: bool,
    pub error: Option<String>,
}

impl BodySummary {
    /// The request's cache outcome in one word: `hit` if every chunk was, `miss` if any
    /// chunk was fetched by this request, otherwise `coalesced`; `none` without chunks.
    pub fn cache_outcome(&self) -> &'static str {
        match (self.hits, self.misses, self.coalesced) {
            (0, 0, 0) => "none",
            (_, 0, 0) => "hit",
            (_, m, _) if m > 0 => "miss",
            _ => "coalesced",
        }
    }
}

/// Called once when the body is dropped, however the response ended.
pub type OnFinish = Box<dyn FnOnce(BodySummary) + Send>;

/// Largest copy sent when the budget is spent: small enough that a stalled client holds
/// little (hyper's HTTP/1 write buffer is capped to a few of these, see [`crate::http`]).
pub const COPY_PIECE: usize = 16 * 1024;

/// A data frame of a response: bytes, and the hold covering the chunk they are a slice
/// of, released when hyper has written (or dropped) the frame.
#[derive(Debug)]
pub struct ChunkFrame {
    bytes: Bytes,
    _hold: Option<ChunkHold>,
}

impl From<Bytes> for ChunkFrame {
    fn from(bytes: Bytes) -> Self {
        ChunkFrame { bytes, _hold: None }
    }
}

impl Buf for ChunkFrame {
    fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn chunk(&self) -> &[u8] {
        &self.bytes
    }

    fn advance(&mut self, count: usize) {
        self.bytes.advance(count);
    }
}

/// A finished fetch. `bytes` is kept only when the cache did not hold the chunk when it
/// landed, and then `hold` (if the budget allowed one) covers it; otherwise the chunk is
/// taken from the cache when it is sent.
struct Ready {
    result: Result<(Option<Bytes>, CacheOutcome), UpstreamError>,
    at: Instant,
    hold: Option<ChunkHold>,
}

struct InFlight {
    slice: ChunkSlice,
    /// The waiter task of a fetch that was not ready at once; `None` for cache hits.
    task: Option<JoinHandle<Ready>>,
    done: Option<Ready>,
}

/// What is left of a fetch result once it landed: the bytes only if the cache lacks them.
fn settle(
    source: &ChunkSource,
    key: ChunkKey,
    result: Result<(Bytes, CacheOutcome), UpstreamError>,
    at: Instant,
    lease: Option<Lease>,
) -> Ready {
    match result {
        Ok((_, outcome)) if source.cache().contains(key) => Ready {
            result: Ok((None, outcome)),
            at,
            hold: None,
        },
        Ok((bytes, outcome)) => {
            // Shared with any other body holding the same bytes (a coalesced fill).
            let hold = lease.and_then(|lease| {
                source
                    .cache()
                    .hold(key, &bytes, Some(lease), source.budget())
            });
            Ready {
                result: Ok((Some(bytes), outcome)),
                at,
                hold,
            }
        }
        Err(error) => Ready {
            result: Err(error),
            at,
            hold: None,
        },
    }
}

/// The streaming body. See the module docs.
pub struct ChunkBody {
    source: ChunkSource,
    /// Whose fetch slots the fills this body starts take ([`crate::slots`]).
    client: Option<IpAddr>,
    file: FileRef,
    file_size: u64,
    /// Output order; a `Slice` here is produced by the front of `in_flight`.
    order: VecDeque<Segment>,
    /// Slices whose fetch has not started yet, in order.
    unstarted: VecDeque<ChunkSlice>,
    in_flight: VecDeque<InFlight>,
    window: ReadaheadWindow,
    remaining: u64,
    summary: BodySummary,
    on_finish: Option<OnFinish>,
}

/// Whether the body reads the file from its first byte or through its last: a full `GET`,
/// `bytes=0-…` or `bytes=N-`, the requests of a viewer rather than of a probe.
fn reads_from_start_or_to_end(slices: &VecDeque<ChunkSlice>, file_size: u64) -> bool {
    let from_start = slices
        .front()
        .is_some_and(|first| first.index == 0 && first.start == 0);
    let to_end = slices.back().is_some_and(|last| {
        last.index
            .checked_mul(CHUNK_SIZE)
            .and_then(|offset| offset.checked_add(last.end))
            == Some(file_size)
    });
    from_start || to_end
}

impl ChunkBody {
    pub fn new(
        source: ChunkSource,
        file: FileRef,
        file_size: u64,
        segments: Vec<Segment>,
        limits: WindowLimits,
        on_finish: OnFinish,
    ) -> Self {
        let unstarted: VecDeque<ChunkSlice> = segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Slice(slice) => Some(*slice),
                Segment::Fixed(_) => None,
            })
            .collect();
        let sequential = reads_from_start_or_to_end(&unstarted, file_size);
        let remaining = segments.iter().map(Segment::len).sum();
        ChunkBody {
            source,
            client: None,
            file,
            file_size,
            order: segments.into(),
            unstarted,
            in_flight: VecDeque::new(),
            window: ReadaheadWindow::for_body(limits, sequential),
            remaining,
            summary: BodySummary::default(),
            on_finish: Some(on_finish),
        }
    }

    /// Fills this body starts count against `client`'s fetch slots.
    pub fn for_client(mut self, client: IpAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// Replaces what is called when the body is dropped: the HTTP layer builds the body
    /// before it knows the response's status (see [`Self::first_chunk`]).
    pub fn set_on_finish(&mut self, on_finish: OnFinish) {
        self.on_finish = Some(on_finish);
    }

    /// Starts the body's fetches and waits until the first chunk to send has arrived (or
    /// failed), read-ahead going on meanwhile. The caller sends the response's head only
    /// after this: a first chunk the core cannot serve then becomes an error status (502,
    /// or 503 with `Retry-After` for a flood wait), where it used to be a `200` and its
    /// `Content-Length` followed by no body at all. Later chunks can still fail; the
    /// connection is then cut, so the short body shows against `Content-Length`.
    pub async fn first_chunk(&mut self) -> Result<(), UpstreamError> {
        std::future::poll_fn(|cx| self.poll_first_chunk(cx)).await
    }

    fn poll_first_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        if self.in_flight.is_empty() {
            self.top_up(cx);
        }
        self.collect_ready(cx);
        match self.in_flight.front() {
            // Nothing to fetch (only fixed bytes), or the first chunk is here.
            None => Poll::Ready(Ok(())),
            Some(InFlight {
                done: Some(ready), ..
            }) => Poll::Ready(ready.result.as_ref().map(|_| ()).map_err(Clone::clone)),
            Some(_) => {
                self.top_up(cx);
                Poll::Pending
            }
        }
    }

    /// Exact number of bytes this body will produce (its `Content-Length`).
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Chunk fetches of this body started and not yet sent.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts fetches until the window is full or the budget is spent. A cache hit needs
    /// no fetch and holds nothing until it is sent; any other fetch is awaited on its own
    /// task (unless it completes on its first poll), so that its completion time is known
    /// even while hyper is not polling us (the stall signal). The chunk to send next is
    /// fetched even without budget (it is then sent as copies); read-ahead never is.
    fn top_up(&mut self, cx: &mut Context<'_>) {
        while self.in_flight.len() < self.window.size() {
            let Some(&slice) = self.unstarted.front() else {
                return;
            };
            if self.source.cached(self.file, slice.index).is_some() {
                self.unstarted.pop_front();
                let at = Instant::now();
                self.window.on_chunk_ready(slice.index, at);
                let done = Ready {
                    result: Ok((None, CacheOutcome::Hit)),
                    at,
                    hold: None,
                };
                self.in_flight.push_back(InFlight {
                    slice,
                    task: None,
                    done: Some(done),
                });
                continue;
            }
            let lease = self.lease_for(slice.index);
            if lease.is_none() && !self.in_flight.is_empty() {
                return;
            }
            self.unstarted.pop_front();
            // The next chunk to send is what the response waits for; later ones are read-ahead.
            let class = if self.in_flight.is_empty() {
                FillClass::Demand
            } else {
                FillClass::ReadAhead
            };
            let slot = self.start(slice, class, lease, cx);
            self.in_flight.push_back(slot);
        }
    }

    /// The chunk to send now, if the cache holds it: kept from this one lookup until it is
    /// sent in the same poll, where [`Self::top_up`] would let it go and look it up again (a
    /// second moka `get` on every cache-hit request).
    fn take_front_hit(&mut self) -> bool {
        let Some(&slice) = self.unstarted.front() else {
            return false;
        };
        let Some(chunk) = self.source.cached(self.file, slice.index) else {
            return false;
        };
        self.unstarted.pop_front();
        let at = Instant::now();
        self.window.on_chunk_ready(slice.index, at);
        self.in_flight.push_back(InFlight {
            slice,
            task: None,
            done: Some(Ready {
                result: Ok((Some(chunk), CacheOutcome::Hit)),
                at,
                hold: None,
            }),
        });
        true
    }

    fn lease_for(&self, index: u64) -> Option<Lease> {
        let bytes = chunk_len(self.file_size, index).unwrap_or(CHUNK_SIZE);
        self.source.budget().try_lease(bytes)
    }

    /// Starts the fetch of `slice`'s chunk as a `class` fill, `lease` covering it while it is
    /// held.
    fn start(
        &mut self,
        slice: ChunkSlice,
        class: FillClass,
        lease: Option<Lease>,
        cx: &mut Context<'_>,
    ) -> InFlight {
        let source = self.source.clone();
        let (client, file, file_size) = (self.client, self.file, self.file_size);
        let key = ChunkKey {
            file,
            index: slice.index,
        };
        let mut fetch = Box::pin(async move {
            source
                .chunk_for(client, class, file, file_size, slice.index)
                .await
        });
        match fetch.as_mut().poll(cx) {
            Poll::Ready(result) => {
                let at = Instant::now();
                self.window.on_chunk_ready(slice.index, at);
                InFlight {
                    slice,
                    task: None,
                    done: Some(settle(&self.source, key, result, at, lease)),
                }
            }
            Poll::Pending => {
                let source = self.source.clone();
                let span = tracing::trace_span!("chunk_wait", index = slice.index);
                let task = tokio::spawn(
                    async move {
                        let result = fetch.await;
                        settle(&source, key, result, Instant::now(), lease)
                    }
                    .instrument(span),
                );
                InFlight {
                    slice,
                    task: Some(task),
                    done: None,
                }
            }
        }
    }

    /// Polls every started fetch, recording completions with the window.
    fn collect_ready(&mut self, cx: &mut Context<'_>) {
        for slot in self.in_flight.iter_mut().filter(|slot| slot.done.is_none()) {
            let Some(task) = slot.task.as_mut() else {
                continue;
            };
            if let Poll::Ready(joined) = task.poll_unpin(cx) {
                let ready = joined.unwrap_or_else(|join_error| Ready {
                    result: Err(UpstreamError::unreachable(format!(
                        "chunk task: {join_error}"
                    ))),
                    at: Instant::now(),
                    hold: None,
                });
                self.window.on_chunk_ready(slot.slice.index, ready.at);
                slot.task = None;
                slot.done = Some(ready);
            }
        }
    }

    /// The next frame of the front slice, and whether it finishes that slice.
    fn take_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(ChunkFrame, bool), UpstreamError>>> {
        // The chunk to send comes first: read-ahead tops up only once it is taken (or while
        // it is awaited), so it never spends the budget the next frame needs.
        if self.in_flight.is_empty() && !self.take_front_hit() {
            self.top_up(cx);
        }
        self.collect_ready(cx);
        let Some(front) = self.in_flight.front_mut() else {
            // `order` says a slice is next, so one was started: unreachable in practice,
            // but a typed error beats a panic.
            return Poll::Ready(Some(Err(UpstreamError::protocol("body lost a chunk"))));
        };
        let Some(ready) = front.done.take() else {
            // The response waits for this chunk now: if it was read ahead and still waits
            // for a fetch slot, it waits as demand from now on.
            let waited_for = ChunkKey {
                file: self.file,
                index: front.slice.index,
            };
            self.source.slots().promote(waited_for);
            self.top_up(cx);
            return Poll::Pending;
        };
        let slice = front.slice;
        let (kept, outcome) = match ready.result {
            Ok(found) => found,
            Err(error) => return Poll::Ready(Some(Err(error))),
        };
        let key = ChunkKey {
            file: self.file,
            index: slice.index,
        };
        let (chunk, hold) = match kept {
            Some(chunk) => (chunk, ready.hold),
            None => match self.source.cache().peek(key) {
                Some(chunk) => (chunk, None),
                None => {
                    // Evicted between landing and being sent: fetch it again.
                    let lease = self.lease_for(slice.index);
                    let slot = self.start(slice, FillClass::Demand, lease, cx);
                    if let Some(front) = self.in_flight.front_mut() {
                        *front = slot;
                    }
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            },
        };
        let (start, end) = match usize::try_from(slice.start)
            .ok()
            .zip(usize::try_from(slice.end).ok())
        {
            Some((start, end)) if start <= end && end <= chunk.len() => (start, end),
            _ => {
                return Poll::Ready(Some(Err(UpstreamError::protocol(format!(
                    "chunk {} has {} bytes, slice wants {}..{}",
                    slice.index,
                    chunk.len(),
                    slice.start,
                    slice.end
                )))));
            }
        };
        let hold = hold.or_else(|| {
            let source = &self.source;
            source.cache().hold(key, &chunk, None, source.budget())
        });
        let frame = match hold {
            Some(hold) => ChunkFrame {
                bytes: chunk.slice(start..end),
                _hold: Some(hold),
            },
            None => {
                // Budget spent: a small copy, and the chunk stays only in the cache.
                let piece_end = end.min(start + COPY_PIECE);
                let frame = ChunkFrame::from(Bytes::copy_from_slice(&chunk[start..piece_end]));
                if piece_end < end {
                    front.slice.start = piece_end as u64;
                    front.done = Some(Ready {
                        result: Ok((None, outcome)),
                        at: ready.at,
                        hold: None,
                    });
                    return Poll::Ready(Some(Ok((frame, false))));
                }
                frame
            }
        };
        self.in_flight.pop_front();
        self.window.on_consumed(slice.index, Instant::now());
        self.top_up(cx);
        match outcome {
            CacheOutcome::Hit => self.summary.hits += 1,
            CacheOutcome::Miss => self.summary.misses += 1,
            CacheOutcome::Coalesced => self.summary.coalesced += 1,
        }
        Poll::Ready(Some(Ok((frame, true))))
    }
}

impl Body for ChunkBody {
    type Data = ChunkFrame;
    type Error = UpstreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<ChunkFrame>, UpstreamError>>> {
        let this = self.get_mut();
        let next = match this.order.front() {
            None => {
                this.summary.completed = true;
                return Poll::Ready(None);
            }
            Some(Segment::Fixed(bytes)) => {
                let bytes = bytes.clone();
                this.order.pop_front();
                Poll::Ready(Some(Ok(ChunkFrame::from(bytes))))
            }
            Some(Segment::Slice(_)) => match this.take_chunk(cx) {
                Poll::Ready(Some(Ok((frame, finished)))) => {
                    if finished {
                        this.order.pop_front();
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        match next {
            Poll::Ready(Some(Ok(bytes))) => {
                this.remaining = this.remaining.saturating_sub(bytes.remaining() as u64);
                this.summary.bytes_sent += bytes.remaining() as u64;
                if this.order.is_empty() {
                    this.summary.completed = true;
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::warn!(file = %this.file, %error, "response body ended early");
                this.summary.error = Some(error.to_string());
                // Nothing more will be produced: stop the remaining fetch waiters.
                this.order.clear();
                this.remaining = 0;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.order.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

impl Drop for ChunkBody {
    fn drop(&mut self) {
        // Aborting a waiter uncounts it at the cache: a fill another request also waits
        // for keeps going, read-ahead only this body wanted is cancelled there.
        for task in self.in_flight.iter().filter_map(|slot| slot.task.as_ref()) {
            task.abort();
        }
        if let Some(on_finish) = self.on_finish.take() {
            on_finish(std::mem::take(&mut self.summary));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http_body_util::BodyExt;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::cache::ChunkCache;
    use crate::fetch::latency_histogram;
    use crate::testing::{MemoryUpstream, pattern, test_meta};
    use tgcdn_shared::chunk::{ByteRange, ChunkPlan};

    const FILE: FileRef = FileRef {
        chat_id: -1_002,
        msg_id: 9,
    };
    const SIZE: u64 = 3 * CHUNK_SIZE + 12_345;

    fn source(upstream: Arc<MemoryUpstream>, fetch_cap: usize) -> ChunkSource {
        ChunkSource::new(
            ChunkCache::new(64 << 20),
            upstream,
            fetch_cap,
            latency_histogram(),
        )
    }

    fn slices(start: u64, end: u64) -> Vec<Segment> {
        let plan = ChunkPlan::new(SIZE, ByteRange { start, end }).unwrap();
        plan.slices().map(Segment::Slice).collect()
    }

    fn summary_sink() -> (OnFinish, Arc<Mutex<Option<BodySummary>>>) {
        let slot = Arc::new(Mutex::new(None));
        let sink = slot.clone();
        (
            Box::new(move |summary| *sink.lock().unwrap() = Some(summary)),
            slot,
        )
    }

    async fn collect(body: ChunkBody) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("body timed out")
            .expect("body failed")
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn produces_exact_bytes_across_chunk_boundaries() {
        let upstream = Arc::new(MemoryUpstream::new().with_file(FILE, test_meta(SIZE, "f", "")));
        for (start, end) in [
            (0, SIZE - 1),
            (CHUNK_SIZE - 1, CHUNK_SIZE),
            (5, 5),
            (2 * CHUNK_SIZE, SIZE - 1),
        ] {
            let (on_finish, summary) = summary_sink();
            let body = ChunkBody::new(
                source(upstream.clone(), 8),
                FILE,
                SIZE,
                slices(start, end),
                WindowLimits::default(),
                on_finish,
            );
            assert_eq!(body.len(), end - start + 1);
            assert_eq!(collect(body).await, pattern(start, end + 1));
            let summary = summary.lock().unwrap().clone().unwrap();
            assert!(summary.completed);
            assert_eq!(summary.bytes_sent, end - start + 1);
        }
    }

    #[tokio::test]
    async fn fixed_segments_interleave_with_slices() {
        let upstream = Arc::new(MemoryUpstream::new().with_file(FILE, test_meta(SIZE, "f", "")));
        let mut segments = vec![Segment::Fixed(Bytes::from_static(b"<a>"))];
        segments.extend(slices(10, 19));
        segments.push(Segment::Fixed(Bytes::from_static(b"<b>")));
        segments.extend(slices(CHUNK_SIZE - 2, CHUNK_SIZE + 1));
        let (on_finish, _) = summary_sink();
        let body = ChunkBody::new(
            source(upstream, 8),
            FILE,
            SIZE,
            segments,
            WindowLimits::default(),
            on_finish,
        );
        let mut expected = b"<a>".to_vec();
        expected.extend(pattern(10, 20));
        expected.extend(b"<b>");
        expected.extend(pattern(CHUNK_SIZE - 2, CHUNK_SIZE + 2));
        assert_eq!(collect(body).await, expected);
    }

    #[tokio::test]
    async fn unpolled_body_holds_no_more_than_its_window() {
        let gate = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(
            MemoryUpstream::new()
                .with_file(FILE, test_meta(SIZE, "f", ""))
                .with_gate(gate.clone()),
        );
        let limits = WindowLimits {
            initial: 2,
            initial_sequential: 2,
            ..WindowLimits::default()
        };
        let (on_finish, summary) = summary_sink();
        let mut body = ChunkBody::new(
            source(upstream.clone(), 64),
            FILE,
            SIZE,
            slices(0, SIZE - 1),
            limits,
            on_finish,
        );
        // First poll starts the initial window and waits.
        let first = tokio::time::timeout(Duration::from_millis(50), body.frame()).await;
        assert!(
            first.is_err(),
            "no chunk may be ready before the gate opens"
        );
        assert_eq!(body.in_flight(), 2);
        // Let everything through; without polls the body starts nothing more.
        gate.add_permits(100);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(upstream.chunk_calls(), 2);
        drop(body);
        let summary = summary.lock().unwrap().clone().unwrap();
        assert!(!summary.completed);
        assert_eq!(summary.bytes_sent, 0);
    }

    /// Polls `body` once, so it starts its window, without waiting for a frame.
    async fn poll_once(body: &mut ChunkBody) {
        std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut *body).poll_frame(cx);
            Poll::Ready(())
        })
        .await;
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    #[tokio::test]
    async fn dropped_body_cancels_read_ahead_nobody_else_waits_for() {
        const BIG: u64 = 40 * CHUNK_SIZE;
        let gate = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(
            MemoryUpstream::new()
                .with_file(FILE, test_meta(BIG, "f", ""))
                .with_gate(gate.clone()),
        );
        let source = source(upstream.clone(), 64);
        let whole = || {
            ChunkPlan::new(
                BIG,
                ByteRange {
                    start: 0,
                    end: BIG - 1,
                },
            )
            .unwrap()
            .slices()
            .map(Segment::Slice)
            .collect::<Vec<_>>()
        };
        let limits = WindowLimits {
            initial_sequential: 4,
            ..WindowLimits::default()
        };
        let (on_finish, _) = summary_sink();
        let mut leaver = ChunkBody::new(source.clone(), FILE, BIG, whole(), limits, on_finish);
        poll_once(&mut leaver).await;
        until("four fetches at the core", || {
            upstream.chunks_in_flight() == 4
        })
        .await;
        // A second viewer of the first chunk only: chunk 0 has another waiter, 1..4 do not.
        let (on_finish, _) = summary_sink();
        let plan = ChunkPlan::new(BIG, ByteRange { start: 0, end: 9 }).unwrap();
        let stayer = ChunkBody::new(
            source.clone(),
            FILE,
            BIG,
            plan.slices().map(Segment::Slice).collect(),
            limits,
            on_finish,
        );
        let stayer = tokio::spawn(collect(stayer));
        until("the second viewer joins chunk 0", || {
            source.cache().counters().coalesced.get() == 1
        })
        .await;
        drop(leaver);
        let counters = source.cache().counters().clone();
        until("three fills cancelled", || counters.cancelled.get() == 3).await;
        until("the core sees one fetch left", || {
            upstream.chunks_in_flight() == 1
        })
        .await;
        assert_eq!(source.cache().fills_in_progress(), (1, 1));
        assert_eq!(source.free_fetch_permits(), 63);
        gate.add_permits(1);
        assert_eq!(stayer.await.unwrap(), pattern(0, 10));
        assert_eq!(upstream.chunk_calls(), 4);
        assert_eq!(counters.cancelled.get(), 3);
    }

    fn budgeted(upstream: Arc<MemoryUpstream>, cache_bytes: u64, budget: u64) -> ChunkSource {
        ChunkSource::with_limits(
            ChunkCache::new(cache_bytes),
            upstream,
            crate::slots::FetchSlots::new(64, 64),
            crate::budget::InflightBudget::new(budget),
            latency_histogram(),
        )
    }

    async fn next_frame(body: &mut ChunkBody) -> ChunkFrame {
        tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("frame timed out")
            .expect("body ended")
            .expect("body failed")
            .into_data()
            .unwrap_or_else(|_| panic!("not a data frame"))
    }

    #[tokio::test]
    async fn stalled_reader_holds_only_the_frame_it_is_sending() {
        const BIG: u64 = 40 * CHUNK_SIZE;
        let upstream = Arc::new(MemoryUpstream::new().with_file(FILE, test_meta(BIG, "f", "")));
        // A cache of two chunks: read-ahead is evicted behind the stalled reader's back.
        let source = budgeted(upstream.clone(), 2 * CHUNK_SIZE, 64 * CHUNK_SIZE);
        let limits = WindowLimits {
            initial_sequential: 8,
            ..WindowLimits::default()
        };
        let whole = ChunkPlan::new(
            BIG,
            ByteRange {
                start: 0,
                end: BIG - 1,
            },
        )
        .unwrap();
        let (on_finish, _) = summary_sink();
        let mut body = ChunkBody::new(
            source.clone(),
            FILE,
            BIG,
            whole.slices().map(Segment::Slice).collect(),
            limits,
            on_finish,
        );
        let frame = next_frame(&mut body).await;
        assert_eq!(frame.remaining() as u64, CHUNK_SIZE);
        // The client stops reading; its read-ahead lands in the cache (and is evicted).
        until("read-ahead landed", || upstream.chunk_calls() >= 8).await;
        until("read-ahead settled", || {
            source.cache().fills_in_progress().0 == 0
        })
        .await;
        let budget = source.budget().clone();
        until("leases of landed read-ahead returned", || {
            budget.held() == CHUNK_SIZE
        })
        .await;
        // hyper writes the frame and drops it: nothing is held any more.
        drop(frame);
        assert_eq!(budget.held(), 0);
        assert_eq!(budget.counters().held.get(), 0);
        // Evicted read-ahead is fetched again when it is the client's turn, bytes exact.
        let frame = next_frame(&mut body).await;
        assert_eq!(frame.chunk(), &pattern(CHUNK_SIZE, 2 * CHUNK_SIZE)[..]);
    }

    /// What the edge's chunk memory is by its own gauges: cache + held − both.
    fn chunk_memory(source: &ChunkSource) -> u64 {
        let holdings = source.cache().holdings();
        let (held, cached) = (holdings.held_bytes().get(), holdings.cached_bytes().get());
        source.cache().weighted_size() + (held - cached) as u64
    }

    #[tokio::test]
    async fn a_cached_chunk_two_responses_send_is_counted_once() {
        const BIG: u64 = 4 * CHUNK_SIZE;
        let upstream = Arc::new(MemoryUpstream::new().with_file(FILE, test_meta(BIG, "f", "")));
        let source = budgeted(upstream, 64 << 20, 64 * CHUNK_SIZE);
        let plan = ChunkPlan::new(BIG, ByteRange { start: 0, end: 99 }).unwrap();
        let body = || {
            let (on_finish, _) = summary_sink();
            ChunkBody::new(
                source.clone(),
                FILE,
                BIG,
                plan.slices().map(Segment::Slice).collect(),
                WindowLimits::default(),
                on_finish,
            )
        };
        let (mut first, mut second) = (body(), body());
        let a = next_frame(&mut first).await;
        let b = next_frame(&mut second).await;
        assert_eq!(
            (a.chunk(), b.chunk()),
            (&pattern(0, 100)[..], &pattern(0, 100)[..])
        );
        source.cache().run_pending_tasks().await;
        // One chunk in memory: in the cache (weighed with its page of malloc overhead), and
        // held (once) by both responses.
        let footprint = crate::alloc::chunk_footprint(CHUNK_SIZE as usize) as u64;
        assert_eq!(source.cache().weighted_size(), footprint);
        assert_eq!(source.budget().held(), CHUNK_SIZE);
        assert_eq!(chunk_memory(&source), footprint);
        // Evicted while both still send it: in-flight bytes only, still one chunk.
        source.cache().drop_file(FILE);
        source.cache().run_pending_tasks().await;
        assert_eq!(source.cache().weighted_size(), 0);
        assert_eq!(chunk_memory(&source), CHUNK_SIZE);
        drop((a, first));
        assert_eq!(chunk_memory(&source), CHUNK_SIZE);
        drop((b, second));
        assert_eq!(chunk_memory(&source), 0);
    }

    #[tokio::test]
    async fn spent_budget_sends_exact_small_copies() {
        const BIG: u64 = 6 * CHUNK_SIZE + 777;
        const OTHER: FileRef = FileRef {
            chat_id: -1_002,
            msg_id: 10,
        };
        let upstream = Arc::new(
            MemoryUpstream::new()
                .with_file(FILE, test_meta(BIG, "f", ""))
                .with_file(OTHER, test_meta(BIG, "g", "")),
        );
        let source = budgeted(upstream.clone(), 64 << 20, CHUNK_SIZE);
        let whole = ChunkPlan::new(
            BIG,
            ByteRange {
                start: 0,
                end: BIG - 1,
            },
        )
        .unwrap();
        let body = |file| {
            let (on_finish, _) = summary_sink();
            ChunkBody::new(
                source.clone(),
                file,
                BIG,
                whole.slices().map(Segment::Slice).collect(),
                WindowLimits::default(),
                on_finish,
            )
        };
        // One client holds the whole budget in a frame it does not finish sending.
        let mut holder = body(FILE);
        let held = next_frame(&mut holder).await;
        assert_eq!(source.budget().held(), CHUNK_SIZE);
        // Another still gets every byte, as copies no bigger than a piece.
        let mut copier = body(OTHER);
        let mut bytes = Vec::new();
        let mut largest = 0;
        while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), copier.frame())
            .await
            .unwrap()
        {
            let data = frame
                .unwrap()
                .into_data()
                .unwrap_or_else(|_| panic!("data"));
            largest = largest.max(data.remaining());
            bytes.extend_from_slice(data.chunk());
        }
        assert_eq!(bytes, pattern(0, BIG));
        assert!(
            largest <= COPY_PIECE,
            "a {largest}-byte frame without budget"
        );
        assert!(source.budget().counters().refused.get() > 0);
        assert_eq!(source.budget().held(), CHUNK_SIZE);
        drop((held, holder));
        assert_eq!(source.budget().held(), 0);
    }

    #[tokio::test]
    async fn viewer_bodies_start_with_the_larger_window() {
        const BIG: u64 = 40 * CHUNK_SIZE + 7;
        let gate = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(
            MemoryUpstream::new()
                .with_file(FILE, test_meta(BIG, "f", ""))
                .with_gate(gate.clone()),
        );
        let limits = WindowLimits::with_max(32);
        let cases = [
            ("from the start", 0, 20 * CHUNK_SIZE, 4),
            ("to the end (bytes=N-)", 10 * CHUNK_SIZE + 3, BIG - 1, 4),
            ("a range in the middle", 10 * CHUNK_SIZE, 20 * CHUNK_SIZE, 2),
            ("one small range", 0, 4095, 1),
        ];
        for (what, start, end, expected) in cases {
            let plan = ChunkPlan::new(BIG, ByteRange { start, end }).unwrap();
            let (on_finish, _) = summary_sink();
            let mut body = ChunkBody::new(
                source(upstream.clone(), 64),
                FILE,
                BIG,
                plan.slices().map(Segment::Slice).collect(),
                limits,
                on_finish,
            );
            let first = tokio::time::timeout(Duration::from_millis(20), body.frame()).await;
            assert!(first.is_err(), "{what}: gate is closed");
            assert_eq!(body.in_flight(), expected, "{what}");
        }
    }

    #[tokio::test]
    async fn read_ahead_grows_to_keep_several_chunks_in_flight() {
        const BIG: u64 = 40 * CHUNK_SIZE;
        let gate = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(
            MemoryUpstream::new()
                .with_file(FILE, test_meta(BIG, "f", ""))
                .with_gate(gate.clone()),
        );
        let plan = ChunkPlan::new(
            BIG,
            ByteRange {
                start: 0,
                end: BIG - 1,
            },
        )
        .unwrap();
        let (on_finish, _) = summary_sink();
        let body = ChunkBody::new(
            source(upstream.clone(), 64),
            FILE,
            BIG,
            plan.slices().map(Segment::Slice).collect(),
            WindowLimits::with_max(8),
            on_finish,
        );
        let reader = tokio::spawn(body.collect());
        // Release chunks one at a time, as a slow core would; the eager reader keeps up, so
        // the window grows and the upstream sees more and more requests at once.
        for _ in 0..12 {
            tokio::time::timeout(Duration::from_secs(5), async {
                while upstream.chunks_in_flight() == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            gate.add_permits(1);
        }
        assert!(
            upstream.max_chunks_in_flight() >= 6,
            "read-ahead stayed at {}",
            upstream.max_chunks_in_flight()
        );
        assert!(upstream.max_chunks_in_flight() <= 8);
        gate.add_permits(100);
        let bytes = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .to_bytes();
        assert_eq!(bytes.len() as u64, BIG);
        assert_eq!(upstream.chunk_calls(), 40);
    }

    #[tokio::test]
    async fn global_fetch_cap_bounds_upstream_concurrency() {
        const BIG: u64 = 20 * CHUNK_SIZE;
        let upstream = Arc::new(MemoryUpstream::new().with_file(FILE, test_meta(BIG, "f", "")));
        let source = source(upstream.clone(), 3);
        let plan = ChunkPlan::new(
            BIG,
            ByteRange {
                start: 0,
                end: BIG - 1,
            },
        )
        .unwrap();
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (on_finish, _) = summary_sink();
            let body = ChunkBody::new(
                source.clone(),
                FILE,
                BIG,
                plan.slices().map(Segment::Slice).collect(),
                WindowLimits::with_max(16),
                on_finish,
            );
            readers.push(tokio::spawn(collect(body)));
        }
        for reader in readers {
            assert_eq!(reader.await.unwrap().len() as u64, BIG);
        }
        assert!(upstream.max_chunks_in_flight() <= 3);
        assert_eq!(
            upstream.chunk_calls(),
            20,
            "four readers share one fetch per chunk"
        );
    }

    #[tokio::test]
    async fn failed_fetch_ends_the_stream_with_an_error() {
        let upstream = Arc::new(MemoryUpstream::new());
        let (on_finish, summary) = summary_sink();
        let body = ChunkBody::new(
            source(upstream, 8),
            FILE,
            SIZE,
            slices(0, 100),
            WindowLimits::default(),
            on_finish,
        );
        let result = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
        assert!(result.unwrap().is_err());
        assert!(summary.lock().unwrap().clone().unwrap().error.is_some());
    }
}
