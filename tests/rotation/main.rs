//! Rotation with real processes: by size (the length that decides it confirmed with the
//! kernel), by time, numbered and timestamped names, retention by count, age and total
//! size, compression of archives (also by a child forked without exec), and a log file
//! with a second hard link refused instead of rotated or written.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod by_time;
#[cfg(feature = "compress")]
mod compression;
#[cfg(feature = "compress")]
mod compression_races;
#[cfg(feature = "compress")]
mod compressor;
mod decision;
mod log_file_links;
mod period_record;
mod retention;
mod retention_by_age;
mod timestamped_names;
