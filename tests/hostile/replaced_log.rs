//! The live file replaced under a writer that is about to rotate.
//!
//! An operator moves `app.log` away and puts a non-empty file of their own at the path.
//! Within the path-check interval the writer still has the moved file open; its next
//! event does not fit there, so it rotates, finds the path naming another file, follows
//! it, finds that one too full as well, and rotates it. The event must land whole in a
//! fresh `app.log`, with exact stats, and nothing may panic: not the writing thread, and
//! not a non-blocking writer's background thread, whose panic would lose its batch
//! silently.
//!
//! Each scenario runs in a child process (this test binary re-run with
//! `TSF_REPLACED_LOG_CHILD` set), so that a panic on any thread shows on its stderr and
//! in its exit status.

use crate::common;

use common::children::start_entry_env;
use std::fs::{self};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing_shared_file::{SharedFile, Stats};

const CHILD_ENV: &str = "TSF_REPLACED_LOG_CHILD";
const MAX_BYTES: u64 = 100;
/// Enough that no archive is ever deleted, so every file can be checked.
const MAX_FILES: usize = 100;
/// Every event is this long, so no two fit in one file.
const LINE_LEN: usize = 60;
/// How many events the non-blocking writer queues after the replacement.
const EVENTS_AFTER: usize = 8;
/// How long a child may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// Event `index` of the series `tag`: `LINE_LEN` bytes ending in a newline.
fn line(tag: &str, index: usize) -> String {
    let mut line = format!("{tag} event {index:02} ");
    while line.len() < LINE_LEN - 1 {
        line.push('.');
    }
    line.push('\n');
    line
}

/// What the operator puts at the log path: one line of 51 bytes, so that no 60-byte event
/// fits after it.
fn replacement() -> String {
    format!("{}\n", "o".repeat(50))
}

/// The scenario's paths: the log in `<dir>/logs`, alone, and the child's files in `<dir>`.
fn log_dir(dir: &Path) -> PathBuf {
    dir.join("logs")
}

fn replace_live_file(dir: &Path) {
    let logs = log_dir(dir);
    fs::rename(logs.join("app.log"), logs.join("moved.log")).unwrap();
    fs::write(logs.join("app.log"), replacement()).unwrap();
}

fn describe(stats: &Stats) -> String {
    format!(
        "events_written={} bytes_written={} rotations={} write_errors={} rotation_errors={} events_dropped={}",
        stats.events_written,
        stats.bytes_written,
        stats.rotations,
        stats.write_errors,
        stats.rotation_errors,
        stats.events_dropped
    )
}

// ---------------------------------------------------------------------------------------
// The child process.

/// Child side: `sync:<dir>` or `non-blocking:<dir>`. Writes one event, lets the operator
/// replace the file, writes more, and records the outcome in `<dir>/result`.
#[test]
fn replaced_log_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, dir) = spec.split_once(':').unwrap();
    let dir = Path::new(dir);
    let log = SharedFile::builder(log_dir(dir).join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        // The writer looks the path up only at its first write: every later one trusts
        // its handle, so the replacement is met by the rotation itself.
        .path_check_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let result = match mode {
        "sync" => {
            (&log).write_all(line("a", 0).as_bytes()).unwrap();
            replace_live_file(dir);
            let result = (&log).write_all(line("b", 0).as_bytes());
            format!("{:?}", result.map_err(|e| e.kind()))
        }
        "non-blocking" => {
            let (mut writer, guard) = log.non_blocking();
            writer.write_all(line("a", 0).as_bytes()).unwrap();
            // The first event must be in the file before it is moved.
            let deadline = Instant::now() + DEADLINE;
            while log.stats().events_written == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the first event was never written"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            replace_live_file(dir);
            for index in 0..EVENTS_AFTER {
                writer.write_all(line("b", index).as_bytes()).unwrap();
            }
            drop(guard);
            "queued".to_string()
        }
        other => panic!("unknown mode {other}"),
    };
    fs::write(
        dir.join("result"),
        format!("{result}\n{}\n", describe(&log.stats())),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// The test side.

/// Runs the child in `mode` to its end and checks that nothing panicked; returns what it
/// recorded.
fn run_child(dir: &Path, mode: &str) -> String {
    let spec = format!("{mode}:{}", dir.display());
    let entry = common::entry!(replaced_log_entry);
    let finished = start_entry_env(&entry, dir, "child", CHILD_ENV, spec)
        .with_deadline(DEADLINE)
        .finish();
    let stderr = finished.stderr;
    assert!(
        finished.status.success(),
        "the {mode} child failed ({}):\n{stderr}",
        finished.status
    );
    assert!(
        !stderr.contains("panicked"),
        "a thread of the {mode} child panicked:\n{stderr}"
    );
    // Nor is there anything to report: the rotation went as planned.
    assert_eq!(stderr, "", "the {mode} child reported something");
    fs::read_to_string(dir.join("result")).unwrap()
}

/// The files in the log directory, each with its contents.
fn log_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(log_dir(dir))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let contents = if name.ends_with(".lock") {
                String::new()
            } else {
                fs::read_to_string(entry.path()).unwrap()
            };
            (name, contents)
        })
        .collect();
    files.sort();
    files
}

/// `(name, contents)` of the moved file, the lock file, and the rotation chain that
/// `chain` lists newest first (the live file, then `app.log.1`, ...).
fn expected_files(chain: &[String]) -> Vec<(String, String)> {
    let mut files = vec![
        ("moved.log".to_string(), line("a", 0)),
        ("app.log.lock".to_string(), String::new()),
    ];
    for (index, contents) in chain.iter().enumerate() {
        let name = match index {
            0 => "app.log".to_string(),
            n => format!("app.log.{n}"),
        };
        files.push((name, contents.clone()));
    }
    files.sort();
    files
}

#[test]
fn an_event_that_meets_a_replaced_full_log_rotates_it_and_lands_whole() {
    let dir = tempfile::tempdir().unwrap();
    let result = run_child(dir.path(), "sync");
    assert_eq!(
        result,
        format!(
            "Ok(())\nevents_written=2 bytes_written={} rotations=1 write_errors=0 \
             rotation_errors=0 events_dropped=0\n",
            2 * LINE_LEN
        )
    );
    // The operator's file became the archive; the event has the fresh file to itself.
    assert_eq!(
        log_files(dir.path()),
        expected_files(&[line("b", 0), replacement()])
    );
}

#[test]
fn a_non_blocking_batch_that_meets_a_replaced_full_log_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let result = run_child(dir.path(), "non-blocking");
    let events = 1 + EVENTS_AFTER;
    assert_eq!(
        result,
        format!(
            "queued\nevents_written={events} bytes_written={} rotations={EVENTS_AFTER} \
             write_errors=0 rotation_errors=0 events_dropped=0\n",
            events * LINE_LEN
        )
    );
    // One event per file: the newest in app.log, the operator's file the oldest archive.
    let mut chain: Vec<String> = (0..EVENTS_AFTER).rev().map(|i| line("b", i)).collect();
    chain.push(replacement());
    assert_eq!(log_files(dir.path()), expected_files(&chain));
}
