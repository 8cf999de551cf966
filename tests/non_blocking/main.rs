//! The non-blocking writer: a bounded queue, blocking or lossy when full, and an event at
//! the edge of its size; its lock-free queue under pressure; its memory within a fixed
//! multiple of `max_queued_bytes`; `max_batch_bytes` per hold of the lock and queueing
//! that never waits for a write; `flush` bounded by `lock_timeout`; and its edges (the
//! guard dropped while producers log, a hook that logs through it).
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

// Unix-only: flock calls counted with strace.
#[cfg(unix)]
mod batch_bounds;
mod capacity;
mod close;
mod flush_bounds;
mod queue_full;
mod queue_memory;
mod queue_pressure;
