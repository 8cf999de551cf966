#![cfg(unix)]
//! Processes of different users sharing one log, and the modes of the files the crate
//! creates.
//!
//! - [`forked_workers`]: a root parent with `file_mode(0o660)` forks workers that drop to
//!   unprivileged users; they go on logging and rotating.
//! - [`separate_users`]: unprivileged processes of two users sharing a group both log and
//!   rotate; processes the modes do not let in get an error naming the file and why.
//! - [`file_mode`]: the exact bits of every file created, whatever the umask; an existing
//!   file keeps its mode; invalid modes are refused; no temporary file is left behind, and
//!   those of killed processes are removed; created directories take the mode too.
//! - [`mode_set_before_naming`]: the log and the lock file get their names only once
//!   their bits are set.
//! - [`dropped_workers`]: a forked worker that may not search the log's directory is told
//!   which lookup failed and what would fix it; with the README's recipe, a grandchild of a
//!   worker that dropped privileges logs every record.
//!
//! Switching users needs root: those tests print `skipped: ...` and return without it.
//! The users and the group need not exist: uids 5001..=5004, gid 4242. Scenarios run in
//! fresh processes (this test binary re-run, selected by an environment variable), so
//! that they fork processes whose threads they control, switch users, or set the umask.

#[path = "../common/mod.rs"]
mod common;

mod dropped_workers;
mod file_mode;
mod forked_workers;
mod mode_set_before_naming;
mod separate_users;
mod support;
