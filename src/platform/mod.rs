//! Everything that differs between operating systems lives below this module: `unix/`
//! and `windows/`, with the same functions and types. What only Unix has (fork, file
//! modes) is used only under `cfg(unix)` above.

mod common;
#[cfg(test)]
pub(crate) use common::listings;
pub(crate) use common::{
    Access, AnonymousMemory, FileId, Kind, LONGEST_TEMPORARY, SharedPage, TEMPORARY_PREFIX,
    retry_interrupted,
};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!("tracing-shared-file supports Unix and Windows");

use std::sync::atomic::{AtomicU64, Ordering};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many forks this process descends through; changes only in a forked child, so
/// that what a parent started (threads, queues) is known not to be running here.
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// For the fork child handler: this is a new process, with a new id and generation.
#[cfg(unix)]
pub(crate) fn note_fork_in_child() {
    refresh_pid();
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}
