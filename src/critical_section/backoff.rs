//! The back-off after a failed rotation: how long this process appends past `max_bytes`
//! before it tries the same rotation again.
//!
//! A rotation that fails (a directory at an archive's name, a directory the process may
//! not write, no descriptor left) usually fails again at once, and every try holds the
//! lock for its system calls while others wait. So a process tries again no sooner than
//! [`FIRST`] after a failure, then twice as long after each further failure, up to
//! [`LONGEST`]. The back-off is for one live file: once the live file is another (some
//! process rotated it, or it was replaced), or a rotation succeeds, it is over.
//!
//! Invariants: the back-off only ever delays a rotation, by at most [`LONGEST`] after the
//! last failure; it never drops an event (held-off events are appended); it is this
//! process's own, on its monotonic clock, so a process with a clock far off cannot hold
//! others back.

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

struct Failing {
    /// The live file that could not be rotated.
    live: FileId,
    /// How long the current wait is.
    wait: Duration,
    /// When (on [`crate::platform::coarse_now`]'s clock) to try again.
    retry_at: Duration,
}

impl RotationBackoff {
    /// Whether a rotation of `live` is held off at `now`.
    pub(crate) fn holds_off(&self, live: FileId, now: Duration) -> bool {
        self.failing
            .as_ref()
            .is_some_and(|f| f.live == live && now < f.retry_at)
    }

    /// A rotation of `live` failed at `now`: the next try waits twice as long as the
    /// last, or [`FIRST`] for a first failure of this file.
    pub(crate) fn failed(&mut self, live: FileId, now: Duration) {
        let wait = match &self.failing {
            Some(f) if f.live == live => (f.wait * 2).min(LONGEST),
            _ => FIRST,
        };
        self.failing = Some(Failing {
            live,
            wait,
            retry_at: now + wait,
        });
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_failure_holds_off_the_same_file_for_the_first_wait_only() {
        let mut backoff = RotationBackoff::default();
        assert!(!backoff.holds_off(A, ms(0)));
        backoff.failed(A, ms(1000));
        assert!(backoff.holds_off(A, ms(1000)));
        assert!(backoff.holds_off(A, ms(1099)));
        assert!(!backoff.holds_off(A, ms(1100)));
        assert!(
            !backoff.holds_off(B, ms(1001)),
            "another live file is tried"
        );
    }

    #[test]
    fn the_wait_doubles_with_each_failure_up_to_the_longest() {
        let mut backoff = RotationBackoff::default();
        let mut now = ms(0);
        let mut waits = Vec::new();
        for _ in 0..10 {
            backoff.failed(A, now);
            let retry_at = backoff.failing.as_ref().unwrap().retry_at;
            waits.push((retry_at - now).as_millis());
            now = retry_at;
        }
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }

    #[test]
    fn a_success_or_another_file_starts_over() {
        let mut backoff = RotationBackoff::default();
        backoff.failed(A, ms(0));
        backoff.failed(A, ms(100));
        backoff.succeeded();
        assert!(!backoff.holds_off(A, ms(101)));
        backoff.failed(A, ms(200));
        assert!(!backoff.holds_off(A, ms(300)), "back to the first wait");
        backoff.failed(A, ms(300));
        backoff.failed(B, ms(301));
        assert!(
            !backoff.holds_off(B, ms(401)),
            "another file: the first wait"
        );
    }
}
