//! The verifier must fail on every kind of defect it exists to catch; otherwise a passing
//! multi-process test proves nothing. It must also pass every correct layout: numbered and
//! timestamped names, gzipped archives (and a plain and gzipped pair a compressor left),
//! time rotation, look-alike files beside the log.
//!
//! One module per kind of layout; the crafted chains they share are built here.
//!
//! - [`numbered`]: numbered archives, and each defect the verifier exists to catch.
//! - [`gzipped`]: gzipped archives, checked by their uncompressed content.
//! - [`timestamped`]: timestamped names, their order, counters and look-alikes.
//! - [`time_rotation`]: time rotation, its periods and boundaries.

#[path = "../common/mod.rs"]
mod common;

mod gzipped;
mod numbered;
mod time_rotation;
mod timestamped;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::verifier::{Expect, Report, Verifier};
use common::workload::{WriterId, fmt_line};
use flate2::Compression;
use flate2::write::GzEncoder;

const W0: WriterId = WriterId {
    process: 0,
    thread: 0,
};
const W1: WriterId = WriterId {
    process: 1,
    thread: 0,
};
const MAX_BYTES: u64 = 400;

fn line(writer: WriterId, seq: u64) -> String {
    fmt_line(writer, seq)
}

/// Writes records `0..n` of W0 and W1 interleaved into a rotation chain, rotating exactly
/// when the next line would not fit, as the library does. Returns the files' contents,
/// oldest first; the last one is the live file.
fn correct_chain(n: u64) -> Vec<String> {
    let mut files = vec![String::new()];
    for seq in 0..n {
        for writer in [W0, W1] {
            let l = line(writer, seq);
            let current = files.last_mut().unwrap();
            if !current.is_empty() && current.len() + l.len() > MAX_BYTES as usize {
                files.push(String::new());
            }
            files.last_mut().unwrap().push_str(&l);
        }
    }
    files
}

/// Removes `line` from whichever file holds it.
fn remove_line(files: &mut [String], line: &str) {
    let file = files
        .iter_mut()
        .find(|f| f.contains(line))
        .expect("line present");
    *file = file.replacen(line, "", 1);
}

fn write_chain(dir: &Path, files: &[String]) {
    let count = files.len();
    for (i, content) in files.iter().enumerate() {
        let name = match count - 1 - i {
            0 => "app.log".to_string(),
            index => format!("app.log.{index}"),
        };
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn verify(files: &[String], n: u64) -> Report {
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), files);
    Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Exactly(n))
        .expect(W1, Expect::Exactly(n))
        .verify()
}

// ---- Gzipped archives -------------------------------------------------------------------

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap()
}

/// Writes `path.gz` from `path`; removes `path` unless `keep_plain` (a compressor killed
/// between its rename to `.gz` and its removal of the original leaves both).
fn gzip_file(path: &Path, keep_plain: bool) {
    let content = std::fs::read(path).unwrap();
    std::fs::write(format!("{}.gz", path.display()), gzip(&content)).unwrap();
    if !keep_plain {
        std::fs::remove_file(path).unwrap();
    }
}

/// A verifier of `dir/app.log` that expects records `0..n` of W0 and W1.
fn verifier_for(dir: &Path, max_bytes: u64, n: u64) -> Verifier {
    Verifier::new(dir.join("app.log"), max_bytes, 100)
        .expect(W0, Expect::Exactly(n))
        .expect(W1, Expect::Exactly(n))
}

/// Asserts that `report` found exactly one problem, and that it says `what`.
#[track_caller]
fn assert_one_problem(report: &Report, what: &str) {
    assert!(
        report.problems.len() == 1 && report.problems[0].contains(what),
        "expected exactly one problem, about {what:?}; got:\n{report}"
    );
}

// ---- Timestamped names ------------------------------------------------------------------

const FIXTURE_STAMP: &str = "2026-11-26T15:00:00.000000Z";

/// A record stamped `timestamp` instead of the fixture's.
fn line_stamped(writer: WriterId, seq: u64, timestamp: &str) -> String {
    line(writer, seq).replacen(FIXTURE_STAMP, timestamp, 1)
}

/// The fmt layer's timestamp `ms` milliseconds after 2026-11-27T14:00:00Z.
fn timestamp(ms: u64) -> String {
    assert!(ms < 3_600_000, "fixtures stay within the hour");
    let secs = ms / 1000;
    format!(
        "2026-11-27T14:{:02}:{:02}.{:03}000Z",
        secs / 60,
        secs % 60,
        ms % 1000
    )
}

/// The timestamped archive name for `secs` after 14:00:00, with counter `.K` if any.
fn stamped_name(secs: u64, counter: Option<u64>) -> String {
    let counter = counter.map_or(String::new(), |k| format!(".{k}"));
    format!(
        "app.log.2026-11-27T14-{:02}-{:02}Z{counter}",
        secs / 60,
        secs % 60
    )
}

/// One file of a crafted chain.
#[derive(Debug, Clone)]
struct Crafted {
    content: String,
    /// For an archive, the time in its name, in ms after 14:00:00.
    stamp_ms: u64,
    /// For an archive, whether it was rotated because the next line would not fit.
    full: bool,
}

impl Crafted {
    fn new(content: String) -> Self {
        Crafted {
            content,
            stamp_ms: 0,
            full: false,
        }
    }
}

/// Writes `files` under timestamped names, the last one live; archives stamped in the
/// same second get counters `.1`, `.2`, ... Returns the archive names, oldest first.
fn write_stamped(dir: &Path, files: &[Crafted]) -> Vec<String> {
    let (live, archives) = files.split_last().unwrap();
    let mut names: Vec<String> = Vec::new();
    let mut previous: Option<(u64, u64)> = None;
    for archive in archives {
        let secs = archive.stamp_ms / 1000;
        let same_second = match previous {
            Some((s, count)) if s == secs => count + 1,
            _ => 0,
        };
        previous = Some((secs, same_second));
        let name = stamped_name(secs, (same_second > 0).then_some(same_second));
        std::fs::write(dir.join(&name), &archive.content).unwrap();
        names.push(name);
    }
    std::fs::write(dir.join("app.log"), &live.content).unwrap();
    names
}
