//! Retention by age (`max_age`) with several real processes: timestamped archives judged
//! by their stamp, numbered ones by their modification time, and archives that aged since
//! the last rotation caught at the next. Deletion goes oldest first, and files that only
//! look like archives survive untouched.

use std::time::Duration;

use super::retention::{DAY, Log, LookAlikes, assert_verified, now, stamped};
use crate::common;
use common::verifier::Expect;
use common::workload::{RotationPolicy, WriterId, archive_stamp, stamped_archives};

/// `max_age` with timestamped names judges by the stamp: archives stamped a year and a
/// week ago go at the first rotation, one stamped two hours ago stays, and so does every
/// new archive. Look-alikes with old stamps and old mtimes stay too.
#[test]
fn max_age_deletes_timestamped_archives_by_their_stamp() {
    let policy = stamped(RotationPolicy {
        max_age: Some(Duration::from_secs(DAY)),
        ..RotationPolicy::default()
    });
    let mut log = Log::new(4 * 1024, 100_000, policy);
    let look_alikes = LookAlikes::plant(&log.path, true);
    let now = now();
    let planted = [
        (now - 365 * DAY, 100),
        (now - 7 * DAY, 101),
        (now - 2 * 3600, 102),
    ];
    for (stamp, process) in planted {
        let name = format!("app.log.{}", archive_stamp(stamp as i64));
        // The mtime says "new": the stamp alone must decide.
        log.plant_archive(&name, WriterId { process, thread: 0 }, 10, now);
    }
    log.run(0..3, 2, 300);

    assert!(log.rotations() > 5);
    let archives = log.archives();
    let two_hours_ago = format!("app.log.{}", archive_stamp((now - 2 * 3600) as i64));
    assert_eq!(archives[0].0, two_hours_ago, "{archives:?}");
    let report = log
        .verifier()
        .expect(
            WriterId {
                process: 102,
                thread: 0,
            },
            Expect::Exactly(10),
        )
        .check_rotation_points(false)
        .check_record_order(true)
        .verify();
    assert_verified(&report, "max_age");
    // Nothing new was old enough to go: every new record is there.
    assert_eq!(report.lines_verified, 10 + 3 * 2 * 300, "{report}");
    look_alikes.assert_intact();
}

/// Archives that grow old while nobody rotates go at the next rotation, although the
/// lock file's record of the archives says no limit is near: its record of the oldest
/// archive says when.
#[test]
fn max_age_catches_archives_that_aged_since_the_last_rotation() {
    let policy = stamped(RotationPolicy {
        max_age: Some(Duration::from_secs(1)),
        ..RotationPolicy::default()
    });
    let mut log = Log::new(4 * 1024, 100_000, policy);
    let look_alikes = LookAlikes::plant(&log.path, true);
    log.run(0..3, 2, 200);
    assert!(log.rotations() > 5);
    let first_phase_end = now();
    // Older than 1 s at the next rotation: stamped at least 2 whole seconds before it.
    while now() < first_phase_end + 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second_phase_start = now();
    log.run(3..4, 1, 100);

    let archives = stamped_archives(&log.path);
    let second_phase_rotations = log.specs[3].saved_stats().rotations;
    assert!(second_phase_rotations > 0);
    assert_eq!(
        archives.len() as u64,
        second_phase_rotations,
        "only the new archives are left: {archives:?}"
    );
    assert!(
        archives
            .iter()
            .all(|archive| archive.stamp >= second_phase_start as i64),
        "{archives:?}"
    );
    let report = log.verifier().verify();
    assert_verified(&report, "aged");
    look_alikes.assert_intact();
}

/// Numbered names judge age by the last modification: the archives modified two days
/// and more ago go, the one modified an hour ago stays (renumbered), and so does
/// everything new; a timestamped name from the other naming stays whatever its stamp.
#[test]
fn max_age_deletes_numbered_archives_by_their_mtime() {
    let policy = RotationPolicy {
        max_age: Some(Duration::from_secs(DAY)),
        ..RotationPolicy::default()
    };
    let mut log = Log::new(4 * 1024, 100_000, policy);
    let look_alikes = LookAlikes::plant(&log.path, false);
    let now = now();
    for (index, age) in [(1, 3600), (2, 2 * DAY), (3, 3 * DAY), (4, 10 * DAY)] {
        let writer = WriterId {
            process: 100 + index,
            thread: 0,
        };
        log.plant_archive(&format!("app.log.{index}"), writer, 10, now - age);
    }
    log.run(0..3, 2, 300);

    let rotations = log.rotations();
    let archives = log.archives();
    assert_eq!(archives.len() as u64, rotations + 1, "{archives:?}");
    let report = log
        .verifier()
        .expect(
            WriterId {
                process: 101,
                thread: 0,
            },
            Expect::Exactly(10),
        )
        .check_rotation_points(false)
        .check_record_order(true)
        .verify();
    assert_verified(&report, "numbered max_age");
    assert_eq!(report.lines_verified, 10 + 3 * 2 * 300, "{report}");
    look_alikes.assert_intact();
}
