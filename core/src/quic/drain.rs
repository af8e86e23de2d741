//! Graceful shutdown bookkeeping for the QUIC server: a "draining" flag the accept loops
//! watch, and a count of request streams still being answered.
//!
//! Owned by [`super::QuicServer`]; each stream task holds a [`StreamGuard`] until its reply
//! has been acknowledged by the edge (or given up on), so [`Drain::wait_idle`] returning
//! means no chunk is cut by closing the endpoint. No I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// Shared between the server, its accept loops and its stream tasks.
#[derive(Debug)]
pub struct Drain {
    draining: watch::Sender<bool>,
    streams: AtomicUsize,
    idle: Notify,
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::new(Drain {
            draining: watch::Sender::new(false),
            streams: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// Stop taking new connections and streams from now on.
    pub fn start(&self) {
        self.draining.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Completes once draining has started.
    pub async fn started(&self) {
        let mut receiver = self.draining.subscribe();
        // An error means the sender is gone; the server is gone too, so stop as well.
        let _ = receiver.wait_for(|draining| *draining).await;
    }

    /// Counts one stream being answered until the guard drops.
    pub fn stream(self: &Arc<Self>) -> StreamGuard {
        self.streams.fetch_add(1, Ordering::AcqRel);
        StreamGuard(Arc::clone(self))
    }

    pub fn streams_in_flight(&self) -> usize {
        self.streams.load(Ordering::Acquire)
    }

    /// Completes when no stream is being answered.
    pub async fn wait_idle(&self) {
        loop {
            // Registered before the check, so a guard dropping in between still wakes us.
            let notified = self.idle.notified();
            if self.streams_in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One stream in progress.
#[derive(Debug)]
pub struct StreamGuard(Arc<Drain>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_idle_returns_once_the_last_stream_ends() {
        let drain = Drain::new();
        let first = drain.stream();
        let second = drain.stream();
        let waiter = {
            let drain = Arc::clone(&drain);
            tokio::spawn(async move { drain.wait_idle().await })
        };
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one stream is still running");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("idle after the last stream")
            .expect("task");
    }

    #[tokio::test]
    async fn started_completes_after_start() {
        let drain = Drain::new();
        drain.start();
        tokio::time::timeout(Duration::from_secs(1), drain.started())
            .await
            .expect("draining seen");
    }
}
