//! A lock file swapped, after `build()`, for a symlink or a hard link to a victim while a
//! process logs: that process drops (and reports) its events, never writes into the
//! victim, and the victim keeps its bytes. Each scenario runs in a child process, so that
//! a panic on any thread shows in its exit status.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::foreign_lock_file::{VICTIM_TEXT, lock_path, snapshots};
use crate::common;
use common::children::start_entry;
use tracing_shared_file::SharedFile;

/// What the error hook was told.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reported {
    event_dropped: bool,
}

/// A process logs one event, then its lock file is deleted and `replace` puts something
/// foreign in its place; the next `AFTER` events must all be dropped and reported, and
/// the victim keep its snapshot.
fn run_replaced_after_build(dir: &Path, replace: impl FnOnce(&Path, &Path)) {
    const AFTER: u64 = 30;
    let log = dir.join("app.log");
    let victim = dir.join("victim.txt");
    fs::write(&victim, VICTIM_TEXT).unwrap();
    let lock = lock_path(&log);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let shared = SharedFile::builder(&log)
        // Checks the paths before every write, so the replacement is seen at once.
        .path_check_interval(Duration::ZERO)
        .on_error({
            let reports = Arc::clone(&reports);
            move |failure| {
                reports.lock().unwrap().push(Reported {
                    event_dropped: failure.event_dropped(),
                });
            }
        })
        .build()
        .unwrap();
    (&shared).write_all(b"before the swap\n").unwrap();

    fs::remove_file(&lock).unwrap();
    replace(&victim, &lock);
    let before = snapshots(&[&victim, &lock]);
    let mut refused = 0;
    for i in 0..AFTER {
        if (&shared)
            .write_all(format!("after the swap {i}\n").as_bytes())
            .is_err()
        {
            refused += 1;
        }
    }
    assert_eq!(
        snapshots(&[&victim, &lock]),
        before,
        "logging wrote through the foreign lock file into the victim"
    );

    let stats = shared.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.events_dropped,
            stats.write_errors
        ),
        (1, AFTER, AFTER),
        "every event after the swap is dropped: {stats:?}"
    );
    assert_eq!(
        refused, AFTER,
        "every write after the swap returns the error"
    );
    let reports = reports.lock().unwrap();
    assert_eq!(
        reports.iter().filter(|r| r.event_dropped).count() as u64,
        AFTER,
        "every dropped event is reported to the hook: {reports:?}"
    );
    assert_eq!(fs::read(&log).unwrap(), b"before the swap\n");
}

const REPLACED_ENV: &str = "TSF_FOREIGN_LOCK_REPLACED";
const REPLACED_DIR_ENV: &str = "TSF_FOREIGN_LOCK_REPLACED_DIR";

/// Child side: runs the scenario in a process of its own, so that the library's notice
/// about the replaced lock file goes to a file, not to the terminal of a passing run.
#[test]
fn replaced_lock_entry() {
    let Some(how) = std::env::var_os(REPLACED_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(REPLACED_DIR_ENV).unwrap());
    match how.to_str().unwrap() {
        "symlink" => run_replaced_after_build(&dir, |victim, lock| {
            std::os::unix::fs::symlink(victim, lock).unwrap();
        }),
        "hard link" => run_replaced_after_build(&dir, |victim, lock| {
            fs::hard_link(victim, lock).unwrap();
        }),
        other => panic!("unknown replacement {other:?}"),
    }
}

/// Runs `replaced_lock_entry` with `how`; fails with the child's output if it failed.
fn run_replaced_in_child(how: &str) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let finished = start_entry(
        &common::entry!(replaced_lock_entry),
        dir.path(),
        "scenario",
        |command| {
            command.env(REPLACED_ENV, how).env(REPLACED_DIR_ENV, &work);
        },
    )
    .with_deadline(Duration::from_secs(30))
    .finish();
    finished.assert_success();
    assert!(
        !finished.stdout.contains("panicked"),
        "the scenario panicked:\n{}",
        finished.stdout
    );
}

#[test]
fn a_lock_file_replaced_by_a_symlink_after_build_is_never_written_through() {
    run_replaced_in_child("symlink");
}

#[test]
fn a_lock_file_replaced_by_a_hard_link_after_build_is_never_written_through() {
    run_replaced_in_child("hard link");
}
