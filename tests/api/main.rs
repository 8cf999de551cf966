//! The library's surface, used as an application uses it: `build()` and its errors (also
//! over random configurations), the ready-made layers' lines, `write!` straight to the
//! file, `stats()`, `flush()`, processes that share one file with different options,
//! many processes logging one rotating file, another program appending under the lock,
//! and log shippers following the live file.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod build_errors;
mod config_fuzz;
mod config_fuzz_cases;
mod defaults;
mod event_writer;
mod flush;
mod foreign_appender;
mod line_format;
mod mixed_options;
mod multiprocess;
mod reports;
mod shipper_processes;
mod shippers;
mod stats;
mod write_fmt;
