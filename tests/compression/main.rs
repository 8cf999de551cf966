//! Compression of archives across processes, with real processes: one compressor per
//! archive however many processes rotate at once, and nothing of ours followed or removed
//! at a temporary name (`claims`); compression that finishes before a process exits,
//! bounded by `compress_exit_timeout`, and `wait_for_compression` (`exit`); `compress`
//! refused by `build()` without its cargo feature (`feature`); processes killed, exiting
//! from the compressor's own thread or forked mid-compression, with no acknowledged line
//! lost (`hostile_exits`); and 300 compressed logs in one process holding one compressor
//! thread and no descriptor once done (`many_logs`).
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

// Unix-only: inode numbers, symbolic links.
#[cfg(unix)]
mod claims;
mod exit;
mod feature;
// Unix-only: signals, EINTR, fork or setrlimit.
#[cfg(unix)]
mod hostile_exits;
// Unix-only: RLIMIT_NOFILE.
#[cfg(unix)]
mod many_logs;
