//! The edge binary's stop signals: SIGINT (Ctrl-C) and SIGTERM, caught from the moment
//! [`StopSignals::install`] returns.
//!
//! `main` installs them before it logs `serving`: a supervisor or test that reads that line
//! may signal at once, and a signal that finds no handler yet kills the process by its
//! default action, skipping the drain of responses in flight. (The same fix as the core's
//! `tgcdn_core::signals`, which the edge cannot depend on.)

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM, both caught.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Registers both handlers now (inside a tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Until either signal arrives.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
