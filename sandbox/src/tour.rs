//! The two-region walk the sandbox makes once it runs: the bot's film link is fetched whole
//! from the first region's edge (the core downloads it from Telegram), then twice from the
//! second region's edge under the same token — the first time its cache misses and it
//! fetches the chunks from the core over QUIC, the second time it serves every chunk from
//! its own cache. What each step returned and what the second edge's cache counted is kept
//! in a [`Tour`]: the banner prints it, `--smoke` judges it.
//!
//! Called by [`crate::Sandbox::start`] after the demo upload. Only HTTP ([`crate::client`])
//! and the second edge's cache counters; decides nothing about success itself.

use std::net::SocketAddr;

use http::StatusCode;

use crate::client::get;
use crate::error::SandboxError;
use crate::remote::{CacheLookups, RemoteEdge};

/// One full GET of the film.
#[derive(Debug, Clone)]
pub struct Visit {
    pub url: String,
    pub status: StatusCode,
    pub len: u64,
    pub sha256: String,
    /// The second edge's cache lookups during this request (zero for the first edge).
    pub lookups: CacheLookups,
}

/// The walk: the first region once, the second region twice.
#[derive(Debug, Clone)]
pub struct Tour {
    pub first_region: Visit,
    pub second_region_cold: Visit,
    pub second_region_warm: Visit,
}

/// Walks the film's download `link` (made for `first_base`, served at `first_addr`) through
/// both regions.
pub async fn walk(
    link: &str,
    first_base: &str,
    first_addr: SocketAddr,
    remote: &RemoteEdge,
) -> Result<Tour, SandboxError> {
    let second_link = rebase(link, first_base, remote.public_base()).ok_or_else(|| {
        SandboxError::RemoteEdge(format!("the link {link} is not on {first_base}"))
    })?;
    let first_region = visit(first_addr, link, None).await?;
    let second_region_cold = visit(remote.addr(), &second_link, Some(remote)).await?;
    let second_region_warm = visit(remote.addr(), &second_link, Some(remote)).await?;
    Ok(Tour {
        first_region,
        second_region_cold,
        second_region_warm,
    })
}

async fn visit(
    addr: SocketAddr,
    url: &str,
    counted: Option<&RemoteEdge>,
) -> Result<Visit, SandboxError> {
    let before = counted.map(RemoteEdge::cache_lookups).unwrap_or_default();
    let fetched = get(addr, url, None).await?;
    let after = counted.map(RemoteEdge::cache_lookups).unwrap_or_default();
    Ok(Visit {
        url: url.to_owned(),
        status: fetched.status,
        len: fetched.len,
        sha256: fetched.sha256,
        lookups: after.since(before),
    })
}

/// The same link on another edge: a link is its token and name, valid on every edge of the
/// cluster, so only the base changes.
pub fn rebase(link: &str, from_base: &str, to_base: &str) -> Option<String> {
    let path = link.strip_prefix(from_base.trim_end_matches('/'))?;
    path.starts_with('/')
        .then(|| format!("{}{path}", to_base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::rebase;

    #[test]
    fn a_link_moves_to_another_edge_by_its_base_alone() {
        assert_eq!(
            rebase(
                "http://127.0.0.1:8080/dl/AbC/film.mp4",
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8081/"
            )
            .as_deref(),
            Some("http://127.0.0.1:8081/dl/AbC/film.mp4")
        );
        assert_eq!(
            rebase("http://other/dl/x", "http://127.0.0.1:8080", "http://b"),
            None
        );
        // A base that is a prefix of another authority is not the link's base.
        assert_eq!(
            rebase(
                "http://127.0.0.1:80801/dl/x",
                "http://127.0.0.1:8080",
                "http://b"
            ),
            None
        );
    }
}
