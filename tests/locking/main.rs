//! The side lock file and the wait for its lock: sleeping in `flock(2)`, or polling when
//! bounded; a holder that never lets go bounded by `lock_timeout`, long writes that let other processes take their turn, and something
//! that is not this crate's lock file at `<log>.lock` refused and left untouched.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

// Unix-only: FIFOs, devices, permission bits, symbolic links at the lock path.
#[cfg(unix)]
mod foreign_lock_file;
// Unix-only: signals, EINTR, fork or setrlimit.
#[cfg(unix)]
mod fork_while_waiting;
// Unix-only: a holder caught with SIGSTOP.
#[cfg(unix)]
mod holders;
// Unix-only: a holder caught with SIGSTOP.
#[cfg(unix)]
mod lock_timeout;
mod lock_turns;
// Unix-only: symbolic links swapped in for the lock file.
#[cfg(unix)]
mod replaced_lock_file;
// Unix-only: signals, EINTR, fork or setrlimit.
#[cfg(unix)]
mod wait_syscalls;
