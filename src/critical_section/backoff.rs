//! The back-off after a failed rotation: how long this process appends past `max_bytes`
//! before it tries the same rotation again.
//!
//! A rotation that fails (a directory at an archive's name, a directory the process may
//! not write, no descriptor left) usually fails again at once, and every try holds the
//! lock for its system calls while others wait. So a process tries again no sooner than
//! [`FIRST`] after a failure, then twice as long after each further failure, up to
//! [`LONGEST`]. The back-off is for one live file in one period: once the live file is
//! another (some process rotated it, or it was replaced), the clock is in another period
//! than at the failure (a time rotation is due again), this is a forked child, or a
//! rotation succeeds, it is over.
//!
//! Invariants: the back-off only ever delays a rotation, by at most [`LONGEST`] after the
//! last failure, and never past the next period boundary; it never drops an event
//! (held-off events are appended); it is this process's own, on its monotonic clock, so a
//! process with a clock far off cannot hold others back. It lives in the `SharedFile`'s
//! state, under the mutex the fork handlers take, so that a fork never copies it half
//! written or locked.

use std::time::Duration;

use crate::platform::FileId;

/// How long after a first failure the rotation is tried again.
pub(crate) const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries of a rotation that keeps failing.
pub(crate) const LONGEST: Duration = Duration::from_secs(5);

/// Whether, and until when, this process holds off rotating one live file.
#[derive(Default)]
pub(crate) struct RotationBackoff {
    failing: Option<Failing>,
}

/// What a rotation is tried for: the live file, the clock, the period, the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) live: FileId,
    /// On [`crate::platform::coarse_now`]'s clock.
    pub(crate) at: Duration,
    /// The start of the period the clock is in, when rotating by time.
    pub(crate) period: Option<i64>,
    pub(crate) fork_generation: u64,
}

struct Failing {
    /// The attempt that failed last.
    attempt: Attempt,
    /// How long the current wait is.
    wait: Duration,
}

impl RotationBackoff {
    /// Whether the last rotation tried failed.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Whether the rotation is held off for `attempt`.
    pub(crate) fn holds_off(&self, attempt: &Attempt) -> bool {
        self.failing.as_ref().is_some_and(|f| {
            let last = &f.attempt;
            last.live == attempt.live
                && last.period == attempt.period
                && last.fork_generation == attempt.fork_generation
                && attempt.at < last.at + f.wait
        })
    }

    /// `attempt` failed: the next try waits twice as long as the last, or [`FIRST`]
    /// after a first failure of this file in this period.
    pub(crate) fn failed(&mut self, attempt: Attempt) {
        let wait = match &self.failing {
            Some(f)
                if f.attempt.live == attempt.live
                    && f.attempt.period == attempt.period
                    && f.attempt.fork_generation == attempt.fork_generation =>
            {
                (f.wait * 2).min(LONGEST)
            }
            _ => FIRST,
        };
        self.failing = Some(Failing { attempt, wait });
    }

    /// A rotation succeeded: the next failure starts over at [`FIRST`].
    pub(crate) fn succeeded(&mut self) {
        self.failing = None;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    const A: FileId = FileId { dev: 1, ino: 2 };
    const B: FileId = FileId { dev: 1, ino: 3 };

    fn at(live: FileId, ms: u64) -> Attempt {
        Attempt {
            live,
            at: Duration::from_millis(ms),
            period: None,
            fork_generation: 0,
        }
    }

    #[test]
    fn a_failure_holds_off_the_same_file_for_the_first_wait_only() {
        let mut backoff = RotationBackoff::default();
        assert!(!backoff.holds_off(&at(A, 0)));
        backoff.failed(at(A, 1000));
        assert!(backoff.holds_off(&at(A, 1000)));
        assert!(backoff.holds_off(&at(A, 1099)));
        assert!(!backoff.holds_off(&at(A, 1100)));
        assert!(
            !backoff.holds_off(&at(B, 1001)),
            "another live file is tried"
        );
    }

    #[test]
    fn the_wait_doubles_with_each_failure_up_to_the_longest() {
        let mut backoff = RotationBackoff::default();
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            backoff.failed(at(A, now));
            let wait = backoff.failing.as_ref().unwrap().wait.as_millis() as u64;
            assert!(backoff.holds_off(&at(A, now + wait - 1)));
            waits.push(wait);
            now += wait;
        }
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }

    #[test]
    fn a_success_or_another_file_starts_over() {
        let mut backoff = RotationBackoff::default();
        backoff.failed(at(A, 0));
        backoff.failed(at(A, 100));
        backoff.succeeded();
        assert!(!backoff.holds_off(&at(A, 101)));
        backoff.failed(at(A, 200));
        assert!(!backoff.holds_off(&at(A, 300)), "back to the first wait");
        backoff.failed(at(A, 300));
        backoff.failed(at(B, 301));
        assert!(
            !backoff.holds_off(&at(B, 401)),
            "another file: the first wait"
        );
    }

    #[test]
    fn another_period_or_a_forked_child_is_not_held_off() {
        let mut backoff = RotationBackoff::default();
        let in_period = |period, ms| Attempt {
            period: Some(period),
            ..at(A, ms)
        };
        backoff.failed(in_period(60, 0));
        assert!(backoff.holds_off(&in_period(60, 50)));
        assert!(!backoff.holds_off(&in_period(120, 50)), "a new period");
        let child = Attempt {
            fork_generation: 1,
            ..in_period(60, 50)
        };
        assert!(!backoff.holds_off(&child), "a forked child");
        backoff.failed(in_period(120, 50));
        assert!(
            !backoff.holds_off(&in_period(120, 150)),
            "the first wait again"
        );
    }
}
