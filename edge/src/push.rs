//! What the edge does with a message the core pushes unasked ([`Push`]): a revocation drops
//! the file's metadata and cached chunks at once and leaves "revoked" in the negative cache,
//! so the next request for any link to it is 410 without a byte or a call to the core.
//!
//! Called by the QUIC upstream's push reader (`main` wires it) and by the core's one-box
//! mode, which hears revocations in-process. No I/O here.

use tgcdn_shared::wire::Push;

use crate::http::AppState;

/// Applies `push` to the shared state.
pub async fn apply(state: &AppState, push: &Push) {
    state.metrics.pushes_received.inc();
    match push {
        Push::Revoked(file) => {
            state.metas.revoked(*file).await;
            let chunks = state.chunks.cache().drop_file(*file);
            tracing::info!(%file, chunks, "file revoked by the core");
        }
        Push::ForgetAll => {
            state.metas.forget_all();
            tracing::info!("forgot every cached file meta on the core's request");
        }
    }
}
