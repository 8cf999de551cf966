#![cfg(unix)]
//! Fork without exec, as pre-fork servers do: parent and children go on logging to the
//! same rotating file, and a forked child never keeps its parent's lock alive, whatever
//! the parent was doing (killed mid-append, at its descriptor limit, building another
//! `SharedFile` on another thread) or the child does (drop privileges, fork again).
//!
//! Each scenario runs in a fresh process (this test binary re-run for one test entry),
//! so that it forks a process whose threads it controls, and a hang is caught by a
//! deadline instead of hanging the test run.

#[path = "../common/mod.rs"]
mod common;

mod build_race;
mod child_logging;
mod descriptor_limit;
mod killed_parent;
mod parent_and_children;
mod stats;
mod support;
