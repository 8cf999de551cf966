//! The side lock file (`<log>.lock`) damaged while processes log: deleted while writers
//! run (a new one is created, and everyone still excludes everyone), or truncated (it is
//! grown back before its shared page is touched), or deleted every few milliseconds while
//! two processes rotate (no archive is ever renamed over, so no record is lost). Each is
//! reported once on stderr
//! (rate-limited, lines starting with `tracing-shared-file:`), never a panic or a hang.
//!
//! Cross-process scenarios re-run this test binary as writer processes: `worker_entry`
//! becomes a child when it finds its environment variable, and is a no-op test otherwise.
//! Every wait has a deadline, so a hang fails the test instead of stalling it.
//!
//! The documented limitation of a lock file deleted while held is shown by
//! `lock_file_overlap`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::children::{self, Fleet, WorkerConfig, WorkerOutcome};
use common::log_files::{KEEP_ALL, ROTATING_MAX_BYTES, archive, parse_record, wait_for_path};
use common::verifier::{Report, Verifier};
use common::workload::WriterId;
use tracing_shared_file::SharedFile;

/// Child side of the writer processes that `Fleet` starts.
#[test]
fn worker_entry() {
    children::worker_main();
}

/// The processes whose records each file of the report holds, for overlap checks.
fn writers_per_file(report: &Report) -> Vec<BTreeSet<u32>> {
    report
        .files
        .iter()
        .map(|file| {
            let text = fs::read_to_string(&file.path).unwrap_or_default();
            text.lines()
                .filter_map(parse_record)
                .map(|(writer, _)| writer.process)
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The lock file is deleted while writers run.

#[test]
fn a_deleted_lock_file_is_recreated_and_still_excludes_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("app.log");
    let lock = dir.path().join("logs").join("app.log.lock");
    let old = WorkerConfig {
        log: log.clone(),
        max_bytes: ROTATING_MAX_BYTES,
        max_files: KEEP_ALL,
        threads: 2,
        phases: vec![1500, 1500],
    };
    let new = WorkerConfig {
        phases: vec![3000],
        ..old.clone()
    };
    let old_processes = 0..3;
    let new_processes = 3..5;

    let mut fleet = Fleet::for_entry(&dir.path().join("sync"), &common::entry!(worker_entry));
    fleet.start(old_processes.clone(), &old);
    // Delete the lock file mid-run, once the writers have rotated a few times.
    wait_for_path(&archive(&log, 3));
    let old_lock_ino = fs::metadata(&lock).expect("the lock file exists").ino();
    fs::remove_file(&lock).expect("delete the lock file");
    let phase1_done = (0..3)
        .filter(|p| dir.path().join(format!("sync/phase1.{p}")).exists())
        .count();
    eprintln!("lock file deleted; {phase1_done} of 3 writers had finished phase 1");
    // Processes started after the deletion never saw the old lock file; they must still
    // exclude, and be excluded by, the ones that did. They start once every old process
    // has moved to the new lock file (or is idle between phases): one that was inside its
    // critical section at the moment of the deletion still holds only the old lock, and
    // nothing can make a newcomer wait for it. That window is shown on its own by
    // `a_lock_file_deleted_while_held_lets_one_write_overlap` below.
    for process in old_processes.clone() {
        let stderr = fleet.sync.join(format!("stderr.worker{process}"));
        let idle = fleet.sync.join(format!("phase1.{process}"));
        fleet.wait_until(&format!("worker {process} to notice"), || {
            idle.exists()
                || fs::read_to_string(&stderr).is_ok_and(|text| text.contains("lock file"))
        });
    }
    fleet.start(new_processes.clone(), &new);
    fleet.resume(old_processes.clone(), 1);
    let outcomes = fleet.finish();

    let report = verify_every_record(&outcomes, &log);
    assert!(report.archives >= 100, "too few rotations\n{report}");

    let relocked = fs::metadata(&lock).expect("the lock file exists again");
    assert!(relocked.is_file());
    assert_ne!(relocked.ino(), old_lock_ino, "a new lock file was created");

    // The old and the new processes really ran at the same time: some files hold lines of
    // both (with no torn line and every rotation point right, as verified above).
    let mixed = writers_per_file(&report)
        .iter()
        .filter(|processes| {
            processes.iter().any(|p| old_processes.contains(p))
                && processes.iter().any(|p| new_processes.contains(p))
        })
        .count();
    assert!(
        mixed > 0,
        "old and new writers never shared a file\n{report}"
    );

    assert_only_the_old_processes_reported_it(&outcomes, &old_processes, &lock);
}

/// Every record of every worker is there exactly once, whole, each file within
/// `max_bytes` and every rotation at the right point.
fn verify_every_record(outcomes: &[WorkerOutcome], log: &Path) -> Report {
    let verifier = outcomes.iter().fold(
        Verifier::new(log, ROTATING_MAX_BYTES, KEEP_ALL),
        |verifier, outcome| {
            verifier.expect_process(
                outcome.process,
                outcome.config.threads,
                outcome.config.total_per_thread(),
            )
        },
    );
    let report = verifier.verify();
    report.assert_ok();
    let total: u64 = outcomes.iter().map(WorkerOutcome::expected_events).sum();
    eprint!("{report}");
    assert_eq!(report.lines_verified, total, "{report}");
    assert_eq!((report.torn, report.lost, report.duplicated), (0, 0, 0));
    report
}

/// No write failed; each process that saw the lock file deleted reported it once, naming
/// it; those started after the deletion had nothing to report.
fn assert_only_the_old_processes_reported_it(
    outcomes: &[WorkerOutcome],
    old_processes: &std::ops::Range<u32>,
    lock: &Path,
) {
    for outcome in outcomes {
        assert_eq!(
            outcome.stat("write_errors"),
            0,
            "{}",
            outcome.finished.stderr
        );
        assert_eq!(outcome.stat("written"), outcome.expected_events());
        let reports = outcome.finished.reports();
        if old_processes.contains(&outcome.process) {
            assert_eq!(
                reports.len(),
                1,
                "worker {} must report the replaced lock file once:\n{}",
                outcome.process,
                outcome.finished.stderr
            );
            assert!(
                reports[0].contains("lock file")
                    && reports[0].contains(&lock.display().to_string()),
                "{}",
                reports[0]
            );
        } else {
            assert!(
                reports.is_empty(),
                "worker {} started after the deletion had nothing to report:\n{}",
                outcome.process,
                outcome.finished.stderr
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The lock file deleted again and again while two processes rotate: for a moment each
// locks a different file, and both may rotate at once. Renames never replace a name, so
// no archive is ever overwritten: a rotation that finds its target taken fails, is
// reported, and its event is appended to the live file anyway.

/// Small, so that the writers rotate all the time and every rotation renames many
/// archives: a deletion often lands while one of them is renaming.
const CHURN_MAX_BYTES: u64 = 2048;
/// Records per thread of each of the two processes.
const CHURN_LINES: u64 = 1_500;

/// Every line of the log's files, `app.log` and `app.log.N`, per record; `Err` with the
/// first line that is not an intact record, and with any other file beside them.
fn records_in_files(dir: &std::path::Path) -> Result<BTreeMap<(WriterId, u64), u64>, String> {
    let mut records = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let is_log = name == "app.log"
            || name
                .strip_prefix("app.log.")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if name == "app.log.lock" {
            continue;
        }
        if !is_log {
            return Err(format!("unexpected file {name}"));
        }
        let text = fs::read_to_string(dir.join(&name)).unwrap();
        for line in text.split_inclusive('\n') {
            let record = line.strip_suffix('\n').and_then(parse_record);
            let Some(record) = record else {
                return Err(format!("{name} holds a torn line: {line:?}"));
            };
            *records.entry(record).or_default() += 1;
        }
    }
    Ok(records)
}

/// Before the fix, two processes renumbering the archives at once (under split locks)
/// renamed archives onto one another, losing whole files of records that both writers
/// had counted as written.
#[test]
fn a_lock_file_deleted_under_rotating_writers_never_costs_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let log = logs.join("app.log");
    let lock = logs.join("app.log.lock");
    let config = WorkerConfig {
        log: log.clone(),
        max_bytes: CHURN_MAX_BYTES,
        max_files: KEEP_ALL,
        threads: 2,
        phases: vec![CHURN_LINES],
    };
    let processes = 0..2;
    let mut fleet = Fleet::for_entry(&dir.path().join("sync"), &common::entry!(worker_entry));
    fleet.start(processes.clone(), &config);
    // Deletes the lock file every 2 ms until both writers are done.
    let stats_files: Vec<_> = processes
        .clone()
        .map(|p| fleet.sync.join(format!("stats.{p}")))
        .collect();
    let mut deletions = 0;
    let mut last = Instant::now();
    fleet.wait_until("the writers to finish", || {
        if last.elapsed() >= Duration::from_millis(2) && fs::remove_file(&lock).is_ok() {
            deletions += 1;
            last = Instant::now();
        }
        stats_files.iter().all(|path| path.exists())
    });
    let outcomes = fleet.finish();
    assert!(
        deletions >= 10,
        "the lock file was deleted {deletions} times"
    );

    // Every record that the writers counted as written is in the files exactly once: a
    // rename onto an archive would have lost a whole file of them. A write may fail while
    // the lock file is missing (its event dropped, counted and reported), so the test
    // counts rather than lists the records each writer must have.
    let records = records_in_files(&logs).unwrap_or_else(|problem| panic!("{problem}"));
    let twice: Vec<_> = records.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "records found more than once: {twice:?}");
    let unexpected: Vec<_> = records
        .keys()
        .filter(|(writer, seq)| writer.process > 1 || writer.thread > 1 || *seq >= CHURN_LINES)
        .collect();
    assert!(
        unexpected.is_empty(),
        "records nobody wrote: {unexpected:?}"
    );
    let archives = fs::read_dir(&logs).unwrap().count() - 2;
    let mut rotation_errors = 0;
    for outcome in &outcomes {
        let (written, dropped) = (outcome.stat("written"), outcome.stat("dropped"));
        rotation_errors += outcome.stat("rotation_errors");
        assert_eq!(
            (written + dropped, outcome.stat("write_errors")),
            (outcome.expected_events(), dropped),
            "worker {}: every event is written or dropped (one failed write each)",
            outcome.process
        );
        let found = records
            .keys()
            .filter(|(writer, _)| writer.process == outcome.process)
            .count() as u64;
        assert_eq!(
            found, written,
            "worker {} counted {written} events as written ({dropped} dropped); the files \
             hold {found} of its records. {deletions} deletions, {archives} archives, \
             {rotation_errors} rotation errors so far. Reports:\n{}",
            outcome.process, outcome.finished.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------
// The lock file truncated while a process logs: its shared page would fault if touched
// past the end of the file.

#[test]
fn a_truncated_lock_file_is_grown_back_before_its_page_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path).build().unwrap();
    (&log).write_all(b"before\n").unwrap();
    for _ in 0..3 {
        // `>` in a shell: the file keeps its inode and loses its length.
        File::create(dir.path().join("app.log.lock")).unwrap();
        (&log).write_all(b"after\n").unwrap();
        assert!(fs::metadata(dir.path().join("app.log.lock")).unwrap().len() >= 4096);
    }
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "before\nafter\nafter\nafter\n"
    );
}
