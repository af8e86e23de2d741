//! Which user's message the front-end handles next: pure bookkeeping, no I/O.
//!
//! Messages of different users are handled concurrently, at most `max_running` at once;
//! one user's messages are handled one at a time and in order (a reply never overtakes the
//! answer to an earlier message of the same chat). Users waiting for a slot start in the
//! order their first pending message arrived, and a user whose message just finished goes
//! to the back, so one user sending 40 files takes one slot, not all of them.
//!
//! Waiting messages are bounded: [`Dispatch::has_room`] turns false at `max_waiting`, and
//! the update loop then stops reading the feed until a message finishes — back-pressure
//! onto Telegram's update queue instead of memory. [`Dispatch::idle`] tells the loop when
//! every message it took has been answered, the moment the update state may be committed.

use std::collections::{HashMap, HashSet, VecDeque};

/// The per-user queues of the front-end; `J` is whatever the loop needs to start a job.
#[derive(Debug)]
pub struct Dispatch<J> {
    max_running: usize,
    max_waiting: usize,
    running: HashSet<i64>,
    /// Users with a waiting message and no running one, in the order they start.
    ready: VecDeque<i64>,
    waiting: HashMap<i64, VecDeque<J>>,
    waiting_count: usize,
}

impl<J> Dispatch<J> {
    /// At least one message runs and one waits, whatever the settings say.
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        Self {
            max_running: max_running.max(1),
            max_waiting: max_waiting.max(1),
            running: HashSet::new(),
            ready: VecDeque::new(),
            waiting: HashMap::new(),
            waiting_count: 0,
        }
    }

    /// Whether the loop may take another message from the feed.
    pub fn has_room(&self) -> bool {
        self.waiting_count < self.max_waiting
    }

    /// Every message taken has finished.
    pub fn idle(&self) -> bool {
        self.running.is_empty() && self.waiting_count == 0
    }

    /// Messages running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Queues `job` of `user`; [`Self::start_next`] says when it starts.
    pub fn push(&mut self, user: i64, job: J) {
        let queue = self.waiting.entry(user).or_default();
        queue.push_back(job);
        self.waiting_count += 1;
        if queue.len() == 1 && !self.running.contains(&user) {
            self.ready.push_back(user);
        }
    }

    /// The next job to start now, if a slot is free and someone waits for it.
    pub fn start_next(&mut self) -> Option<(i64, J)> {
        if self.running.len() >= self.max_running {
            return None;
        }
        let user = self.ready.pop_front()?;
        let queue = self.waiting.get_mut(&user)?;
        let job = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&user);
        }
        self.waiting_count -= 1;
        self.running.insert(user);
        Some((user, job))
    }

    /// `user`'s running job finished; their next message (if any) queues behind the others.
    pub fn finished(&mut self, user: i64) {
        if self.running.remove(&user) && self.waiting.contains_key(&user) {
            self.ready.push_back(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(dispatch: &mut Dispatch<u32>) -> Vec<(i64, u32)> {
        std::iter::from_fn(|| dispatch.start_next()).collect()
    }

    #[test]
    fn different_users_run_together_up_to_the_limit() {
        let mut dispatch = Dispatch::new(2, 10);
        dispatch.push(1, 10);
        dispatch.push(2, 20);
        dispatch.push(3, 30);
        assert_eq!(drain(&mut dispatch), vec![(1, 10), (2, 20)]);
        assert_eq!(dispatch.running(), 2);
        dispatch.finished(1);
        assert_eq!(drain(&mut dispatch), vec![(3, 30)]);
    }

    #[test]
    fn one_users_messages_run_one_at_a_time_in_order() {
        let mut dispatch = Dispatch::new(4, 10);
        dispatch.push(1, 1);
        dispatch.push(1, 2);
        dispatch.push(1, 3);
        assert_eq!(drain(&mut dispatch), vec![(1, 1)]);
        dispatch.finished(1);
        assert_eq!(drain(&mut dispatch), vec![(1, 2)]);
        dispatch.finished(1);
        assert_eq!(drain(&mut dispatch), vec![(1, 3)]);
        dispatch.finished(1);
        assert!(dispatch.idle());
    }

    #[test]
    fn a_flooding_user_does_not_delay_a_newcomer() {
        let mut dispatch = Dispatch::new(1, 100);
        for job in 0..40 {
            dispatch.push(1, job);
        }
        dispatch.push(2, 99);
        assert_eq!(drain(&mut dispatch), vec![(1, 0)]);
        dispatch.finished(1);
        // The newcomer was waiting before user 1's next message became ready.
        assert_eq!(drain(&mut dispatch), vec![(2, 99)]);
        dispatch.finished(2);
        assert_eq!(drain(&mut dispatch), vec![(1, 1)]);
    }

    #[test]
    fn waiting_messages_are_bounded() {
        let mut dispatch = Dispatch::new(1, 2);
        assert!(dispatch.has_room());
        dispatch.push(1, 1);
        dispatch.push(2, 2);
        assert!(!dispatch.has_room());
        assert_eq!(drain(&mut dispatch), vec![(1, 1)]);
        assert!(dispatch.has_room(), "a started job no longer waits");
        assert!(!dispatch.idle());
    }

    #[test]
    fn idle_only_when_nothing_runs_or_waits() {
        let mut dispatch = Dispatch::new(1, 4);
        assert!(dispatch.idle());
        dispatch.push(5, 1);
        assert!(!dispatch.idle());
        drain(&mut dispatch);
        assert!(!dispatch.idle());
        dispatch.finished(5);
        assert!(dispatch.idle());
        // Finishing a user that is not running changes nothing.
        dispatch.finished(5);
        assert!(dispatch.idle());
        assert_eq!(dispatch.start_next(), None);
    }

    #[test]
    fn zero_limits_still_make_progress() {
        let mut dispatch = Dispatch::new(0, 0);
        assert!(dispatch.has_room());
        dispatch.push(1, 1);
        assert_eq!(drain(&mut dispatch), vec![(1, 1)]);
    }
}
