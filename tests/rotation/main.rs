//! Rotation with real processes: by size (the length that decides it confirmed with the
//! kernel), by time, numbered and timestamped names (also where size and time rotation
//! meet), a peer's rotation noticed before the next write, retention by count, age and
//! total size (and an archive it cannot delete), compression of archives (also by a child
//! forked without exec), a log file with a second hard link refused instead of rotated or
//! written; and the operating system's limits: names up to the directory's `NAME_MAX`,
//! no directory listing under the lock (other writers' waits do not grow with the
//! directory), a rotation without a descriptor for the fresh file that does not happen and
//! loses nothing, and short-lived, killed and mixed-version fleets in a crowded directory;
//! on Windows, a rotation delayed by a handle that does not share delete.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

mod by_time;
#[cfg(feature = "compress")]
mod compression;
// Unix-only: a compressor caught with SIGSTOP.
#[cfg(all(unix, feature = "compress"))]
mod compression_races;
// Unix-only: fork.
#[cfg(all(unix, feature = "compress"))]
mod compressor;
mod decision;
// Windows-only: share modes.
#[cfg(windows)]
mod held_without_share_delete;
mod hostile_fleet;
mod lock_holds;
mod log_file_links;
mod name_length;
// Unix-only: RLIMIT_NOFILE.
#[cfg(unix)]
mod out_of_descriptors;
mod peer_rotation;
mod period_record;
mod retention;
mod retention_by_age;
mod retention_errors;
mod size_and_time_naming;
mod timestamped_names;
