//! Timestamped archive names where a wrong name could show:
//!
//! - When size and time rotation both apply, the archive that a period's end closes after
//!   a size rotation in the same period is named after that size rotation, with a
//!   counter, and sorts after it. With 5-second periods and a size rotation at least a
//!   second into one, that name differs from the period's start, and another process
//!   makes the boundary rotation, so it has only the lock file's page and the directory
//!   to go by.
//! - A name stamped before 2000, or more than an hour ahead of the clock, is not taken
//!   for an archive: never deleted by `max_files` or `max_age`, never counted, and never
//!   used to name the next archive.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common;
use crate::common::children::start_entry_env;
use crate::common::workload::{StampedName, WriterId, archive_stamp, fmt_line, stamped_archives};
use tracing_shared_file::{Naming, Period, SharedFile};

const PERIOD_SECS: u64 = 5;
/// Room for ten of the test's lines, so the eleventh rotates by size.
const MAX_BYTES: u64 = 1024;
const BOUNDARY_WRITER_ENV: &str = "TSF_NAMING_BOUNDARY_DIR";
const PARENT: WriterId = WriterId {
    process: 1,
    thread: 0,
};
const CHILD: WriterId = WriterId {
    process: 2,
    thread: 0,
};

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn builder(log: &Path) -> tracing_shared_file::Builder {
    SharedFile::builder(log)
        .max_bytes(MAX_BYTES)
        .max_files(1000)
        .naming(Naming::Timestamped)
        .rotate_every(Period::Every(Duration::from_secs(PERIOD_SECS)))
}

/// Child side: writes one line after the period's end, which rotates the file.
#[test]
fn boundary_writer_entry() {
    let Some(dir) = std::env::var_os(BOUNDARY_WRITER_ENV) else {
        return;
    };
    let log = builder(&PathBuf::from(dir).join("app.log"))
        .build()
        .unwrap();
    (&log).write_all(fmt_line(CHILD, 0).as_bytes()).unwrap();
    assert_eq!(log.stats().rotations, 1, "the child's write must rotate");
}

/// Sleeps until `offset` into the next 5-second period, or into this one if that is
/// still ahead; returns the start of the period slept into, in seconds.
fn sleep_into_period(offset: Duration) -> u64 {
    let now = unix_now();
    let start = now.as_secs() / PERIOD_SECS * PERIOD_SECS;
    let mut target = Duration::from_secs(start) + offset;
    if target <= now {
        target += Duration::from_secs(PERIOD_SECS);
    }
    std::thread::sleep(target - now);
    target.as_secs() / PERIOD_SECS * PERIOD_SECS
}

fn lines(writer: WriterId, seqs: std::ops::Range<u64>) -> String {
    seqs.map(|seq| fmt_line(writer, seq)).collect()
}

fn names(archives: &[StampedName]) -> Vec<&str> {
    archives.iter().map(|a| a.name.as_str()).collect()
}

#[test]
fn a_boundary_archive_after_a_size_rotation_is_named_after_it_and_sorts_last() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    // 1.5 s into a period: the size rotation's second is not the period's start.
    let period_start = sleep_into_period(Duration::from_millis(1500));
    let log = builder(&log_path).build().unwrap();
    let mut sent = 0;
    while log.stats().rotations == 0 {
        (&log).write_all(fmt_line(PARENT, sent).as_bytes()).unwrap();
        sent += 1;
    }
    // The line that rotated and one more stay in the live file until the boundary.
    (&log).write_all(fmt_line(PARENT, sent).as_bytes()).unwrap();
    sent += 1;
    let size_rotated = stamped_archives(&log_path);
    assert_eq!(size_rotated.len(), 1, "{:?}", names(&size_rotated));
    let size_stamp = size_rotated[0].stamp as u64;
    assert!(
        size_stamp > period_start && size_stamp < period_start + PERIOD_SECS,
        "the size rotation at {} is not inside the period starting {} after its start; \
         the machine stalled, so the test cannot tell the names apart",
        archive_stamp(size_stamp as i64),
        archive_stamp(period_start as i64)
    );
    drop(log);

    // Another process writes after the period's end.
    sleep_into_period(Duration::from_millis(300));
    start_entry_env(
        &common::entry!(boundary_writer_entry),
        dir.path(),
        "boundary-writer",
        BOUNDARY_WRITER_ENV,
        dir.path(),
    )
    .finish()
    .assert_success();

    let archives = stamped_archives(&log_path);
    let expected = [
        size_rotated[0].name.clone(),
        format!("{}.1", size_rotated[0].name),
    ];
    assert_eq!(
        names(&archives),
        expected,
        "the boundary archive must be named after the size rotation (stamp {}), with a \
         counter, not after its period's start ({})",
        archive_stamp(size_stamp as i64),
        archive_stamp(period_start as i64)
    );
    let mut sorted: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("app.log."))
        .filter(|name| name != "app.log.lock")
        .collect();
    sorted.sort();
    assert_eq!(
        sorted, expected,
        "names sort in the order the files were made"
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read(&expected[0]), lines(PARENT, 0..sent - 2));
    assert_eq!(read(&expected[1]), lines(PARENT, sent - 2..sent));
    assert_eq!(read("app.log"), fmt_line(CHILD, 0));
}

/// Plants a file at `app.log.<stamp><suffix>` holding its own name.
fn plant(dir: &Path, stamp: i64, suffix: &str) -> PathBuf {
    let path = dir.join(format!("app.log.{}{suffix}", archive_stamp(stamp)));
    fs::write(&path, path.file_name().unwrap().as_encoded_bytes()).unwrap();
    path
}

#[test]
fn a_name_stamped_before_2000_is_never_an_archive_and_one_stamped_ahead_is_retired_first() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let now = unix_now().as_secs() as i64;
    // Before 2000: a clock that was not set; never this log's archives.
    let unset_clock = [
        plant(dir.path(), 946_684_799, ""), // 1999-12-31T23-59-59Z
        plant(dir.path(), 0, ".3"),         // 1970
    ];
    // Over an hour ahead: archives a clock set back left. Of unknown age, so taken as the
    // oldest: the first that max_files deletes, and never what names the next archive.
    let ahead = [
        plant(dir.path(), now + 2 * 3600, ""),
        plant(dir.path(), now + 3 * 3600, ".2.gz"),
    ];
    let planted: Vec<&PathBuf> = unset_clock.iter().chain(&ahead).collect();
    // A limit of one archive, and an age limit that every planted stamp exceeds or
    // would exceed soon: taken for archives, the old ones would be deleted, and the ones
    // ahead would name the next archives (after the newest stamp, in the future).
    let log = SharedFile::builder(&log_path)
        .max_bytes(200)
        .max_files(1)
        .max_age(Duration::from_secs(60))
        .naming(Naming::Timestamped)
        .build()
        .unwrap();
    let before = unix_now().as_secs() as i64;
    for seq in 0..4 {
        (&log).write_all(fmt_line(PARENT, seq).as_bytes()).unwrap();
    }
    let after = unix_now().as_secs() as i64;
    let stats = log.stats();
    assert_eq!((stats.rotations, stats.rotation_errors), (3, 0));

    for path in &unset_clock {
        assert_eq!(
            fs::read(path).ok().as_deref(),
            Some(path.file_name().unwrap().as_encoded_bytes()),
            "{} was deleted or changed",
            path.display()
        );
    }
    for path in &ahead {
        assert!(!path.exists(), "{} was not retired first", path.display());
    }
    let archives: Vec<StampedName> = stamped_archives(&log_path)
        .into_iter()
        .filter(|a| {
            !planted
                .iter()
                .any(|p| p.file_name().unwrap() == a.name.as_str())
        })
        .collect();
    // max_files(1): the newest of the three rotations only, named by the clock.
    assert_eq!(archives.len(), 1, "{:?}", names(&archives));
    assert!(
        (before..=after).contains(&archives[0].stamp),
        "the archive {} is not named by the clock ({}..={}): a planted name decided it",
        archives[0].name,
        archive_stamp(before),
        archive_stamp(after)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join(&archives[0].name)).unwrap(),
        fmt_line(PARENT, 2)
    );
    assert_eq!(fs::read_to_string(&log_path).unwrap(), fmt_line(PARENT, 3));
}
