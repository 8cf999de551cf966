//! When the lock file (and its record of the live file's period) is lost, the file's
//! modification time decides which period its lines are of, for every kind of period and
//! offset, never the epoch; a file that holds no line of an earlier period is not
//! rotated, whatever its modification time says; and periods that are not whole seconds
//! are refused at `build()`.

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::by_time::{
    Group, KEEP_ALL, ONE_SECOND, WORKER_DEADLINE, archive_path, assert_verified, expect_all,
    lock_path, names, rotations, start, time_only,
};
use crate::common;
use common::verifier::Verifier;
use common::workload::{RotationPolicy, archive_stamp, stamped_archives};
use tracing_shared_file::{ErrorKind, Period, SharedFile};

/// How the record of the live file's period is lost.
#[derive(Debug, Clone, Copy)]
enum RecordLoss {
    /// The lock file was deleted.
    Deleted,
    /// The lock file was replaced by a page of zeros, as if never set up.
    Blanked,
}

impl RecordLoss {
    fn apply(self, log: &Path) {
        let lock = lock_path(log);
        match self {
            RecordLoss::Deleted => fs::remove_file(&lock).expect("delete the lock file"),
            RecordLoss::Blanked => {
                fs::remove_file(&lock).expect("delete the lock file");
                fs::write(&lock, [0u8; 4096]).expect("write a blank lock file");
            }
        }
    }
}

/// Sets the modification time of `path` to `secs` since the epoch.
fn set_mtime(path: &Path, secs: i64) {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after the epoch"));
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(at))
        .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", path.display()));
}

/// 2025-11-26T23:30:15Z, a Wednesday: long before the test runs.
const OLD_WRITE: i64 = 1_764_199_815;

/// With the lock file (and so its record of the period) lost, the live file's
/// modification time says which period its lines are of: new processes rotate it once,
/// into an archive named after that period's start, for every kind of period and offset.
#[test]
fn a_lost_record_leaves_the_period_to_the_files_mtime() {
    assert_eq!(archive_stamp(OLD_WRITE), "2025-11-26T23-30-15Z");
    let cases = [
        (Period::Minute, 0, "2025-11-26T23-30-00Z"),
        (Period::Hour, 0, "2025-11-26T23-00-00Z"),
        (Period::Day, 0, "2025-11-26T00-00-00Z"),
        // 01:30 on the 27th at +02:00: that day began at 22:00 UTC.
        (Period::Day, 7200, "2025-11-26T22-00-00Z"),
        (Period::Week, 0, "2025-11-24T00-00-00Z"),
        // 18:30 on Wednesday at -05:00: that week began on Monday 05:00 UTC.
        (Period::Week, -18_000, "2025-11-24T05-00-00Z"),
        // Multiples of 90 minutes since the epoch.
        (
            Period::Every(Duration::from_secs(5400)),
            0,
            "2025-11-26T22-30-00Z",
        ),
    ];
    for (case, (period, offset, expected)) in cases.into_iter().enumerate() {
        let what = format!("{period:?} at UTC{offset:+}s");
        let policy = RotationPolicy {
            utc_offset_secs: offset,
            ..time_only(period, true)
        };
        let group = Group::new(0..1, 1, 5, u64::MAX, policy);
        group.start().wait_within(WORKER_DEADLINE);
        let old = fs::read(&group.log).expect("the first writer's file");
        let loss = if case % 2 == 0 {
            RecordLoss::Deleted
        } else {
            RecordLoss::Blanked
        };
        loss.apply(&group.log);
        set_mtime(&group.log, OLD_WRITE);

        let late = group.more(1..3, 5);
        start(&late).wait_within(WORKER_DEADLINE);

        assert_eq!(rotations(&late), 1, "{what}, {loss:?}: one rotation");
        let archives = stamped_archives(&group.log);
        assert_eq!(
            names(&archives),
            [format!("app.log.{expected}")],
            "{what}, {loss:?}"
        );
        assert_eq!(
            fs::read(archive_path(&group.log, &archives[0])).unwrap(),
            old
        );
        let mut specs = group.specs.clone();
        specs.extend(late);
        let report = expect_all(Verifier::new(&group.log, u64::MAX, KEEP_ALL), &specs)
            .timestamped(true)
            // A rotation by the mtime's period, which the lines' own times do not show.
            .check_rotation_points(false)
            .check_record_order(true)
            .verify();
        assert_verified(&report, &what);
        assert_eq!(report.archives, 1);
    }
}

/// A file that holds no line of an earlier period is not rotated, whatever its
/// modification time says: an empty one (made long ago), or one modified in the future.
#[test]
fn a_file_without_lines_of_an_earlier_period_is_not_rotated() {
    // 2040-01-01T00:00:00Z.
    const FUTURE: i64 = 2_208_988_800;
    for (lines, mtime) in [(0, OLD_WRITE), (5, FUTURE)] {
        let what = format!("{lines} lines, mtime {}", archive_stamp(mtime));
        let policy = time_only(Period::Hour, true);
        let group = Group::new(0..1, 1, lines, u64::MAX, policy);
        group.start().wait_within(WORKER_DEADLINE);
        RecordLoss::Deleted.apply(&group.log);
        set_mtime(&group.log, mtime);

        let late = group.more(1..3, 5);
        start(&late).wait_within(WORKER_DEADLINE);

        assert_eq!(rotations(&late), 0, "{what}");
        assert_eq!(
            names(&stamped_archives(&group.log)),
            [] as [&str; 0],
            "{what}"
        );
        let mut specs = group.specs.clone();
        specs.extend(late);
        let report = expect_all(Verifier::new(&group.log, u64::MAX, KEEP_ALL), &specs)
            .timestamped(true)
            .verify();
        assert_verified(&report, &what);
    }
}

/// A period must be whole seconds, at least one.
#[test]
fn periods_that_are_not_whole_seconds_are_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    for length in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_millis(1500),
    ] {
        let error = SharedFile::builder(&log)
            .rotate_every(Period::Every(length))
            .build()
            .expect_err("an invalid period");
        assert_eq!(error.kind(), ErrorKind::InvalidPeriod, "{length:?}");
    }
    assert!(!log.exists(), "a refused build creates no file");
    for period in [
        Period::Every(ONE_SECOND),
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Week,
    ] {
        SharedFile::builder(&log)
            .rotate_every(period)
            .build()
            .unwrap_or_else(|e| panic!("{period:?}: {e}"));
    }
}
