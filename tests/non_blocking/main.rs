//! The non-blocking writer: a bounded queue, blocking or lossy when full; its lock-free
//! queue under pressure; its memory within a fixed multiple of `max_queued_bytes`; and
//! its edges (the guard dropped while producers log, a hook that logs through it).
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod close;
mod queue_full;
mod queue_memory;
mod queue_pressure;
