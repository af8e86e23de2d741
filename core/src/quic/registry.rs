//! The core's view of its edge fleet: who said Hello, from which region and URL, when it
//! was last heard from and what load it reported.
//!
//! Written by the QUIC handler (on an accepted Hello and on every heartbeat, keyed by the
//! edge id the connection authenticated with — never by anything a later frame claims),
//! read by the admin command. Records live in sled's `edges` tree so the view survives a
//! restart; ages are computed from a `now` the caller passes in. [`EdgeRegistry::prune`]
//! forgets edges silent longer than the retention (`TGCDN_EDGE_RETENTION`), so a fleet that
//! churns through ids (autoscaled containers) does not grow the tree forever. No network
//! I/O here.

use tgcdn_shared::wire::{Heartbeat, Hello};

use crate::store::{EdgeRecord, Store, StoreError};

/// One edge as the admin command lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeView {
    pub id: String,
    pub region: String,
    pub public_url: String,
    /// Seconds since its last Hello or heartbeat (0 if the clock went backwards).
    pub last_heartbeat_age_secs: u64,
    /// Whether it was heard from within the staleness limit the caller chose.
    pub live: bool,
    pub load: Option<Heartbeat>,
}

/// Reads and writes edge records.
#[derive(Clone)]
pub struct EdgeRegistry {
    store: Store,
}

impl EdgeRegistry {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// An edge authenticated a new connection.
    pub fn record_hello(&self, hello: &Hello, now_unix: i64) -> Result<(), StoreError> {
        let previous_load = self.store.edge(&hello.edge_id)?.and_then(|r| r.load);
        let record = EdgeRecord {
            region: hello.region.clone(),
            public_url: hello.public_base_url.clone(),
            connected_unix: now_unix,
            last_seen_unix: now_unix,
            load: previous_load,
        };
        self.store.put_edge(&hello.edge_id, &record)
    }

    /// A heartbeat from an authenticated edge. An edge whose record vanished (a wiped
    /// database under a live connection) is recorded with empty region and URL until its
    /// next Hello rather than dropped.
    pub fn record_heartbeat(
        &self,
        edge_id: &str,
        heartbeat: Heartbeat,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        let mut record = self.store.edge(edge_id)?.unwrap_or_else(|| EdgeRecord {
            region: String::new(),
            public_url: String::new(),
            connected_unix: now_unix,
            last_seen_unix: now_unix,
            load: None,
        });
        record.last_seen_unix = now_unix;
        record.load = Some(heartbeat);
        self.store.put_edge(edge_id, &record)
    }

    /// Removes every edge last heard from more than `retention_secs` before `now_unix`;
    /// returns their ids. An edge still connected keeps heartbeating, so it is never pruned.
    pub fn prune(&self, now_unix: i64, retention_secs: u64) -> Result<Vec<String>, StoreError> {
        let retention = i64::try_from(retention_secs).unwrap_or(i64::MAX);
        let mut pruned = Vec::new();
        for (id, record) in self.store.edges()? {
            if now_unix.saturating_sub(record.last_seen_unix) > retention {
                self.store.remove_edge(&id)?;
                pruned.push(id);
            }
        }
        Ok(pruned)
    }

    /// Every known edge, ordered by id; `live` when heard from within `stale_after_secs`.
    pub fn list(&self, now_unix: i64, stale_after_secs: u64) -> Result<Vec<EdgeView>, StoreError> {
        Ok(self
            .store
            .edges()?
            .into_iter()
            .map(|(id, record)| {
                let age =
                    u64::try_from(now_unix.saturating_sub(record.last_seen_unix)).unwrap_or(0);
                EdgeView {
                    id,
                    region: record.region,
                    public_url: record.public_url,
                    last_heartbeat_age_secs: age,
                    live: age <= stale_after_secs,
                    load: record.load,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(id: &str) -> Hello {
        Hello {
            protocol_version: tgcdn_shared::wire::PROTOCOL_VERSION,
            edge_id: id.into(),
            region: "fra".into(),
            public_base_url: "https://fra.example".into(),
            auth_proof: [0; 32],
        }
    }

    #[test]
    fn hello_then_heartbeats_give_ages_and_load() {
        let registry = EdgeRegistry::new(Store::temporary().unwrap());
        registry.record_hello(&hello("b"), 100).unwrap();
        registry.record_hello(&hello("a"), 100).unwrap();
        let load = Heartbeat {
            in_flight: 3,
            ..Heartbeat::default()
        };
        registry.record_heartbeat("a", load, 130).unwrap();
        let edges = registry.list(200, 60).unwrap();
        assert_eq!(edges.len(), 2);
        assert_eq!(edges[0].id, "a");
        assert_eq!(edges[0].last_heartbeat_age_secs, 70);
        assert!(!edges[0].live);
        assert_eq!(edges[0].load, Some(load));
        assert_eq!(edges[1].load, None);
        assert_eq!(edges[1].region, "fra");
        // A reconnect keeps the last load until the next heartbeat.
        registry.record_hello(&hello("a"), 190).unwrap();
        let edges = registry.list(200, 60).unwrap();
        assert!(edges[0].live);
        assert_eq!(edges[0].load, Some(load));
        // Clock going backwards is age 0, not a panic.
        assert_eq!(registry.list(0, 60).unwrap()[0].last_heartbeat_age_secs, 0);
    }

    #[test]
    fn edges_silent_past_the_retention_are_pruned_and_no_others() {
        let registry = EdgeRegistry::new(Store::temporary().unwrap());
        registry.record_hello(&hello("gone"), 1_000).unwrap();
        registry.record_hello(&hello("quiet"), 1_000).unwrap();
        registry.record_hello(&hello("beating"), 1_000).unwrap();
        registry
            .record_heartbeat("quiet", Heartbeat::default(), 1_500)
            .unwrap();
        registry
            .record_heartbeat("beating", Heartbeat::default(), 4_000)
            .unwrap();
        // Exactly at the retention an edge stays; one second past it goes.
        assert_eq!(registry.prune(4_000, 3_000).unwrap(), Vec::<String>::new());
        assert_eq!(
            registry.prune(4_001, 3_000).unwrap(),
            vec!["gone".to_owned()]
        );
        let left: Vec<String> = registry
            .list(4_001, 60)
            .unwrap()
            .into_iter()
            .map(|edge| edge.id)
            .collect();
        assert_eq!(left, vec!["beating".to_owned(), "quiet".to_owned()]);
        assert_eq!(
            registry.prune(7_000, 3_000).unwrap(),
            vec!["quiet".to_owned()]
        );
        // A clock that went backwards prunes nothing.
        assert_eq!(registry.prune(0, 3_000).unwrap(), Vec::<String>::new());
    }
}
