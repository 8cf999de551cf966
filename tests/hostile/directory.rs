//! The log directory removed (`rm -rf`) while writers run, then recreated by the library
//! or by the operator: the writers go on, every record written after the last removal is
//! there once and intact, and the vanished lock file and any dropped event are reported
//! on stderr (rate-limited, lines starting with `tracing-shared-file:`).
//!
//! The writers are this test binary run again as child processes: `worker_entry` becomes
//! a child when it finds its environment variable, and is a no-op test otherwise. Every
//! wait has a deadline, so a hang fails the test instead of stalling it.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::children::{self, Fleet, WorkerConfig, WorkerOutcome};
use common::log_files::{KEEP_ALL, ROTATING_MAX_BYTES, archive, parse_record, wait_for_path};
use common::verifier::{Expect, Verifier};
use common::workload::WriterId;

/// Child side of the writer processes that `Fleet` starts.
#[test]
fn worker_entry() {
    children::worker_main();
}

/// The highest `N` of the existing `<log>.N` files, 0 if there is none.
fn highest_archive(log: &Path) -> usize {
    let prefix = format!("{}.", log.file_name().unwrap().to_str().unwrap());
    fs::read_dir(log.parent().unwrap())
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name().into_string().ok()?;
                    name.strip_prefix(&prefix)?.parse().ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// `rm -rf`, repeated while the writers recreate files in the directory faster than it
/// empties it (as an operator would retry). Returns how many attempts it took.
fn rm_rf(dir: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match fs::remove_dir_all(dir) {
            Ok(()) => return attempts,
            Err(e) => assert!(
                Instant::now() < deadline,
                "cannot remove {}: {e}",
                dir.display()
            ),
        }
    }
}

#[test]
fn a_removed_log_directory_is_recreated_and_writers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let log = logs.join("app.log");
    let config = WorkerConfig {
        log: log.clone(),
        max_bytes: ROTATING_MAX_BYTES,
        max_files: KEEP_ALL,
        threads: 2,
        phases: vec![1500, 1000, 1000],
    };
    let processes = 0..3;
    let started = Instant::now();
    let mut fleet = Fleet::for_entry(&dir.path().join("sync"), &common::entry!(worker_entry));
    fleet.start(processes.clone(), &config);

    // First removal: the library recreates the directory on its own.
    wait_for_path(&archive(&log, 2));
    let first = rm_rf(&logs);
    fleet.resume(processes.clone(), 1);
    // Second removal once the next phase is well under way: the operator recreates the
    // directory at once.
    wait_for_path(&archive(&log, highest_archive(&log) + 4));
    let second = rm_rf(&logs);
    match fs::create_dir(&logs) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => panic!("mkdir: {e}"),
        _ => {}
    }
    fleet.resume(processes.clone(), 2);
    let outcomes = fleet.finish();
    eprintln!("rm -rf took {first} and {second} attempts");

    let seen = records_in(&logs);
    let gone_total = assert_every_record_after_the_last_removal(&outcomes, &seen, &config);
    assert_the_verifier_agrees(&outcomes, &seen, &log, gone_total);
    assert!(logs.join("app.log.lock").is_file(), "the lock file is back");
    assert_counted_and_reported(&outcomes, &logs, started);
}

/// How many times each record of each writer is in the files of `logs`; fails on a torn
/// or garbled line.
fn records_in(logs: &Path) -> BTreeMap<WriterId, BTreeMap<u64, u32>> {
    let mut seen: BTreeMap<WriterId, BTreeMap<u64, u32>> = BTreeMap::new();
    let mut garbled = Vec::new();
    for entry in fs::read_dir(logs).expect("the directory exists again") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "lock") {
            continue;
        }
        for line in fs::read_to_string(&path).unwrap().split_inclusive('\n') {
            match line.strip_suffix('\n').and_then(parse_record) {
                Some((writer, seq)) => {
                    *seen.entry(writer).or_default().entry(seq).or_default() += 1
                }
                None => garbled.push(format!("{}: {line:?}", path.display())),
            }
        }
    }
    assert!(garbled.is_empty(), "torn or garbled lines: {garbled:#?}");
    seen
}

/// What survives is, for every writer, exactly the records it wrote after the last
/// removal: a run without gaps that ends with its last record. Returns how many records
/// the removals took, over all writers.
fn assert_every_record_after_the_last_removal(
    outcomes: &[WorkerOutcome],
    seen: &BTreeMap<WriterId, BTreeMap<u64, u32>>,
    config: &WorkerConfig,
) -> u64 {
    let mut gone_total = 0;
    for outcome in outcomes {
        for writer in outcome.writers() {
            let total = outcome.config.total_per_thread();
            let seqs = seen.get(&writer).cloned().unwrap_or_default();
            let first_present = *seqs.keys().next().unwrap_or(&total);
            let duplicated: Vec<_> = seqs.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                duplicated.is_empty(),
                "{writer:?} duplicated: {duplicated:?}"
            );
            assert_eq!(
                seqs.keys().copied().collect::<Vec<_>>(),
                (first_present..total).collect::<Vec<_>>(),
                "{writer:?}: records after the last removal must all be there, up to the last"
            );
            let after_last_removal = total - config.phases[2];
            assert!(
                first_present <= after_last_removal,
                "{writer:?} lost records written after the last removal (first present {first_present})"
            );
            eprintln!("{writer:?}: first record present {first_present} of {total}");
            gone_total += first_present;
        }
    }
    gone_total
}

/// The shared verifier agrees: nothing torn, duplicated or unexpected, every file within
/// limits and every rotation in the new directory at the right point. Its only
/// complaints are the records the operator deleted, one per writer that lost any.
fn assert_the_verifier_agrees(
    outcomes: &[WorkerOutcome],
    seen: &BTreeMap<WriterId, BTreeMap<u64, u32>>,
    log: &Path,
    gone_total: u64,
) {
    let report = outcomes
        .iter()
        .flat_map(WorkerOutcome::writers)
        .fold(
            Verifier::new(log, ROTATING_MAX_BYTES, KEEP_ALL),
            |verifier, writer| verifier.expect(writer, Expect::Prefix { acknowledged: 0 }),
        )
        .verify();
    eprint!("{report}");
    assert_eq!(report.torn, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(report.unexpected, 0, "{report}");
    let breach = "writers did not exclude each other after the removal";
    assert_eq!(
        report.oversized, 0,
        "a file is over max_bytes: {breach}\n{report}"
    );
    assert_eq!(report.lost, gone_total, "{report}");
    let writers_with_losses = seen
        .values()
        .filter(|seqs| seqs.keys().next().is_some_and(|&first| first > 0))
        .count();
    assert_eq!(
        report.problems.len(),
        writers_with_losses,
        "a rotation happened at the wrong point: {breach}\n{report}"
    );
    assert!(report.archives >= 20, "{report}");
}

/// Events can only be dropped in the instants when the directory vanished between
/// recreating it and opening the file; each is counted and the writer goes on. Each kind
/// of report is rate-limited on its own: at most one per 10 seconds.
fn assert_counted_and_reported(outcomes: &[WorkerOutcome], logs: &Path, started: Instant) {
    for outcome in outcomes {
        assert_eq!(
            outcome.stat("written") + outcome.stat("dropped"),
            outcome.expected_events()
        );
        let reports = outcome.finished.reports();
        let allowed = 1 + started.elapsed().as_secs() as usize / 10;
        let lock_path = logs.join("app.log.lock").display().to_string();
        let lock_notices = reports
            .iter()
            .filter(|r| r.contains("was deleted or replaced") && r.contains(&lock_path))
            .count();
        let write_failures = reports
            .iter()
            .filter(|r| r.contains("cannot write to log file"))
            .count();
        let stderr = &outcome.finished.stderr;
        assert!(
            (1..=allowed).contains(&lock_notices),
            "worker {} must report the vanished lock file, rate-limited:\n{stderr}",
            outcome.process
        );
        let dropped = outcome.stat("dropped") > 0;
        assert!(
            (usize::from(dropped)..=allowed).contains(&write_failures),
            "worker {}: a dropped event is reported, rate-limited:\n{stderr}",
            outcome.process
        );
        assert!(reports.len() <= 3 * allowed, "{stderr}");
    }
}
