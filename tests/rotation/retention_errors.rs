//! An archive that retention cannot delete (an immutable file, `chattr +i`) is reported
//! and counted in `rotation_errors`; the newer archives that the limits also doom are
//! deleted all the same; the rotation itself stands; and the next rotation tries again,
//! even in another process, which deletes it once it can.
//!
//! Needs root and a file system with `chattr +i` (ext4, xfs, btrfs); elsewhere the test
//! prints `skipped:` and passes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common;
use crate::common::children::start_entry_env;
use crate::common::immutable::Immutable;
use crate::common::workload::{WriterId, archive_stamp, fmt_line, stamped_archives};
use tracing_shared_file::{Naming, SharedFile};

const RETRY_WRITER_ENV: &str = "TSF_RETENTION_RETRY_DIR";
const W: WriterId = WriterId {
    process: 1,
    thread: 0,
};
/// Every line fills a file alone: each write after the first rotates.
const MAX_BYTES: u64 = 160;

fn builder(log: &Path) -> tracing_shared_file::Builder {
    SharedFile::builder(log)
        .max_bytes(MAX_BYTES)
        .max_files(1)
        .naming(Naming::Timestamped)
}

/// Child side: one rotation, with nothing in its way; prints its stats.
#[test]
fn retry_writer_entry() {
    let Some(dir) = std::env::var_os(RETRY_WRITER_ENV) else {
        return;
    };
    let log = builder(&PathBuf::from(dir).join("app.log"))
        .build()
        .unwrap();
    (&log).write_all(fmt_line(W, 100).as_bytes()).unwrap();
    let stats = log.stats();
    println!(
        "rotations={} rotation_errors={}",
        stats.rotations, stats.rotation_errors
    );
}

fn archive_names(log: &Path) -> Vec<String> {
    stamped_archives(log).into_iter().map(|a| a.name).collect()
}

/// Four archives from a minute ago, oldest first.
fn plant_four_archives(dir: &Path) -> Vec<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (0..4)
        .map(|i| {
            let path = dir.join(format!("app.log.{}", archive_stamp(now - 60 + i)));
            fs::write(&path, fmt_line(W, 90 + i as u64)).unwrap();
            path
        })
        .collect()
}

/// The archives left are the stuck one and the newest, which holds record `seq`: the
/// rotation stood and the newer doomed archives went.
#[track_caller]
fn assert_stuck_and_newest_left(log_path: &Path, stuck_name: &str, seq: u64) {
    let left = archive_names(log_path);
    assert_eq!(left.len(), 2, "the stuck archive and the new one: {left:?}");
    assert_eq!(left[0], stuck_name);
    let newest = log_path.parent().unwrap().join(&left[1]);
    assert_eq!(fs::read_to_string(newest).unwrap(), fmt_line(W, seq));
}

#[test]
fn an_undeletable_archive_is_counted_retried_and_does_not_spare_newer_doomed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let planted = plant_four_archives(dir.path());
    let Some(stuck) = Immutable::set(&planted[0]) else {
        return;
    };
    let stuck_name = planted[0].file_name().unwrap().to_str().unwrap();

    let reports = Arc::new(Mutex::new(Vec::new()));
    let log = builder(&log_path)
        .on_error({
            let reports = Arc::clone(&reports);
            move |failure| reports.lock().unwrap().push(failure.to_string())
        })
        .build()
        .unwrap();
    for seq in 0..2 {
        (&log).write_all(fmt_line(W, seq).as_bytes()).unwrap();
    }
    // One rotation; max_files(1) dooms the four planted archives.
    let stats = log.stats();
    assert_eq!(
        (stats.rotations, stats.rotation_errors),
        (1, 1),
        "{stats:?}"
    );
    assert_stuck_and_newest_left(&log_path, stuck_name, 0);
    {
        let reports = reports.lock().unwrap();
        let expected = format!(
            "cannot delete or compress the old archives of log file `{}`",
            log_path.display()
        );
        assert!(
            reports.len() == 1 && reports[0].starts_with(&expected),
            "{reports:?}"
        );
    }

    // The next rotation tries again, and fails again while the flag stays.
    (&log).write_all(fmt_line(W, 2).as_bytes()).unwrap();
    let stats = log.stats();
    assert_eq!(
        (stats.rotations, stats.rotation_errors),
        (2, 2),
        "{stats:?}"
    );
    assert_stuck_and_newest_left(&log_path, stuck_name, 1);
    assert_eq!(reports.lock().unwrap().len(), 2);
    drop(log);

    // Deletable now: the next rotation, by another process, deletes it.
    drop(stuck);
    let finished = start_entry_env(
        &common::entry!(retry_writer_entry),
        dir.path(),
        "retry-writer",
        RETRY_WRITER_ENV,
        dir.path(),
    )
    .finish();
    finished.assert_success();
    assert!(
        finished.stdout.contains("rotations=1 rotation_errors=0"),
        "{}",
        finished.stdout
    );
    let third = archive_names(&log_path);
    assert_eq!(third.len(), 1, "{third:?}");
    assert_eq!(
        fs::read_to_string(dir.path().join(&third[0])).unwrap(),
        fmt_line(W, 2)
    );
    assert_eq!(fs::read_to_string(&log_path).unwrap(), fmt_line(W, 100));
}
