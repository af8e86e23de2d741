//! Which core serves a file when an edge knows several: rendezvous (highest random weight)
//! hashing of the file reference against each core's name.
//!
//! Every edge computes the same ranking from the same core list, with no coordination, so
//! each file's chunks are fetched (and cached in the core's second tier) by one core. A core
//! that leaves hands only its own files to the next core in their rankings; a core that
//! arrives takes about `1/n` of the files, from every other core alike, and nothing else
//! moves. Pure: the caller says which cores are usable right now. The edge's
//! `upstream::pool` ranks the cores it was given (`TGCDN_CORES`) and fails over along the
//! ranking; docs/SCALING.md says what that means for an operator.
//!
//! The score is the first 8 bytes of SHA-256 over the core's name and the file reference, so
//! it is stable across processes, platforms and releases (a `std` hasher is neither).

use sha2::{Digest, Sha256};

use crate::FileRef;

/// The weight of `core` for `file`; the highest weight serves it.
pub fn score(core: &str, file: FileRef) -> u64 {
    let digest = Sha256::new()
        .chain_update((core.len() as u64).to_le_bytes())
        .chain_update(core.as_bytes())
        .chain_update(file.chat_id.to_le_bytes())
        .chain_update(file.msg_id.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Indices of `cores` in the order they should be tried for `file`, best first. Ties (two
/// cores under one name) keep the list order, so every edge agrees.
pub fn ranking<S: AsRef<str>>(cores: &[S], file: FileRef) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = cores
        .iter()
        .enumerate()
        .map(|(index, core)| (score(core.as_ref(), file), index))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, index)| index).collect()
}

/// The first core in `file`'s ranking for which `usable` holds, if any.
pub fn pick<S: AsRef<str>>(
    cores: &[S],
    file: FileRef,
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    ranking(cores, file)
        .into_iter()
        .find(|&index| usable(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(msg_id: i32) -> FileRef {
        FileRef {
            chat_id: -1_001_234_567_890,
            msg_id,
        }
    }

    fn owner<'a>(cores: &[&'a str], file: FileRef) -> &'a str {
        cores[pick(cores, file, |_| true).unwrap()]
    }

    #[test]
    fn every_edge_agrees_whatever_the_order_of_its_list() {
        let one = ["core-a", "core-b", "core-c"];
        let other = ["core-c", "core-a", "core-b"];
        for msg_id in 0..500 {
            assert_eq!(owner(&one, file(msg_id)), owner(&other, file(msg_id)));
        }
    }

    #[test]
    fn files_spread_evenly() {
        let cores = ["core-a", "core-b", "core-c"];
        let mut counts = [0u32; 3];
        for msg_id in 0..30_000 {
            counts[pick(&cores, file(msg_id), |_| true).unwrap()] += 1;
        }
        for count in counts {
            assert!((9_500..=10_500).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn a_lost_core_hands_over_only_its_own_files() {
        let all = ["core-a", "core-b", "core-c"];
        let without_b = ["core-a", "core-c"];
        let mut moved = 0;
        for msg_id in 0..3_000 {
            let before = owner(&all, file(msg_id));
            let after = owner(&without_b, file(msg_id));
            if before == "core-b" {
                moved += 1;
                // Its next in line, which an edge's failover also picks.
                let down = pick(&all, file(msg_id), |index| all[index] != "core-b").unwrap();
                assert_eq!(all[down], after);
            } else {
                assert_eq!(before, after, "file {msg_id} moved without cause");
            }
        }
        assert!((800..=1_200).contains(&moved), "{moved}");
    }

    #[test]
    fn an_arriving_core_takes_a_fair_share_and_nothing_else_moves() {
        let three = ["core-a", "core-b", "core-c"];
        let four = ["core-a", "core-b", "core-c", "core-d"];
        let mut taken = 0;
        for msg_id in 0..4_000 {
            let after = owner(&four, file(msg_id));
            if after == "core-d" {
                taken += 1;
            } else {
                assert_eq!(owner(&three, file(msg_id)), after);
            }
        }
        assert!((850..=1_150).contains(&taken), "{taken}");
    }

    #[test]
    fn failover_walks_the_ranking_and_ends_when_nothing_is_usable() {
        let cores = ["core-a", "core-b", "core-c"];
        let order = ranking(&cores, file(7));
        assert_eq!(order.len(), 3);
        assert_eq!(pick(&cores, file(7), |i| i != order[0]), Some(order[1]));
        assert_eq!(pick(&cores, file(7), |i| i == order[2]), Some(order[2]));
        assert_eq!(pick(&cores, file(7), |_| false), None);
        assert_eq!(pick::<&str>(&[], file(7), |_| true), None);
    }

    #[test]
    fn scores_are_stable_across_builds() {
        // Pinned: every edge of a fleet, whatever its version, must rank alike.
        assert_eq!(score("core-a", file(1)), score("core-a", file(1)));
        assert_ne!(score("core-a", file(1)), score("core-b", file(1)));
        assert_ne!(score("core-a", file(1)), score("core-a", file(2)));
        assert_eq!(score("core-a", file(1)), PINNED);
    }

    /// `score("core-a", file(1))`, also computed outside Rust (Python's hashlib over the
    /// same bytes); a change here reshuffles every fleet.
    const PINNED: u64 = 8_305_108_076_168_435_800;
}
