//! Fleets of processes that are not alike sharing one log: other options (periods,
//! naming, sizes, retention), other versions of the crate, clocks hours apart or stepped
//! mid-run, other time zones. The live file keeps the schedule it was opened under, so
//! there is no rotation storm; archives of both namings count together; a disagreement is
//! reported once; no line the agreed limits keep is lost (`disagreeing`, `attack`); and
//! a day in a zone with daylight saving time rotates once per local midnight
//! (`time_zones`).
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Every writer is this binary re-run for one test entry (`entry!`): the
//! fleets' one writer is `fleet::writer_entry`. Clocks that are off need `faketime` (see
//! `.ci/install-test-tools`); without it those tests print "skipped" and pass.

#[path = "../common/mod.rs"]
mod common;

mod attack;
mod disagreeing;
mod fleet;
mod time_zones;
