//! Connection and client limits: the per-IP concurrent-request limit and the idle-connection
//! watchdog.
//!
//! Used by [`super::serve`] and [`super::handle`]. Both are counters, never sleeps in the
//! request path; a permit is released by `Drop` on every path (a response body dropped
//! mid-stream included), so counts cannot drift.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Counts concurrent requests per client address.
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

    /// A permit if `ip` has fewer than the limit in flight.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpPermit> {
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

    /// Requests in flight for `ip`.
    pub fn active(&self, ip: IpAddr) -> usize {
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
        if let Some(count) = active.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                active.remove(&self.ip);
            }
        }
    }
}

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
        if buf.filled().len() > before {
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
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
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
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
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
        // Writes to `empty()` succeed and count as activity.
        tokio::io::AsyncWriteExt::write_all(&mut io, b"ping")
            .await
            .unwrap();
        let started = Instant::now();
        watch.expired(timeout).await;
        assert!(started.elapsed() >= Duration::from_secs(4));
    }
}
