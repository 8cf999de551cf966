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

// Unix-only: permission bits, uid and an unprivileged child.
#[cfg(unix)]
mod build_errors;
// Unix-only: paths built from raw bytes, symbolic links.
#[cfg(unix)]
mod config_fuzz;
// Unix-only: paths built from raw bytes, symbolic links.
#[cfg(unix)]
mod config_fuzz_cases;
mod defaults;
// Windows-only: a deleted file keeps its name while open.
#[cfg(windows)]
mod deleted_while_open;
mod event_writer;
mod flush;
// Unix-only: inode numbers of the files a foreign appender sees.
#[cfg(unix)]
mod foreign_appender;
mod line_format;
mod mixed_options;
mod multiprocess;
mod reports;
// Unix-only: log shippers (tail -F, rsyslog) stopped with SIGTERM.
#[cfg(unix)]
mod shipper_processes;
// Unix-only: tail -F and rsyslog, started and stopped by shipper_processes.
#[cfg(unix)]
mod shippers;
mod stats;
mod write_fmt;
