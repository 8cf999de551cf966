#![cfg(unix)]
//! A hostile environment while processes log: the directory removed or swapped for a
//! symlink, the lock file deleted or truncated or replaced by something not ours, a FIFO,
//! device, socket or symlinks at the log path, the live file moved (noticed within
//! `path_check_interval`) or replaced, permission revoked, a full disk, I/O errors, a
//! rotated name occupied, foreign or damaged archive names and ledger words, things in
//! the way of compression. No panic, no hang, no torn line; what is lost is counted and reported.
//!
//! One test binary for the area, so that `tests/common` is compiled and linked once for
//! all of it. Child processes are this binary re-run for one test entry (`entry!`).

#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "compress")]
mod compression;
mod directory;
mod directory_swap;
mod full_disk;
mod lock_file;
mod lock_file_overlap;
mod lock_path_replaced_after_build;
mod path_checks;
mod paths;
mod permissions;
mod replaced_log;
mod retention_edges;
mod rotation_blocked;
mod rotation_policy;
mod special_files_at_the_path;
mod symlink_swap;
mod symlink_workers;
mod write_errors;
