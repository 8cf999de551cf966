//! The back-off after a failed rotation, as docs/guarantees.md states it: a rotation that
//! failed is tried again no sooner than 100 ms later, then twice as long after each
//! further failure, up to 5 s between tries.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_millis(100);
pub const LONGEST: Duration = Duration::from_secs(5);
/// The library reads a coarse clock (a few milliseconds' resolution), and a test reads
/// its own times around a write: what either can be off by.
pub const SLACK: Duration = Duration::from_millis(15);

/// The wait after the `failures`-th failure in a row (counting from 1).
pub fn wait_after(failures: u64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16) as u32;
    (FIRST * 2u32.pow(doublings)).min(LONGEST)
}

/// The most tries of a rotation that keeps failing that can fall within `elapsed` of the
/// first one (inclusive of it).
pub fn most_tries_within(elapsed: Duration) -> u64 {
    let mut tries = 1;
    let mut at = Duration::ZERO;
    loop {
        at += wait_after(tries).saturating_sub(SLACK);
        if at > elapsed {
            return tries;
        }
        tries += 1;
    }
}
