//! Processes that disagree share one log without a rotation storm and without losing a
//! line that the limits they agree on keep: other periods, clocks ahead and behind
//! (libfaketime), the other naming, other sizes in many short-lived processes.
//!
//! - The live file keeps the schedule it was opened under: two processes with other
//!   periods, or with clocks two hours apart, rotate at most twice in a one-second run.
//! - Numbered and timestamped archives count together: at most `max_files` archives in
//!   all, and every writer's surviving lines are its newest, each once.
//! - A disagreement is reported once per lock file, not once per process.
//!
//! Every writer is a real process: this test binary, re-run for `fleet::writer_entry`
//! with `TSF_FLEET_CHILD` set, under `faketime` for a clock that is off. Without
//! `faketime` (see `.ci/install-test-tools`) the clock cases print "skipped" and pass.

use crate::common;
use crate::fleet;

use common::verifier::{Expect, Verifier};
use common::workload::WriterId;
use fleet::{Clock, Job, LARGE, faketime_available, files_of, lines_by_writer, run_together};

/// Two processes, 50 lines each, 20 ms apart: every line once, and at most two rotations
/// (one for the disagreement, one if the second crosses a boundary).
fn two_in_one_second(first: Job, second: Job) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let (rotations, reports) = run_together(&log, &[first.clone(), second.clone()]);
    assert!(rotations <= 2, "{rotations} rotations in one second");
    Verifier::new(&log, LARGE, 5)
        .timestamped(true)
        .check_rotation_points(false)
        .check_record_order(true)
        .expect_process(first.process, 1, first.lines)
        .expect_process(second.process, 1, second.lines)
        .verify()
        .assert_ok();
    reports
}

#[test]
fn other_periods_keep_the_live_files_schedule_with_no_storm() {
    let minute = Job::new(1);
    let hourly = Job {
        period: 3600,
        ..Job::new(2)
    };
    let reports = two_in_one_second(minute, hourly);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    for word in [
        "rotate_every",
        "Minute",
        "Every(3600 s)",
        "keeps the schedule",
    ] {
        assert!(report.contains(word), "{word} missing from: {report}");
    }
}

#[test]
fn a_clock_two_hours_ahead_rotates_once_at_most() {
    if !faketime_available() {
        return;
    }
    let ahead = Job {
        clock: Clock::Offset("+2h"),
        ..Job::new(2)
    };
    let reports = two_in_one_second(Job::new(1), ahead);
    assert_eq!(reports, Vec::<String>::new());
}

#[test]
fn a_clock_two_hours_behind_rotates_once_at_most() {
    if !faketime_available() {
        return;
    }
    let behind = Job {
        clock: Clock::Offset("-2h"),
        ..Job::new(2)
    };
    let reports = two_in_one_second(Job::new(1), behind);
    assert_eq!(reports, Vec::<String>::new());
}

#[test]
fn numbered_and_timestamped_archives_are_retired_together_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let job = |process, timestamped| Job {
        lines: 400,
        gap_ms: 0,
        max_bytes: 2048,
        max_files: 3,
        timestamped,
        period: 0,
        ..Job::new(process)
    };
    let (rotations, reports) = run_together(&log, &[job(1, false), job(2, true)]);
    assert!(
        rotations > 3,
        "too few rotations to test retention: {rotations}"
    );
    let (files, archives) = files_of(&log);
    assert!(archives.len() <= 3, "more than max_files: {archives:?}");
    // Each writer's surviving lines are its newest, once each: nothing newer was deleted
    // while something older was kept, whichever naming held it.
    for (process, mut seqs) in lines_by_writer(&files) {
        seqs.sort_unstable();
        let first = seqs[0];
        assert_eq!(
            seqs,
            (first..400).collect::<Vec<_>>(),
            "writer {process}: {archives:?}"
        );
    }
    let naming: Vec<&String> = reports.iter().filter(|r| r.contains("naming")).collect();
    assert_eq!(naming.len(), 1, "{reports:#?}");
    assert!(naming[0].contains("Numbered") && naming[0].contains("Timestamped"));
}

#[test]
fn fifty_short_jobs_report_their_disagreement_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let jobs: Vec<Job> = (0..50)
        .map(|process| Job {
            lines: 5,
            gap_ms: 0,
            max_bytes: if process % 2 == 0 { 65_536 } else { 16_384 },
            max_files: 1000,
            period: 0,
            ..Job::new(process)
        })
        .collect();
    // Cron-style: ten at a time, each living a few milliseconds.
    let mut reports = Vec::new();
    for wave in jobs.chunks(10) {
        reports.extend(run_together(&log, wave).1);
    }
    assert_eq!(reports.len(), 1, "{reports:#?}");
    for value in ["max_bytes", "65536", "16384", "the smaller rules"] {
        assert!(
            reports[0].contains(value),
            "{value} missing: {}",
            reports[0]
        );
    }
    let mut verifier = Verifier::new(&log, 65_536, 1000)
        .timestamped(true)
        .check_rotation_points(false);
    for job in &jobs {
        verifier = verifier.expect(
            WriterId {
                process: job.process,
                thread: 0,
            },
            Expect::Exactly(job.lines),
        );
    }
    verifier.verify().assert_ok();
}

/// Clocks 40 minutes behind and ahead of a third, all stamping archives by size, all
/// with `max_files(4)`: never more than 4 archives are left, and no line is in two files.
#[test]
fn clocks_forty_minutes_apart_keep_max_files_archives_at_most() {
    if !faketime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let job = |process, clock| Job {
        lines: 400,
        gap_ms: 0,
        max_bytes: 2048,
        max_files: 4,
        period: 0,
        clock,
        ..Job::new(process)
    };
    let jobs = [
        job(1, Clock::Real),
        job(2, Clock::Offset("-40m")),
        job(3, Clock::Offset("+40m")),
    ];
    let (rotations, reports) = run_together(&log, &jobs);
    assert!(
        rotations > 4,
        "too few rotations to test retention: {rotations}"
    );
    let (files, archives) = files_of(&log);
    assert!(archives.len() <= 4, "more than max_files: {archives:?}");
    // Stamps under an hour apart are trusted, so which archives are the oldest is the
    // clocks' view (docs/rotation.md): each line is whole and once, but a writer's
    // surviving lines need not be its newest.
    for (process, mut seqs) in lines_by_writer(&files) {
        let count = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), count, "writer {process} has a line twice");
    }
    assert_eq!(reports, Vec::<String>::new());
}
