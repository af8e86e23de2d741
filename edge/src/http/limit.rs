//! Connection and client limits: the per-client concurrent-request limit, the caps on open
//! connections (in total and per client), and the idle-connection watchdog.
//!
//! Used by [`super::serve`] and [`super::handle`]. All are counters, never sleeps in the
//! request path; a permit is released by `Drop` on every path (a response body dropped
//! mid-stream included), so counts cannot drift. A client is an IPv4 address or an IPv6
//! /64 ([`client_key`]): one host usually owns a whole /64, so counting its addresses one by
//! one would let it multiply every limit by 2^64.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use crate::client::client_key;

/// Counts concurrent holders (requests or connections) per client ([`client_key`]).
#[derive(Debug)]
pub struct IpLimiter {
    max: usize,
    active: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl IpLimiter {
    pub fn new(max: usize) -> Self {
        IpLimiter {
            max: max.max(1),
            active: Arc::default(),
        }
    }

    /// A permit if `ip`'s client has fewer than the limit in flight.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpPermit> {
        let ip = client_key(ip);
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let count = active.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            ip,
            active: self.active.clone(),
        })
    }

    /// Holders in flight for `ip`'s client.
    pub fn active(&self, ip: IpAddr) -> usize {
        let ip = client_key(ip);
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.get(&ip).copied().unwrap_or(0)
    }
}

/// One request's share of its address's limit; released on drop.
#[derive(Debug)]
pub struct IpPermit {
    ip: IpAddr,
    active: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        // One hash of the address per release (`get_mut` then `remove` hashed it twice):
        // every request pays this.
        if let Entry::Occupied(mut entry) = active.entry(self.ip) {
            let count = entry.get_mut();
            *count = count.saturating_sub(1);
            if *count == 0 {
                entry.remove();
            }
        }
    }
}

/// Caps open connections in total and per client. Checked in the accept loop before a
/// connection gets a task, so a flood of connections costs an accept and a close each.
#[derive(Debug)]
pub struct ConnectionLimiter {
    total: Arc<Semaphore>,
    per_client: Option<IpLimiter>,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionRefused {
    #[error("the edge has its maximum of open connections")]
    Total,
    #[error("this client has its maximum of open connections")]
    PerClient,
}

/// One open connection's share of the caps; released on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    _total: OwnedSemaphorePermit,
    _client: Option<IpPermit>,
}

impl ConnectionLimiter {
    /// `per_client: None` counts no client: behind a proxy every connection comes from it.
    pub fn new(total: usize, per_client: Option<usize>) -> Self {
        ConnectionLimiter {
            total: Arc::new(Semaphore::new(total.clamp(1, Semaphore::MAX_PERMITS))),
            per_client: per_client.map(IpLimiter::new),
        }
    }

    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnectionPermit, ConnectionRefused> {
        let client = match &self.per_client {
            Some(limiter) => Some(
                limiter
                    .try_acquire(ip)
                    .ok_or(ConnectionRefused::PerClient)?,
            ),
            None => None,
        };
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| ConnectionRefused::Total)?;
        Ok(ConnectionPermit {
            _total: total,
            _client: client,
        })
    }
}

/// Single reads and writes smaller than this are not activity: HTTP/2 PINGs and their
/// acknowledgements (17 bytes, 39 inside TLS), WINDOW_UPDATEs and TCP-level trickles must not
/// keep a connection that moves no request or response bytes open forever.
pub const IDLE_NOISE_BYTES: usize = 64;

/// An I/O object that notes when bytes last moved, and the watch that reads it.
pub struct IdleTracker<T> {
    inner: T,
    activity: Arc<Activity>,
}

/// Waits for a connection's I/O to go quiet.
pub struct IdleWatch {
    activity: Arc<Activity>,
}

struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

impl<T> IdleTracker<T> {
    pub fn wrap(inner: T) -> (Self, IdleWatch) {
        let activity = Arc::new(Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        (
            IdleTracker {
                inner,
                activity: activity.clone(),
            },
            IdleWatch { activity },
        )
    }
}

impl IdleWatch {
    /// Completes once no bytes have moved for `timeout`.
    pub async fn expired(&self, timeout: Duration) {
        loop {
            let deadline = self.activity.last() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTracker<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() - before >= IDLE_NOISE_BYTES {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTracker<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n >= IDLE_NOISE_BYTES) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n >= IDLE_NOISE_BYTES) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_counts_and_releases() {
        let limiter = IpLimiter::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let a = limiter.try_acquire(ip).unwrap();
        let _b = limiter.try_acquire(ip).unwrap();
        assert!(limiter.try_acquire(ip).is_none());
        assert!(limiter.try_acquire(other).is_some());
        drop(a);
        assert_eq!(limiter.active(ip), 1);
        assert!(limiter.try_acquire(ip).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_watch_fires_only_after_quiet() {
        let (mut io, watch) = IdleTracker::wrap(tokio::io::empty());
        let timeout = Duration::from_secs(5);
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Writes to `empty()` succeed and count as activity, unless they are noise.
        tokio::io::AsyncWriteExt::write_all(&mut io, &[0; IDLE_NOISE_BYTES])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        tokio::io::AsyncWriteExt::write_all(&mut io, b"ping")
            .await
            .unwrap();
        let started = Instant::now();
        watch.expired(timeout).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
            "pings are not activity: {waited:?}"
        );
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_slash_64s() {
        let key = |text: &str| client_key(text.parse().unwrap()).to_string();
        assert_eq!(key("10.0.0.1"), "10.0.0.1");
        assert_eq!(key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::7"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:3::7"), "2001:db8:1:3::");
        // A host rotating through its /64 is still one client.
        let limiter = IpLimiter::new(1);
        let _held = limiter.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert!(
            limiter
                .try_acquire("2001:db8::2".parse().unwrap())
                .is_none()
        );
        assert!(
            limiter
                .try_acquire("2001:db8:0:1::2".parse().unwrap())
                .is_some()
        );
    }

    #[test]
    fn connection_caps_in_total_and_per_client() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let limiter = ConnectionLimiter::new(3, Some(2));
        let a1 = limiter.try_acquire(a).unwrap();
        let _a2 = limiter.try_acquire(a).unwrap();
        assert_eq!(
            limiter.try_acquire(a).unwrap_err(),
            ConnectionRefused::PerClient
        );
        let _b1 = limiter.try_acquire(b).unwrap();
        assert_eq!(
            limiter.try_acquire(c).unwrap_err(),
            ConnectionRefused::Total
        );
        drop(a1);
        assert!(limiter.try_acquire(c).is_ok());
        // A refusal by the total cap leaves the client's count as it was.
        let limiter = ConnectionLimiter::new(1, Some(5));
        let _held = limiter.try_acquire(a).unwrap();
        for _ in 0..10 {
            assert!(limiter.try_acquire(b).is_err());
        }
        assert_eq!(limiter.per_client.as_ref().unwrap().active(b), 0);
        let unlimited = ConnectionLimiter::new(10, None);
        let held: Vec<_> = (0..10).map(|_| unlimited.try_acquire(a).unwrap()).collect();
        assert_eq!(held.len(), 10);
    }
}
