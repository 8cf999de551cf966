//! Everything that differs between operating systems lives below this module.
//!
//! Only Unix is implemented today; a Windows port adds a sibling module with the same
//! functions (file identity from `GetFileInformationByHandle`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(not(unix))]
compile_error!("tracing-shared-file supports Unix only for now; Windows support is planned");

use std::sync::atomic::{AtomicU64, Ordering};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many forks this process descends through; changes only in a forked child, so
/// that what a parent started (threads, queues) is known not to be running here.
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// For the fork child handler: this is a new process, with a new id and generation.
pub(crate) fn note_fork_in_child() {
    refresh_pid();
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}
