//! The end-to-end test binary: emulator → real `tgcdn-core` → QUIC → real `tgcdn-edge` →
//! HTTP, driven by real clients (curl, aria2c, ffmpeg) and by an exact HTTP/1.1 client.
//!
//! One binary, modules by topic. Most modules share one stack started on first use
//! (`common::stack`); `restart` and `outage` start their own because they kill the core,
//! `soak` because its faults would disturb the others. External tools
//! missing locally make their tests print a note and pass; under CI (`CI` set) they fail,
//! since `.ci/run` installs them.

mod common;

mod addon;
mod cluster;
mod conformance;
mod curl;
mod download_tools;
mod frontend;
mod hostile;
mod media;
mod outage;
mod restart;
mod revocation;
mod soak;
