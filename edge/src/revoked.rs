//! [`RevokedFiles`]: the files this edge refuses because one of its cores revoked them —
//! the union of every core's revocation list, kept per core.
//!
//! Cores are independent: a revocation is recorded by the core it was made on, and the core
//! a file is served by (its rendezvous winner) may never hear of it. So the edge holds what
//! each core told it — the whole list when a connection starts, then each revocation and
//! unrevocation — and refuses a file any core revoked, whichever core serves it, until the
//! core that revoked it unrevokes it. A core's list is replaced (not merged) when the last
//! part of a new list arrives, so what it unrevoked while this edge was away is freed; it
//! is kept while the core is down, so its revocations hold through its absence. Each core's
//! list is bounded (`TGCDN_REVOKED_MAX`, refusals counted). Pure data, no I/O and no clock:
//! [`crate::push`] applies the core's pushes to it and [`crate::fetch::MetaSource`] checks it
//! before anything else on every request.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use tgcdn_shared::FileRef;

/// The default of `TGCDN_REVOKED_MAX`: revoked files kept per core (about 2 MiB each at
/// most, twice that while a new list replaces the old).
pub const DEFAULT_REVOKED_MAX: usize = 100_000;

/// See the module docs. Cores are named by their index in the edge's core list.
pub struct RevokedFiles {
    cores: RwLock<HashMap<usize, CoreList>>,
    /// Whether any list holds a file: the lock-free answer while nothing is revoked.
    any: AtomicBool,
    max_per_core: usize,
}

/// What one core said.
#[derive(Default)]
struct CoreList {
    /// Its list as of its last complete list and the changes since.
    held: HashSet<FileRef>,
    /// The parts of a list still arriving (it replaces `held` when the last part is in).
    incoming: Option<HashSet<FileRef>>,
}

impl CoreList {
    fn contains(&self, file: &FileRef) -> bool {
        self.held.contains(file) || self.incoming.as_ref().is_some_and(|l| l.contains(file))
    }

    fn is_empty(&self) -> bool {
        self.held.is_empty() && self.incoming.as_ref().is_none_or(HashSet::is_empty)
    }
}

/// What applying a push changed, for the caller to act on and count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files refused from now on that were served before: drop what is cached of them.
    pub newly_revoked: Vec<FileRef>,
    /// Files no core revokes any more: forget the "revoked" answer cached for them.
    pub freed: Vec<FileRef>,
    /// Files not kept because the core's list was full.
    pub refused: usize,
}

/// Inserts `file` into `set` unless it is full; whether it is in the set afterwards.
fn insert_bounded(set: &mut HashSet<FileRef>, file: FileRef, max: usize) -> bool {
    set.len() < max && set.insert(file) || set.contains(&file)
}

impl RevokedFiles {
    pub fn new(max_per_core: usize) -> Self {
        RevokedFiles {
            cores: RwLock::new(HashMap::new()),
            any: AtomicBool::new(false),
            max_per_core,
        }
    }

    /// Whether some core revoked `file`.
    pub fn contains(&self, file: FileRef) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let cores = self.cores.read().unwrap_or_else(PoisonError::into_inner);
        cores.values().any(|list| list.contains(&file))
    }

    /// Revoked files held, over every core's list (a file two cores revoked counts twice).
    pub fn len(&self) -> usize {
        let cores = self.cores.read().unwrap_or_else(PoisonError::into_inner);
        cores.values().map(|list| list.held.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// Core `core` revoked `file`.
    pub fn revoke(&self, core: usize, file: FileRef) -> Applied {
        self.change(|cores, max| {
            let before = cores.values().any(|list| list.contains(&file));
            let list = cores.entry(core).or_default();
            let mut kept = insert_bounded(&mut list.held, file, max);
            if let Some(incoming) = list.incoming.as_mut() {
                kept &= insert_bounded(incoming, file, max);
            }
            Applied {
                newly_revoked: if before || !kept { vec![] } else { vec![file] },
                freed: Vec::new(),
                refused: usize::from(!kept),
            }
        })
    }

    /// Core `core` unrevoked `file` (what other cores revoked stays refused).
    pub fn unrevoke(&self, core: usize, file: FileRef) -> Applied {
        self.change(|cores, _| {
            if let Some(list) = cores.get_mut(&core) {
                list.held.remove(&file);
                if let Some(incoming) = list.incoming.as_mut() {
                    incoming.remove(&file);
                }
            }
            let still = cores.values().any(|list| list.contains(&file));
            Applied {
                freed: if still { vec![] } else { vec![file] },
                ..Applied::default()
            }
        })
    }

    /// A part of core `core`'s list; with `last`, its list is exactly the parts received
    /// since the previous last part.
    pub fn list_part(&self, core: usize, files: &[FileRef], last: bool) -> Applied {
        self.change(|cores, max| {
            let mut applied = Applied::default();
            for &file in files {
                if !cores.values().any(|list| list.contains(&file)) {
                    applied.newly_revoked.push(file);
                }
                let incoming = cores
                    .entry(core)
                    .or_default()
                    .incoming
                    .get_or_insert_with(HashSet::new);
                if !insert_bounded(incoming, file, max) {
                    applied.refused += 1;
                    applied.newly_revoked.retain(|kept| *kept != file);
                }
            }
            if last {
                let list = cores.entry(core).or_default();
                let complete = list.incoming.take().unwrap_or_default();
                let old = std::mem::replace(&mut list.held, complete);
                applied.freed = old
                    .into_iter()
                    .filter(|file| !cores.values().any(|list| list.contains(file)))
                    .collect();
            }
            applied
        })
    }

    fn change(
        &self,
        apply: impl FnOnce(&mut HashMap<usize, CoreList>, usize) -> Applied,
    ) -> Applied {
        let mut cores = self.cores.write().unwrap_or_else(PoisonError::into_inner);
        let applied = apply(&mut cores, self.max_per_core);
        let any = cores.values().any(|list| !list.is_empty());
        self.any.store(any, Ordering::Release);
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(msg_id: i32) -> FileRef {
        FileRef {
            chat_id: -100_777,
            msg_id,
        }
    }

    #[test]
    fn a_file_any_core_revoked_is_refused_until_that_core_unrevokes_it() {
        let revoked = RevokedFiles::new(10);
        assert!(!revoked.contains(file(1)));
        assert_eq!(revoked.revoke(1, file(1)).newly_revoked, vec![file(1)]);
        assert!(revoked.contains(file(1)));
        // Another core's word does not free it; the revoking core's does.
        assert!(revoked.unrevoke(0, file(1)).freed.is_empty());
        assert!(revoked.contains(file(1)));
        assert_eq!(revoked.unrevoke(1, file(1)).freed, vec![file(1)]);
        assert!(!revoked.contains(file(1)));
        assert!(revoked.is_empty());
    }

    #[test]
    fn two_cores_revoking_one_file_both_must_unrevoke_it() {
        let revoked = RevokedFiles::new(10);
        revoked.revoke(0, file(1));
        assert!(revoked.revoke(1, file(1)).newly_revoked.is_empty());
        assert!(revoked.unrevoke(0, file(1)).freed.is_empty());
        assert!(revoked.contains(file(1)));
        assert_eq!(revoked.unrevoke(1, file(1)).freed, vec![file(1)]);
    }

    #[test]
    fn a_new_list_replaces_the_cores_old_one_once_complete() {
        let revoked = RevokedFiles::new(10);
        revoked.list_part(0, &[file(1), file(2)], true);
        revoked.revoke(1, file(2));
        assert_eq!(revoked.len(), 3);
        // Reconnected: file 1 was unrevoked meanwhile, file 3 revoked.
        let first = revoked.list_part(0, &[file(2)], false);
        assert!(first.newly_revoked.is_empty() && first.freed.is_empty());
        // Until the list is complete, the old one still holds.
        assert!(revoked.contains(file(1)));
        let last = revoked.list_part(0, &[file(3)], true);
        assert_eq!(last.newly_revoked, vec![file(3)]);
        assert_eq!(last.freed, vec![file(1)]);
        assert!(!revoked.contains(file(1)));
        assert!(revoked.contains(file(2)) && revoked.contains(file(3)));
        // An empty list frees what only this core held.
        let empty = revoked.list_part(0, &[], true);
        assert_eq!(empty.freed.len(), 1);
        assert!(revoked.contains(file(2)), "core 1 still revokes it");
        assert!(!revoked.contains(file(3)));
    }

    #[test]
    fn changes_during_a_list_survive_its_completion() {
        let revoked = RevokedFiles::new(10);
        revoked.list_part(0, &[file(1)], false);
        revoked.revoke(0, file(2));
        revoked.unrevoke(0, file(1));
        revoked.list_part(0, &[], true);
        assert!(!revoked.contains(file(1)));
        assert!(revoked.contains(file(2)));
    }

    #[test]
    fn each_cores_list_is_bounded_and_refusals_are_counted() {
        let revoked = RevokedFiles::new(2);
        let applied = revoked.list_part(0, &[file(1), file(2), file(3)], true);
        assert_eq!(applied.refused, 1);
        assert_eq!(applied.newly_revoked, vec![file(1), file(2)]);
        assert_eq!(revoked.revoke(0, file(4)).refused, 1);
        assert!(!revoked.contains(file(4)));
        // A file already held is not refused again; other cores have their own room.
        assert_eq!(revoked.revoke(0, file(1)).refused, 0);
        assert_eq!(revoked.revoke(1, file(4)).refused, 0);
        assert!(revoked.contains(file(4)));
        assert_eq!(revoked.len(), 3);
    }
}
