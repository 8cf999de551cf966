//! A process that dies or is interrupted at any moment: `kill -9` (the next lock holder
//! cuts off the partial line and repairs an interrupted rotation), a failed or killed
//! append repaired without cutting into whole lines, signals that interrupt a wait for the
//! lock, and panics while an event is formatted, written, or while a thread unwinds.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod kill;
mod panics;
mod quiet_panics;
mod repair;
mod signals;
mod unwinding;
