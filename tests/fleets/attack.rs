//! The rule "the live file keeps the schedule it was opened under until it rotates",
//! attacked with real processes: three periods at once, a period changed while eight
//! processes log, a clock stepped back or ahead mid-run (libfaketime reading an offset
//! from a file the test rewrites), and archives stamped hours ahead of the clock.
//!
//! The bound on rotations is exact: at most one per boundary, in the run, of any schedule
//! in the fleet (the fresh file's period is the rotator's, and ends at its next boundary),
//! plus one for the first file. Every line is found once (the `common` verifier), so no
//! archive name was given twice. Archives stamped more than an hour ahead of the clock
//! are retired first: with a clock set back, the disk does not fill.
//!
//! With `TSF_OLD_FLEET_BINARY` naming a build of this test binary against an older
//! version of the crate (one whose page has no schedule words, such as commit 6320105:
//! copy this `tests/` into a checkout of it and run `cargo test --no-run --test fleets`
//! there), an old and a new process share a log
//! (`cargo test --test fleets attack::an_older_version`); without it, that test says it
//! skips.

use crate::common;
use crate::fleet;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::verifier::Verifier;
use fleet::{Clock, Job, LARGE, faketime_available, files_of, lines_by_writer, run_together};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The distinct boundaries of the `periods` (seconds) that fall in `from..=to`.
fn boundaries(periods: &[u64], from: u64, to: u64) -> usize {
    let mut all = BTreeSet::new();
    for &period in periods {
        all.extend((from / period + 1..=to / period).map(|k| k * period));
    }
    all.len()
}

/// A job of `lines` lines 20 ms apart, rotating every `period` seconds.
fn every(process: u32, period: u64, lines: u64) -> Job {
    Job {
        lines,
        period,
        max_files: 1000,
        ..Job::new(process)
    }
}

/// Every line of `jobs` once, in the files of `log`.
fn verify(log: &Path, jobs: &[Job]) {
    let mut verifier = Verifier::new(log, LARGE, 1000)
        .timestamped(true)
        .check_rotation_points(false);
    for job in jobs {
        verifier = verifier.expect_process(job.process, 1, job.lines);
    }
    verifier.verify().assert_ok();
}

#[test]
fn three_periods_at_once_rotate_at_most_once_per_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let jobs = [every(1, 2, 300), every(2, 3, 300), every(3, 5, 300)];
    let from = unix_now();
    let (rotations, reports) = run_together(&log, &jobs);
    let bound = boundaries(&[2, 3, 5], from, unix_now()) as u64 + 1;
    assert!(rotations <= bound, "{rotations} rotations, bound {bound}");
    assert!(
        rotations >= 1,
        "no rotation in six seconds of two-second periods"
    );
    verify(&log, &jobs);
    // Three option sets, three pairs at most: each reported once.
    assert!((1..=3).contains(&reports.len()), "{reports:#?}");
}

#[test]
fn a_period_changed_while_eight_processes_log_causes_no_storm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let staying: Vec<Job> = (0..4).map(|p| every(p, 2, 300)).collect();
    let leaving: Vec<Job> = (4..8).map(|p| every(p, 2, 150)).collect();
    let arriving: Vec<Job> = (8..12).map(|p| every(p, 3, 150)).collect();
    let from = unix_now();
    // A rolling deploy: four workers with the old period leave and four with the new one
    // take their place, while four more with the old period log throughout.
    let staying_run: Vec<_> = staying.iter().map(|job| fleet::spawn(&log, job)).collect();
    let (mut rotations, mut reports) = run_together(&log, &leaving);
    let (more, arriving_reports) = run_together(&log, &arriving);
    rotations += more;
    reports.extend(arriving_reports);
    for done in staying_run.into_iter().map(fleet::Running::finish) {
        rotations += done.rotations;
        reports.extend(done.reports);
    }
    let bound = boundaries(&[2, 3], from, unix_now()) as u64 + 1;
    assert!(rotations <= bound, "{rotations} rotations, bound {bound}");
    let all: Vec<Job> = [staying, leaving, arriving].concat();
    verify(&log, &all);
    let periods: Vec<&String> = reports
        .iter()
        .filter(|r| r.contains("rotate_every"))
        .collect();
    assert_eq!(periods.len(), 1, "{reports:#?}");
}

/// Two writers with two-second periods; the second's clock is stepped by `step` after
/// two seconds.
fn stepped_mid_run(step: &str) -> (u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let offset = dir.path().join("offset");
    fs::write(&offset, "+0\n").unwrap();
    let jobs = [
        every(1, 2, 300),
        Job {
            clock: Clock::SteppedBy(offset.clone()),
            ..every(2, 2, 300)
        },
    ];
    let from = unix_now();
    let running: Vec<_> = jobs.iter().map(|job| fleet::spawn(&log, job)).collect();
    std::thread::sleep(Duration::from_secs(2));
    fs::write(&offset, format!("{step}\n")).unwrap();
    let done: Vec<_> = running.into_iter().map(fleet::Running::finish).collect();
    let to = unix_now();
    verify(&log, &jobs);
    for done in &done {
        assert_eq!(done.reports, Vec::<String>::new());
    }
    (
        done[0].rotations,
        done[1].rotations,
        boundaries(&[2], from, to) as u64,
    )
}

#[test]
fn a_clock_stepped_back_mid_run_never_rotates_into_its_past() {
    if !faketime_available() {
        return;
    }
    let (real, stepped, bound) = stepped_mid_run("-2h");
    // The stepped-back clock finds every recorded period in its future: it rotates only
    // before the step, and the two together no more than the boundaries allow.
    assert!(
        real + stepped <= bound + 1,
        "{real} + {stepped}, bound {bound}"
    );
}

#[test]
fn a_clock_stepped_ahead_mid_run_rotates_once_for_the_jump() {
    if !faketime_available() {
        return;
    }
    let (real, stepped, bound) = stepped_mid_run("+2h");
    // Once for the jump, then at its own boundaries, which the real clock finds in its
    // future: the real clock stops rotating.
    assert!(
        real + stepped <= 2 * bound + 2,
        "{real} + {stepped}, bound {bound}"
    );
    assert!(real <= bound / 2 + 2, "the real clock rotated {real} times");
}

#[test]
fn archives_stamped_hours_ahead_are_retired_first_so_the_disk_cannot_fill() {
    if !faketime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let small = |process, max_files, clock| Job {
        lines: 200,
        gap_ms: 0,
        max_bytes: 1024,
        max_files,
        period: 0,
        clock,
        ..Job::new(process)
    };
    // A clock three hours ahead leaves archives stamped three hours ahead; then the
    // clock is right again (a process with the right clock takes over).
    let (ahead_rotations, _) = run_together(&log, &[small(1, 1000, Clock::Offset("+3h"))]);
    assert!(ahead_rotations >= 10, "{ahead_rotations}");
    let (_, before) = files_of(&log);
    assert_eq!(before.len() as u64, ahead_rotations);
    let (rotations, reports) = run_together(&log, &[small(2, 3, Clock::Real)]);
    assert!(rotations >= 4, "{rotations}");
    let (files, archives) = files_of(&log);
    assert!(archives.len() <= 3, "{archives:?}");
    // Every archive left is stamped by the right clock: the ones stamped ahead went first.
    let latest = common::verifier::archive_stamp(unix_now() as i64 + 3600);
    for archive in &archives {
        let stamp = archive.trim_start_matches("app.log.");
        assert!(stamp[..20] <= latest[..], "{archive} kept, {archives:?}");
    }
    // And the right clock's newest lines are all there, each once.
    let mut seqs = lines_by_writer(&files).remove(&2).unwrap();
    seqs.sort_unstable();
    assert_eq!(seqs, (seqs[0]..200).collect::<Vec<_>>());
    assert_eq!(reports.len(), 1, "max_files differs: {reports:#?}");
}

/// An older version and this one, with other periods, on one page: the older one keeps
/// its period in words this version never writes, and this one its schedule in words the
/// older never reads, so neither makes the other rotate.
#[test]
fn an_older_version_with_another_period_causes_no_storm() {
    let Some(old) = std::env::var_os("TSF_OLD_FLEET_BINARY") else {
        eprintln!("skipped: set TSF_OLD_FLEET_BINARY to an older build of this test binary");
        return;
    };
    for (old_period, new_period) in [(60, 3600), (3600, 60), (60, 60)] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let jobs = [
            Job {
                binary: Some(old.clone().into()),
                period: old_period,
                ..Job::new(1)
            },
            Job {
                period: new_period,
                ..Job::new(2)
            },
        ];
        let (rotations, _) = run_together(&log, &jobs);
        assert!(
            rotations <= 2,
            "{old_period} {new_period}: {rotations} rotations"
        );
        verify(&log, &jobs);
    }
}

/// More option sets than the lock file remembers reports of: each process still reports
/// at most once, never at every write.
#[test]
fn twelve_option_sets_report_at_most_once_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let jobs: Vec<Job> = (0..12)
        .map(|process| Job {
            lines: 100,
            gap_ms: 1,
            max_bytes: 1 << (20 + process),
            period: 0,
            ..Job::new(process)
        })
        .collect();
    let (_, reports) = run_together(&log, &jobs);
    assert!(
        (1..=jobs.len()).contains(&reports.len()),
        "{} reports: {reports:#?}",
        reports.len()
    );
    verify(&log, &jobs);
}

/// Every clock set back (NTP correcting a clock that ran two hours ahead): the live file's
/// recorded period now lies in the future, so the file is kept, and rotates by size
/// only, until the clock reaches the recorded end; nothing is named twice or lost.
#[test]
fn a_clock_set_back_keeps_the_file_until_it_reaches_the_recorded_end() {
    if !faketime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let offset = dir.path().join("offset");
    fs::write(&offset, "+2h\n").unwrap();
    let job = Job {
        clock: Clock::SteppedBy(offset.clone()),
        ..every(1, 2, 200)
    };
    let running = fleet::spawn(&log, &job);
    std::thread::sleep(Duration::from_secs(1));
    fs::write(&offset, "+0\n").unwrap();
    let done = running.finish();
    // At most the one boundary of the first second; none in the three after the step.
    assert!(done.rotations <= 1, "{} rotations", done.rotations);
    verify(&log, &[job]);
}
