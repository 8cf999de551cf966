//! A process that dies or is interrupted at any moment: `kill -9` (the next lock holder
//! cuts off the partial line and repairs an interrupted rotation), a failed or killed
//! append repaired without cutting into whole lines, signals that interrupt a wait for the
//! lock, a write or an open, and panics while an event is formatted, written, or while a
//! thread unwinds, or inside the `on_error` hook; none of them leaves a lock held.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod hook_panics;
// Unix-only: signals, EINTR, fork or setrlimit.
#[cfg(unix)]
mod interrupted_calls;
mod kill;
mod panics;
mod panics_release_the_lock;
mod quiet_panics;
// Unix-only: a writer killed mid-append by SIGXFSZ under RLIMIT_FSIZE.
#[cfg(unix)]
mod repair;
// Unix-only: signals, EINTR, fork or setrlimit.
#[cfg(unix)]
mod signals;
mod unwinding;
