//! The stop signals of the processes that run a core (`tgcdn-core run`, the sandbox):
//! SIGINT (Ctrl-C) and SIGTERM, caught from the moment [`StopSignals::install`] returns.
//!
//! Install them before printing the lines a supervisor, an operator or a test waits for:
//! whoever reads those may signal at once, and a signal that finds no handler kills the
//! process without its ordered shutdown (the sandbox's CLI test caught that race).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM, both caught.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
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
