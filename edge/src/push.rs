//! What the edge does with a message a core pushes unasked ([`Push`]): a revocation drops
//! the file's metadata and cached chunks at once and enters the core's list in
//! [`crate::revoked`], so the next request for any link to it is 410 without a byte or a
//! call to a core — whichever core serves the file; the list a core sends on connecting
//! replaces what the edge held of that core's, and an unrevocation frees the file unless
//! another core revoked it too.
//!
//! Called by the QUIC upstream's push reader (`main` wires it, naming each core by its index
//! in the core list) and by the core's one-box mode, which hears revocations in-process.
//! No I/O here.

use tgcdn_shared::wire::Push;

use crate::http::AppState;
use crate::revoked::Applied;

/// Applies `push` from core `core` (its index in the edge's core list) to the shared state.
pub async fn apply(state: &AppState, core: usize, push: &Push) {
    state.metrics.pushes_received.inc();
    let revoked = state.metas.revoked_files();
    let applied = match push {
        Push::Revoked(file) => {
            let applied = revoked.revoke(core, *file);
            // Also in the negative cache, should the list have been full.
            state.metas.revoked(*file).await;
            let chunks = state.chunks.cache().drop_file(*file);
            tracing::info!(%file, core, chunks, "file revoked by a core");
            applied
        }
        Push::Unrevoked(file) => {
            tracing::info!(%file, core, "file unrevoked by a core");
            revoked.unrevoke(core, *file)
        }
        Push::RevokedList { files, last } => {
            let applied = revoked.list_part(core, files, *last);
            if *last {
                tracing::info!(core, held = revoked.len(), "revocation list received");
            }
            applied
        }
        Push::ForgetAll => {
            state.metas.forget_all();
            tracing::info!(core, "forgot every cached file meta on the core's request");
            Applied::default()
        }
    };
    for file in &applied.newly_revoked {
        state.metas.revoked(*file).await;
        state.chunks.cache().drop_file(*file);
    }
    for file in &applied.freed {
        state.metas.freed(*file).await;
    }
    if applied.refused > 0 {
        tracing::warn!(
            core,
            refused = applied.refused,
            "revocation list full (TGCDN_REVOKED_MAX): files not kept"
        );
        state
            .metrics
            .revocations_refused
            .inc_by(applied.refused as u64);
    }
    state
        .metrics
        .revoked_files
        .set(i64::try_from(revoked.len()).unwrap_or(i64::MAX));
}
