//! Rotation with real processes: by size (the length that decides it confirmed with the
//! kernel), by time, numbered and timestamped names (also where size and time rotation
//! meet), a peer's rotation noticed before the next write, retention by count, age and
//! total size (and an archive it cannot delete), compression of archives (also by a child forked without exec), and a log file
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
mod peer_rotation;
mod period_record;
mod retention;
mod retention_by_age;
mod retention_errors;
mod size_and_time_naming;
mod timestamped_names;
