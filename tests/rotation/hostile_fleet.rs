//! A fleet that is not a copy of one process, in a directory full of others' files:
//! processes that live a few milliseconds, synchronous and non-blocking ones, killed at
//! random moments while they rotate, with timestamped names and compression. Every line
//! a process finished writing is kept once (a killed one loses at most its last, or what
//! its non-blocking queue held), no
//! temporary file of a dead process survives the next `build()`, no unrelated file is
//! touched, and retention by short-lived processes keeps exactly the newest archives.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, entry};
use common::verifier::{Expect, Verifier};
use common::workload::{RotationPolicy, WriteMode, WriterId, WriterSpec, run_writer};
use tracing_shared_file::{Naming, SharedFile};

const UNRELATED: usize = 2_000;

#[test]
fn fleet_worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        run_writer(&spec);
    }
}

fn spawn_worker(spec: &WriterSpec) -> Child {
    spawn_worker_of(&std::env::current_exe().unwrap(), spec)
}

/// [`spawn_worker`] from the test binary at `exe`: this one, or another version's.
fn spawn_worker_of(exe: &Path, spec: &WriterSpec) -> Child {
    // Another version's binary may have been built from this file as a test binary of its
    // own, where the entry has no module path: `TSF_OLD_FLEET_ENTRY` names it there.
    let entry = if exe == std::env::current_exe().unwrap() {
        entry!(fleet_worker_entry)
    } else {
        std::env::var("TSF_OLD_FLEET_ENTRY").unwrap_or_else(|_| "fleet_worker_entry".into())
    };
    let mut command = Command::new(exe);
    command.args(["--exact", &entry, "--nocapture", "--test-threads=1"]);
    spec.apply(&mut command);
    common::spawn_retrying(command.stdout(Stdio::null())).expect("spawn worker")
}

fn unrelated_files(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..UNRELATED {
        std::fs::write(dir.join(format!("other-{i:05}.log")), i.to_string()).unwrap();
    }
}

fn untouched(dir: &Path) {
    for i in 0..UNRELATED {
        let path = dir.join(format!("other-{i:05}.log"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), i.to_string());
    }
}

/// A scratch directory with the unrelated files in `logs/`, and a `sync/` directory whose
/// `go` lets workers start at once; and the log's path.
fn fleet_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    unrelated_files(&dir.path().join("logs"));
    let sync_dir = dir.path().join("sync");
    std::fs::create_dir(&sync_dir).unwrap();
    std::fs::write(sync_dir.join("go"), b"").unwrap();
    let log = dir.path().join("logs/app.log");
    (dir, sync_dir, log)
}

/// Hidden temporary files in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_mixed_fleet_killed_while_rotating_keeps_every_finished_line_once() {
    const KILLS: usize = 20;
    const LINES: u64 = 1_500;
    let (dir, sync_dir, log) = fleet_dir();
    let logs = dir.path().join("logs");
    let policy = RotationPolicy {
        timestamped: true,
        compress: true,
        ..RotationPolicy::default()
    };
    let spec_for = |process: u32| WriterSpec {
        max_bytes: 4 * 1024,
        process,
        lines_per_thread: LINES,
        acknowledge: true,
        policy,
        mode: if process.is_multiple_of(2) {
            WriteMode::Tracing
        } else {
            WriteMode::NonBlocking
        },
        ..WriterSpec::new(log.clone(), sync_dir.clone())
    };
    let mut specs = Vec::new();
    let mut killed = Vec::new();
    let mut running: Vec<(u32, Child)> = Vec::new();
    let start = |specs: &mut Vec<WriterSpec>, running: &mut Vec<(u32, Child)>| {
        let spec = spec_for(specs.len() as u32);
        running.push((spec.process, spawn_worker(&spec)));
        specs.push(spec);
    };
    for _ in 0..4 {
        start(&mut specs, &mut running);
    }
    let mut pace = 7u64;
    while killed.len() < KILLS {
        pace = pace * 31 % 23;
        std::thread::sleep(Duration::from_millis(5 + pace));
        let (process, mut child) = running.remove(killed.len() % running.len());
        let _ = child.kill();
        let status = child.wait().unwrap();
        if common::children::was_killed(&status) {
            killed.push(process);
        } else {
            assert!(status.success(), "worker {process} failed: {status}");
        }
        start(&mut specs, &mut running);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for (process, child) in &mut running {
        let status = common::children::wait_with_deadline(child, deadline);
        assert!(status.success(), "survivor {process} failed: {status}");
    }
    // The next process to start cleans up what the dead left half-made.
    drop(
        SharedFile::builder(&log)
            .naming(Naming::Timestamped)
            .compress(true)
            .build()
            .unwrap(),
    );
    let left: Vec<String> = temporaries(&logs)
        .into_iter()
        .filter(|name| !name.contains(&format!(".{}.", std::process::id())))
        .collect();
    assert!(left.is_empty(), "temporaries of dead processes: {left:?}");
    untouched(&logs);
    let mut verifier = Verifier::new(&log, 4 * 1024, 100_000)
        .timestamped(true)
        .check_rotation_points(false)
        .allow_gaps(true);
    for spec in &specs {
        let writer = WriterId {
            process: spec.process,
            thread: 0,
        };
        let expect = if killed.contains(&spec.process) {
            // A non-blocking writer acknowledges what it queued, not what was written:
            // of a killed one, only that no record is missing before its last is known.
            let acknowledged = match spec.mode {
                WriteMode::NonBlocking => 0,
                _ => spec.acknowledged(writer),
            };
            Expect::Prefix { acknowledged }
        } else {
            Expect::Exactly(LINES)
        };
        verifier = verifier.expect(writer, expect);
    }
    let report = verifier.verify();
    println!("{} kills; {report}", killed.len());
    report.assert_ok();
    assert!(report.archives > 10, "rotation ran throughout\n{report}");
}

/// Twelve processes in waves of four, each writing `lines` records and exiting, with
/// `max_files(4)`; the binary for each from `exe_of`. Every process's newest records are
/// kept, and exactly four archives.
fn short_lived_fleet(timestamped: bool, lines: u64, exe_of: &dyn Fn(&WriterSpec) -> PathBuf) {
    const MAX_FILES: usize = 4;
    let (dir, sync_dir, log) = fleet_dir();
    let specs: Vec<WriterSpec> = (0..12)
        .map(|process| WriterSpec {
            max_bytes: 2 * 1024,
            max_files: MAX_FILES,
            process,
            lines_per_thread: lines,
            policy: RotationPolicy {
                timestamped,
                compress: timestamped,
                ..RotationPolicy::default()
            },
            mode: if process % 3 == 0 {
                WriteMode::NonBlocking
            } else {
                WriteMode::Tracing
            },
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for wave in specs.chunks(4) {
        let mut children: Vec<Child> = wave
            .iter()
            .map(|spec| spawn_worker_of(&exe_of(spec), spec))
            .collect();
        for child in &mut children {
            assert!(common::children::wait_with_deadline(child, deadline).success());
        }
    }
    untouched(&dir.path().join("logs"));
    let mut verifier = Verifier::new(&log, 2 * 1024, MAX_FILES).timestamped(timestamped);
    for spec in &specs {
        let writer = WriterId {
            process: spec.process,
            thread: 0,
        };
        verifier = verifier.expect(writer, Expect::Newest { total: lines });
    }
    let report = verifier.verify();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with("other-"))
        .collect();
    names.sort();
    let found = format!("timestamped: {timestamped}\n{report}\n{names:?}");
    assert!(report.is_ok(), "{found}");
    assert_eq!(report.archives, MAX_FILES, "{found}");
}

#[test]
fn short_lived_processes_rotating_among_others_files_keep_exactly_the_newest_archives() {
    let this = std::env::current_exe().unwrap();
    for timestamped in [true, false] {
        short_lived_fleet(timestamped, 150, &|_| this.clone());
    }
}

/// The binary of this test file built from another version of the crate, to mix old and
/// new processes on one log.
const OLD_BINARY_ENV: &str = "TSF_OLD_FLEET_BINARY";

/// Old and new versions on one log: every other process runs the test binary named by
/// `TSF_OLD_FLEET_BINARY` (this file built from an earlier commit, whose worker entry
/// `TSF_OLD_FLEET_ENTRY` names if it is not `fleet_worker_entry`; `TSF_NEW_FLEET_BINARY`
/// replaces this one, to compare with one version alone). Retention stays exact and
/// every line is kept.
#[test]
#[ignore = "needs another version's binary: set TSF_OLD_FLEET_BINARY"]
fn old_and_new_versions_rotating_one_log_keep_exactly_the_newest_archives() {
    let old = PathBuf::from(std::env::var_os(OLD_BINARY_ENV).expect("TSF_OLD_FLEET_BINARY"));
    let new = std::env::var_os("TSF_NEW_FLEET_BINARY")
        .map_or_else(|| std::env::current_exe().unwrap(), PathBuf::from);
    for timestamped in [true, false] {
        short_lived_fleet(timestamped, 300, &|spec| match spec.process % 2 {
            0 => old.clone(),
            _ => new.clone(),
        });
    }
}
