//! The side lock file and the wait for its lock: sleeping in `flock(2)`, or polling when
//! bounded; a holder that never lets go bounded by `lock_timeout`, long writes that let other processes take their turn, and something
//! that is not this crate's lock file at `<log>.lock` refused and left untouched.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod foreign_lock_file;
mod fork_while_waiting;
mod holders;
mod lock_timeout;
mod lock_turns;
mod replaced_lock_file;
mod wait_syscalls;
