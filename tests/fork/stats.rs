//! A forked child's stats count what the child did, from the fork on, and its parent's
//! do not count the child's events; the events went where the counters say.

use std::io::Write;
use std::path::PathBuf;

use tracing_shared_file::SharedFile;

use super::support::{MAX_FILES, run_scenario};
use crate::common;
use common::forked::{exited_ok, wait_forked};

const STATS_ENV: &str = "TSF_FORK_LOCK_STATS";
/// Every event of the stats scenario: 40 bytes, so that `STATS_MAX_BYTES` holds two.
const STATS_EVENT_LEN: usize = 40;
const STATS_MAX_BYTES: u64 = 100;

fn stats_event(who: &str, index: usize) -> Vec<u8> {
    let mut event = format!("{who} event {index} ").into_bytes();
    event.resize(STATS_EVENT_LEN - 1, b'.');
    event.push(b'\n');
    event
}

/// Every counter of `stats`, on one line.
fn stats_line(stats: &tracing_shared_file::Stats) -> String {
    format!(
        "events_written={} bytes_written={} rotations={} write_errors={} rotation_errors={} \
         events_dropped={} lock_wait_total={:?} lock_wait_max={:?}",
        stats.events_written,
        stats.bytes_written,
        stats.rotations,
        stats.write_errors,
        stats.rotation_errors,
        stats.events_dropped,
        stats.lock_wait_total,
        stats.lock_wait_max
    )
}

/// Process P: writes 5 events (rotating twice), forks child C, which writes 3 (rotating
/// once) and records its stats in `<dir>/child.stats`; then P records its own in
/// `<dir>/parent.stats`.
#[test]
fn stats_across_fork_entry() {
    let Some(dir) = std::env::var_os(STATS_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(STATS_MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    for index in 0..5 {
        (&log).write_all(&stats_event("parent", index)).unwrap();
    }
    // SAFETY: the child writes, records its stats and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let wrote = (0..3).all(|index| (&log).write_all(&stats_event("child", index)).is_ok());
        let recorded = std::fs::write(dir.join("child.stats"), stats_line(&log.stats())).is_ok();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if wrote && recorded { 0 } else { 1 }) };
    }
    let status = wait_forked(pid).expect("the forked child hung");
    assert!(
        exited_ok(status),
        "the forked child failed: status {status:#x}"
    );
    std::fs::write(dir.join("parent.stats"), stats_line(&log.stats())).unwrap();
}

#[test]
fn a_forked_childs_stats_count_only_what_the_child_did() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario(
        &common::entry!(stats_across_fork_entry),
        STATS_ENV,
        dir.path().to_str().unwrap(),
    );

    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    // Nobody else held the lock, so neither waited.
    assert_eq!(
        read("child.stats"),
        "events_written=3 bytes_written=120 rotations=1 write_errors=0 rotation_errors=0 \
         events_dropped=0 lock_wait_total=0ns lock_wait_max=0ns",
        "the child's stats must count its own 3 events and 1 rotation, not its parent's"
    );
    assert_eq!(
        read("parent.stats"),
        "events_written=5 bytes_written=200 rotations=2 write_errors=0 rotation_errors=0 \
         events_dropped=0 lock_wait_total=0ns lock_wait_max=0ns",
        "the parent's stats must not count its child's events"
    );
    // The events went where the counters say: two per file, the child rotating once.
    let files: Vec<Vec<u8>> = ["app.log.3", "app.log.2", "app.log.1", "app.log"]
        .iter()
        .map(|name| std::fs::read(dir.path().join(name)).unwrap())
        .collect();
    let expected: Vec<Vec<u8>> = [
        [stats_event("parent", 0), stats_event("parent", 1)],
        [stats_event("parent", 2), stats_event("parent", 3)],
        [stats_event("parent", 4), stats_event("child", 0)],
        [stats_event("child", 1), stats_event("child", 2)],
    ]
    .iter()
    .map(|pair| pair.concat())
    .collect();
    assert_eq!(
        files
            .iter()
            .map(|f| f.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|f| f.escape_ascii().to_string())
            .collect::<Vec<_>>()
    );
    assert!(!dir.path().join("app.log.4").exists());
}
