//! The retry policy walked event by event: every retry class, every selection error, rounds,
//! attempts, deadlines and the pinned refresh. No I/O, a fixed `now`.

use super::*;

const POLL: Duration = Duration::from_millis(2);

fn policy(max_attempts: u32, max_rounds: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        max_rounds,
        saturated_poll: POLL,
        round_pause: Duration::ZERO,
    }
}

fn fresh(bots: usize, max_attempts: u32, max_rounds: u32) -> (Retry, Instant) {
    let now = Instant::now();
    let deadline = now + Duration::from_secs(10);
    (
        Retry::new(bots, policy(max_attempts, max_rounds), deadline),
        now,
    )
}

fn failed(bot: usize, error: &TelegramError) -> Event<'_> {
    Event::Failed { bot, error }
}

fn unavailable(action: &Action) -> bool {
    matches!(action, Action::GiveUp(GiveUp::Unavailable(_)))
}

#[test]
fn starts_with_any_bot() {
    let (mut retry, now) = fresh(3, 4, 2);
    assert_eq!(retry.start(now), Action::NextBot);
    assert_eq!(retry.excluded(), vec![false; 3]);
    assert_eq!(retry.attempts(), 0);
}

#[test]
fn a_bot_failure_moves_to_another_bot() {
    let cases = [
        TelegramError::FloodWait { secs: 5 },
        TelegramError::ChannelPrivate,
        TelegramError::AccessTokenInvalid,
        TelegramError::Timeout,
        TelegramError::ConnectionLost("reset".into()),
        TelegramError::Internal("500".into()),
        TelegramError::FileMigrate { dc: 4 },
        TelegramError::AuthKeyUnregistered,
    ];
    for error in cases {
        let (mut retry, now) = fresh(3, 4, 2);
        retry.start(now);
        assert_eq!(retry.on(now, failed(1, &error)), Action::NextBot, "{error}");
        assert_eq!(retry.excluded(), vec![false, true, false], "{error}");
        assert_eq!(retry.attempts(), u32::from(error.uses_an_attempt()));
    }
}

#[test]
fn not_found_and_hopeless_failures_give_up_at_once() {
    let (mut retry, now) = fresh(3, 4, 2);
    retry.start(now);
    assert_eq!(
        retry.on(now, failed(0, &TelegramError::MessageNotFound)),
        Action::GiveUp(GiveUp::NotFound)
    );
    for error in [
        TelegramError::LimitOrOffsetInvalid,
        TelegramError::Other("PEER_ID_INVALID".into()),
    ] {
        let (mut retry, now) = fresh(3, 4, 2);
        retry.start(now);
        assert_eq!(
            retry.on(now, failed(0, &error)),
            Action::GiveUp(GiveUp::Rejected(error.to_string()))
        );
    }
}

#[test]
fn a_stale_reference_refreshes_on_the_same_bot_once() {
    let (mut retry, now) = fresh(3, 8, 2);
    retry.start(now);
    let stale = TelegramError::FileReferenceExpired;
    assert_eq!(
        retry.on(now, failed(2, &stale)),
        Action::SameBot {
            bot: 2,
            refresh: true
        }
    );
    assert_eq!(retry.excluded(), vec![true, true, false]);
    // Stale again after the refresh: that bot is done, another one takes over.
    assert_eq!(retry.on(now, failed(2, &stale)), Action::NextBot);
    assert_eq!(retry.excluded(), vec![false, false, true]);
    // Another bot still gets its own refresh.
    assert_eq!(
        retry.on(now, failed(0, &stale)),
        Action::SameBot {
            bot: 0,
            refresh: true
        }
    );
}

#[test]
fn a_pinned_bot_that_cannot_be_picked_gives_way_to_the_others() {
    let (mut retry, now) = fresh(3, 8, 2);
    retry.start(now);
    retry.on(now, failed(1, &TelegramError::FileReferenceExpired));
    let until = now + Duration::from_secs(3);
    let waits = SelectError::FloodWait { secs: 3, until };
    assert_eq!(retry.on(now, Event::NoBot(waits)), Action::NextBot);
    assert_eq!(retry.excluded(), vec![false, true, false]);
}

#[test]
fn a_failure_after_a_pin_unpins() {
    let (mut retry, now) = fresh(2, 8, 2);
    retry.start(now);
    retry.on(now, failed(0, &TelegramError::FileReferenceExpired));
    assert_eq!(
        retry.on(now, failed(0, &TelegramError::Timeout)),
        Action::NextBot
    );
    assert_eq!(retry.excluded(), vec![true, false]);
}

#[test]
fn every_bot_tried_starts_another_round_up_to_the_limit() {
    let (mut retry, now) = fresh(2, 10, 2);
    retry.start(now);
    retry.on(now, failed(0, &TelegramError::Timeout));
    retry.on(now, failed(1, &TelegramError::Timeout));
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::AllTried)),
        Action::NextBot
    );
    assert_eq!(retry.excluded(), vec![false, false]);
    retry.on(now, failed(0, &TelegramError::Timeout));
    retry.on(now, failed(1, &TelegramError::Timeout));
    let action = retry.on(now, Event::NoBot(SelectError::AllTried));
    assert_eq!(
        action,
        Action::GiveUp(GiveUp::Unavailable(TelegramError::Timeout.to_string()))
    );
}

#[test]
fn attempts_are_bounded_across_rounds() {
    let (mut retry, now) = fresh(1, 3, u32::MAX);
    retry.start(now);
    for _ in 0..2 {
        assert_eq!(
            retry.on(now, failed(0, &TelegramError::Timeout)),
            Action::NextBot
        );
        assert_eq!(
            retry.on(now, Event::NoBot(SelectError::AllTried)),
            Action::NextBot
        );
    }
    assert!(unavailable(
        &retry.on(now, failed(0, &TelegramError::Timeout))
    ));
    assert_eq!(retry.attempts(), 3);
}

#[test]
fn flood_wait_everywhere_answers_the_soonest_end() {
    let (mut retry, now) = fresh(2, 4, 2);
    retry.start(now);
    let until = now + Duration::from_secs(12);
    assert_eq!(
        retry.on(
            now,
            Event::NoBot(SelectError::FloodWait { secs: 12, until })
        ),
        Action::GiveUp(GiveUp::FloodWait { secs: 12 })
    );
}

#[test]
fn no_healthy_bot_is_unavailable() {
    let (mut retry, now) = fresh(2, 4, 2);
    retry.start(now);
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::NoHealthyBot)),
        Action::GiveUp(GiveUp::Unavailable("no healthy bot".into()))
    );
}

#[test]
fn saturated_connections_sleep_a_poll_then_pick_again() {
    let (mut retry, now) = fresh(2, 4, 2);
    retry.start(now);
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::Saturated)),
        Action::SleepUntil(now + POLL)
    );
    assert_eq!(retry.on(now + POLL, Event::Woke), Action::NextBot);
    assert_eq!(retry.attempts(), 0, "waiting for a slot is not an attempt");
}

#[test]
fn the_sleep_never_outlasts_the_deadline() {
    let now = Instant::now();
    let deadline = now + Duration::from_millis(1);
    let mut retry = Retry::new(1, policy(4, 2), deadline);
    retry.start(now);
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::Saturated)),
        Action::SleepUntil(deadline)
    );
    let action = retry.on(deadline, Event::Woke);
    assert!(unavailable(&action), "{action:?}");
}

#[test]
fn a_passed_deadline_gives_up_with_the_last_failure() {
    let (mut retry, now) = fresh(3, 4, 2);
    retry.start(now);
    let late = now + Duration::from_secs(11);
    assert_eq!(
        retry.on(late, failed(0, &TelegramError::Timeout)),
        Action::GiveUp(GiveUp::Unavailable(TelegramError::Timeout.to_string()))
    );
    let (mut fresh, now) = fresh(1, 4, 2);
    assert_eq!(
        fresh.start(now + Duration::from_secs(10)),
        Action::GiveUp(GiveUp::Unavailable("no attempt made".into()))
    );
}

#[test]
fn a_failure_from_an_unknown_bot_does_not_panic() {
    let (mut retry, now) = fresh(1, 4, 2);
    retry.start(now);
    assert_eq!(
        retry.on(now, failed(7, &TelegramError::FileReferenceExpired)),
        Action::NextBot
    );
    assert_eq!(
        retry.on(now, failed(7, &TelegramError::Timeout)),
        Action::NextBot
    );
}

#[test]
fn flood_wait_on_the_others_gives_a_bot_that_failed_in_passing_another_round() {
    // Bot 0 is cut mid-call; bots 1 and 2 are in flood wait. Before, this gave up with
    // `FloodWait` although bot 0 was free: the soak's viewers got a 200 and no body.
    let (mut retry, now) = fresh(3, 8, 4);
    retry.start(now);
    let cut = TelegramError::ConnectionLost("reset".into());
    assert_eq!(retry.on(now, failed(0, &cut)), Action::NextBot);
    let until = now + Duration::from_secs(2);
    let waits = SelectError::FloodWait { secs: 2, until };
    assert_eq!(retry.on(now, Event::NoBot(waits)), Action::NextBot);
    assert_eq!(retry.excluded(), vec![false; 3]);
}

#[test]
fn flood_wait_ending_before_the_deadline_is_slept_through() {
    let (mut retry, now) = fresh(2, 8, 2);
    retry.start(now);
    let until = now + Duration::from_secs(2);
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::FloodWait { secs: 2, until })),
        Action::SleepUntil(until)
    );
    assert_eq!(retry.on(until, Event::Woke), Action::NextBot);
    assert_eq!(retry.attempts(), 0, "waiting out a flood is not an attempt");
}

#[test]
fn flood_wait_after_the_last_round_is_slept_through_or_given_up() {
    let (mut retry, now) = fresh(2, 8, 1);
    retry.start(now);
    retry.on(now, failed(0, &TelegramError::Internal("500".into())));
    let soon = now + Duration::from_secs(3);
    assert_eq!(
        retry.on(
            now,
            Event::NoBot(SelectError::FloodWait {
                secs: 3,
                until: soon
            })
        ),
        Action::SleepUntil(soon)
    );
    let late = now + Duration::from_secs(30);
    assert_eq!(
        retry.on(
            now,
            Event::NoBot(SelectError::FloodWait {
                secs: 30,
                until: late
            })
        ),
        Action::GiveUp(GiveUp::FloodWait { secs: 30 })
    );
}

#[test]
fn a_new_round_pauses_first_when_the_policy_says_so() {
    let now = Instant::now();
    let pause = Duration::from_millis(100);
    let mut retry = Retry::new(
        1,
        RetryPolicy {
            round_pause: pause,
            ..policy(8, 3)
        },
        now + Duration::from_secs(10),
    );
    retry.start(now);
    retry.on(now, failed(0, &TelegramError::Timeout));
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::AllTried)),
        Action::SleepUntil(now + pause)
    );
    assert_eq!(retry.on(now + pause, Event::Woke), Action::NextBot);
    assert_eq!(retry.excluded(), vec![false]);
    // The next round waits twice as long.
    retry.on(now, failed(0, &TelegramError::Timeout));
    assert_eq!(
        retry.on(now, Event::NoBot(SelectError::AllTried)),
        Action::SleepUntil(now + 2 * pause)
    );
}

#[test]
fn the_pause_between_rounds_stops_doubling() {
    let now = Instant::now();
    let pause = Duration::from_millis(100);
    let mut retry = Retry::new(
        1,
        RetryPolicy {
            round_pause: pause,
            ..policy(100, 100)
        },
        now + Duration::from_secs(600),
    );
    retry.start(now);
    let mut last = Duration::ZERO;
    for _ in 0..10 {
        retry.on(now, failed(0, &TelegramError::Timeout));
        match retry.on(now, Event::NoBot(SelectError::AllTried)) {
            Action::SleepUntil(until) => last = until - now,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last, pause * (1 << MAX_PAUSE_DOUBLINGS));
}

#[test]
fn lost_connections_and_flood_waits_are_bounded_by_the_deadline_not_the_attempts() {
    let (mut retry, now) = fresh(1, 2, u32::MAX);
    retry.start(now);
    let cut = TelegramError::ConnectionLost("read 0 bytes".into());
    let flood = TelegramError::FloodWait { secs: 2 };
    for i in 0..10 {
        let error = if i % 2 == 0 { &cut } else { &flood };
        assert_eq!(retry.on(now, failed(0, error)), Action::NextBot);
        assert_eq!(
            retry.on(now, Event::NoBot(SelectError::AllTried)),
            Action::NextBot
        );
    }
    assert_eq!(retry.attempts(), 0);
    let late = now + Duration::from_secs(10);
    assert!(unavailable(&retry.on(late, failed(0, &cut))));
}
