//! Processes that share one log file with different options.
//!
//! Rotation never deletes an archive while keeping an older one: a process with a smaller
//! `max_files` than the archives on disk shifts the whole run of them and deletes the
//! oldest beyond its own `max_files`. And a process whose `max_files` or `max_bytes`
//! differs from the options recorded in the lock file by an earlier process says so,
//! once, on stderr.
//!
//! Each configuration runs in its own writer process (this test binary, re-run with
//! `TSF_MIXED_CHILD` set), one after the other. Every line is `line NNNN\n` (10 bytes)
//! and `max_bytes` is a multiple of that, so which lines each file holds is known exactly.

use crate::common;

use common::children::{Finished, start_entry_env};
use common::log_files::archive;
use std::fs::{self};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use tracing_shared_file::SharedFile;

const CHILD_ENV: &str = "TSF_MIXED_CHILD";
/// The prefix of every line the library prints on stderr.
const LINE_LEN: u64 = 10;
/// Ten lines per file.
const MAX_BYTES: u64 = 10 * LINE_LEN;
/// How long a child may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(30);

fn line(seq: u64) -> String {
    let line = format!("line {seq:04}\n");
    assert_eq!(line.len() as u64, LINE_LEN);
    line
}

fn lines(seqs: std::ops::Range<u64>) -> String {
    seqs.map(line).collect()
}

/// What one writer process does.
#[derive(Debug, Clone, Copy)]
struct Run {
    max_bytes: u64,
    max_files: usize,
    /// Writes lines `first..first + count`, one event each.
    first: u64,
    count: u64,
}

impl Run {
    fn encode(&self) -> String {
        format!(
            "{},{},{},{}",
            self.max_bytes, self.max_files, self.first, self.count
        )
    }

    fn decode(text: &str) -> Self {
        let numbers: Vec<u64> = text.split(',').map(|n| n.parse().unwrap()).collect();
        Run {
            max_bytes: numbers[0],
            max_files: numbers[1] as usize,
            first: numbers[2],
            count: numbers[3],
        }
    }
}

/// Child side: one writer process.
#[test]
fn writer_entry() {
    let Some(config) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (path, run) = config.to_str().unwrap().split_once(';').unwrap();
    let run = Run::decode(run);
    let log = SharedFile::builder(path)
        .max_bytes(run.max_bytes)
        .max_files(run.max_files)
        .build()
        .unwrap();
    for seq in run.first..run.first + run.count {
        (&log).write_all(line(seq).as_bytes()).unwrap();
    }
    let stats = log.stats();
    println!(
        "\nSTATS events_written={} rotations={} write_errors={} rotation_errors={}",
        stats.events_written, stats.rotations, stats.write_errors, stats.rotation_errors
    );
}

/// Runs a writer process with `run` to a successful end; its output goes to files
/// beside the log.
fn run_writer(log: &Path, name: &str, run: Run) -> Finished {
    let spec = format!("{};{}", log.display(), run.encode());
    let dir = log.parent().unwrap();
    let finished = start_entry_env(&common::entry!(writer_entry), dir, name, CHILD_ENV, spec)
        .with_deadline(DEADLINE)
        .finish();
    finished.assert_exited_ok();
    finished
}
/// Every file of the log, newest first (`app.log`, `app.log.1`, ...), each with a summary
/// of its contents; fails on a file beside them that the log should not have.
fn log_files(log: &Path) -> Vec<String> {
    let dir = log.parent().unwrap();
    let name = log.file_name().unwrap().to_str().unwrap();
    let mut indexes: Vec<usize> = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry_name = entry.unwrap().file_name().into_string().unwrap();
        let Some(suffix) = entry_name.strip_prefix(name) else {
            continue;
        };
        match suffix.strip_prefix('.').map(str::parse::<usize>) {
            Some(Ok(index)) => indexes.push(index),
            _ => assert!(
                ["", ".lock"].contains(&suffix),
                "unexpected file {entry_name}"
            ),
        }
    }
    indexes.sort_unstable();
    let mut files = vec![format!(
        "{name}: {}",
        summary(&fs::read_to_string(log).unwrap())
    )];
    for index in indexes {
        let text = fs::read_to_string(archive(log, index)).unwrap();
        files.push(format!("{name}.{index}: {}", summary(&text)));
    }
    files
}

/// `lines A-B` if `text` is exactly lines A to B (inclusive), else the text itself.
fn summary(text: &str) -> String {
    let first = text
        .strip_prefix("line ")
        .and_then(|rest| rest.get(..4))
        .and_then(|seq| seq.parse::<u64>().ok());
    if let Some(first) = first {
        let count = text.len() as u64 / LINE_LEN;
        if count > 0 && text == lines(first..first + count) {
            return format!("lines {first}-{}", first + count - 1);
        }
    }
    format!("{text:?}")
}

/// The summaries of files `app.log`, `app.log.1`, ... holding, in that order, the lines
/// in `ranges`.
fn expected_files(log: &Path, ranges: &[std::ops::Range<u64>]) -> Vec<String> {
    let name = log.file_name().unwrap().to_str().unwrap();
    ranges
        .iter()
        .enumerate()
        .map(|(index, range)| {
            let text = summary(&lines(range.clone()));
            match index {
                0 => format!("{name}: {text}"),
                _ => format!("{name}.{index}: {text}"),
            }
        })
        .collect()
}

/// The whole numbers in `report`, once the paths in it are blanked (a temporary
/// directory's name may hold digits).
fn numbers_in(report: &str, dir: &Path) -> Vec<u64> {
    report
        .replace(&dir.display().to_string(), "<dir>")
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect()
}

/// Asserts that `finished` reported the mismatch of `option` exactly once, naming both
/// values, however many times it wrote and rotated.
#[track_caller]
fn assert_reported_once(finished: &Finished, option: &str, values: [u64; 2], dir: &Path) {
    let mentioning: Vec<&str> = finished
        .reports()
        .into_iter()
        .filter(|report| report.contains(option))
        .collect();
    assert_eq!(
        mentioning.len(),
        1,
        "exactly one report of the mismatched {option} expected; stderr:\n{}",
        finished.stderr
    );
    let numbers = numbers_in(mentioning[0], dir);
    for value in values {
        assert!(
            numbers.contains(&value),
            "the report should name both values of {option} ({values:?}): {}",
            mentioning[0]
        );
    }
}

#[test]
fn a_process_with_fewer_max_files_deletes_the_oldest_archives_not_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");

    // max_files(10) fills .1 (lines 90-99) to .10 (lines 0-9); app.log holds 100-109.
    let first = run_writer(
        &log,
        "max_files_10",
        Run {
            max_bytes: MAX_BYTES,
            max_files: 10,
            first: 0,
            count: 110,
        },
    );
    assert_eq!(first.reports(), Vec::<&str>::new(), "{}", first.stderr);
    assert_eq!(
        first.line("STATS"),
        "events_written=110 rotations=10 write_errors=0 rotation_errors=0"
    );
    // Eleven files of ten lines each: app.log holds the newest, 100-109.
    let before: Vec<_> = (0..11)
        .rev()
        .map(|file| file * 10..file * 10 + 10)
        .collect();
    assert_eq!(log_files(&log), expected_files(&log, &before));

    // max_files(3) rotates once, at line 110.
    let second = run_writer(
        &log,
        "max_files_3",
        Run {
            max_bytes: MAX_BYTES,
            max_files: 3,
            first: 110,
            count: 10,
        },
    );
    assert_eq!(
        second.line("STATS"),
        "events_written=10 rotations=1 write_errors=0 rotation_errors=0"
    );

    // The file just rotated is .1, then the two newest archives; every older one is gone.
    assert_eq!(
        log_files(&log),
        expected_files(&log, &[110..120, 100..110, 90..100, 80..90])
    );
    assert_reported_once(&second, "max_files", [3, 10], dir.path());
}

#[test]
fn a_process_with_more_max_files_keeps_the_archives_of_one_with_fewer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");

    // max_files(3) fills .1 (lines 20-29) to .3 (lines 0-9); app.log holds 30-39.
    let first = run_writer(
        &log,
        "max_files_3",
        Run {
            max_bytes: MAX_BYTES,
            max_files: 3,
            first: 0,
            count: 40,
        },
    );
    assert_eq!(first.reports(), Vec::<&str>::new(), "{}", first.stderr);
    assert_eq!(
        first.line("STATS"),
        "events_written=40 rotations=3 write_errors=0 rotation_errors=0"
    );

    // max_files(10) writes lines 40-79 and rotates four times, keeping everything.
    let second = run_writer(
        &log,
        "max_files_10",
        Run {
            max_bytes: MAX_BYTES,
            max_files: 10,
            first: 40,
            count: 40,
        },
    );
    assert_eq!(
        second.line("STATS"),
        "events_written=40 rotations=4 write_errors=0 rotation_errors=0"
    );

    // Every line is still there, newest first.
    let newest_first: Vec<_> = (0..8).rev().map(|file| file * 10..file * 10 + 10).collect();
    assert_eq!(log_files(&log), expected_files(&log, &newest_first));
    assert_reported_once(&second, "max_files", [3, 10], dir.path());
}

#[test]
fn a_process_with_another_max_bytes_reports_the_mismatch_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");

    // 100-byte files: app.log holds 10-14, .1 holds 0-9.
    let first = run_writer(
        &log,
        "max_bytes_100",
        Run {
            max_bytes: MAX_BYTES,
            max_files: 100,
            first: 0,
            count: 15,
        },
    );
    assert_eq!(first.reports(), Vec::<&str>::new(), "{}", first.stderr);

    // 200-byte files, for 45 lines: several writes and rotations, one report.
    let second = run_writer(
        &log,
        "max_bytes_200",
        Run {
            max_bytes: 2 * MAX_BYTES,
            max_files: 100,
            first: 15,
            count: 45,
        },
    );
    // Nothing lost or reordered, however the files are split (which max_bytes wins is
    // not what this test is about): oldest archive first, then the live file.
    let archives = (1..).take_while(|&i| archive(&log, i).exists()).count();
    let all: String = (1..=archives)
        .rev()
        .map(|index| archive(&log, index))
        .chain([log.clone()])
        .map(|path| fs::read_to_string(path).unwrap())
        .collect();
    assert_eq!(summary(&all), summary(&lines(0..60)));
    assert_reported_once(&second, "max_bytes", [100, 200], dir.path());
}
