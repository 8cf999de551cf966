//! The verifier must fail on every kind of defect it exists to catch; otherwise a passing
//! multi-process test proves nothing. It must also pass every correct layout: numbered and
//! timestamped names, gzipped archives (and a plain and gzipped pair a compressor left),
//! time rotation, look-alike files beside the log.

mod common;

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

#[test]
fn a_correct_chain_passes() {
    let files = correct_chain(40);
    assert!(files.len() > 5, "the fixture must rotate");
    let report = verify(&files, 40);
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(report.archives, files.len() - 1);
}

#[test]
fn a_dropped_line_fails() {
    let mut files = correct_chain(40);
    remove_line(&mut files, &line(W1, 10));
    let report = verify(&files, 40);
    assert!(!report.is_ok());
    assert_eq!(report.lost, 1, "{report}");
}

#[test]
fn a_duplicated_line_fails() {
    let mut files = correct_chain(40);
    let last = files.len() - 1;
    files[last].push_str(&line(W0, 3));
    let report = verify(&files, 40);
    assert_eq!(report.duplicated, 1, "{report}");
}

#[test]
fn an_interleaved_line_fails() {
    let mut files = correct_chain(3);
    // Another writer's line lands in the middle of this one, as unlocked appends can do.
    let a = line(W0, 0);
    let b = line(W1, 0);
    let torn = format!("{}{}{}", &a[..60], b, &a[60..]);
    files[0] = files[0].replacen(&a, "", 1).replacen(&b, &torn, 1);
    let report = verify(&files, 3);
    assert!(report.torn >= 2, "{report}");
    assert!(!report.is_ok());
}

#[test]
fn a_line_without_the_fmt_prefix_fails() {
    let mut files = correct_chain(3);
    let good = line(W0, 1);
    files[0] = files[0].replacen(&good, &good[good.find("REC").unwrap()..], 1);
    let report = verify(&files, 3);
    assert_eq!(report.torn, 1, "{report}");
}

#[test]
fn a_partial_last_line_fails() {
    let mut files = correct_chain(3);
    let last = files.len() - 1;
    files[last].push_str("2026-11-26T15:00:00.000000Z  INFO workload: REC p=0 t=0 s=");
    let report = verify(&files, 3);
    assert_eq!(report.torn, 1, "{report}");
}

#[test]
fn a_garbled_payload_fails() {
    let mut files = correct_chain(3);
    let good = line(W0, 1);
    let bad = good.replacen(" END", "Z END", 1);
    files[0] = files[0].replacen(&good, &bad, 1);
    let report = verify(&files, 3);
    assert_eq!(report.torn, 1, "{report}");
    assert_eq!(report.lost, 1, "{report}");
}

#[test]
fn an_oversized_file_fails() {
    let mut files = correct_chain(40);
    let moved = files.remove(2);
    files[1].push_str(&moved);
    let report = verify(&files, 40);
    assert_eq!(report.oversized, 1, "{report}");
}

#[test]
fn a_lone_oversized_event_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log.1"), line(W0, 0)).unwrap();
    std::fs::write(dir.path().join("app.log"), line(W0, 1)).unwrap();
    let report = Verifier::new(dir.path().join("app.log"), 10, 5)
        .expect(W0, Expect::Exactly(2))
        .verify();
    report.assert_ok();
}

#[test]
fn an_early_rotation_fails() {
    // A process that rotated on a stale size leaves an archive with room to spare.
    let mut files = correct_chain(40);
    let first = files[3].split_inclusive('\n').next().unwrap().to_string();
    files[3] = files[3].replacen(&first, "", 1);
    files.insert(3, first);
    let report = verify(&files, 40);
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains("was rotated at")),
        "{report}"
    );
}

#[test]
fn a_file_beyond_max_files_fails() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, files.len() - 2)
        .expect(W0, Expect::Exactly(40))
        .expect(W1, Expect::Exactly(40))
        .verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("beyond max_files")),
        "{report}"
    );
}

#[test]
fn a_gap_in_the_archive_numbers_fails() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    std::fs::rename(dir.path().join("app.log.2"), dir.path().join("app.log.99")).unwrap();
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Exactly(40))
        .expect(W1, Expect::Exactly(40))
        .verify();
    assert!(
        report.problems.iter().any(|p| p.contains("not numbered")),
        "{report}"
    );
}

#[test]
fn a_killed_writer_may_lose_only_its_unacknowledged_tail() {
    let files = correct_chain(40);
    let mut without_tail = files.clone();
    remove_line(&mut without_tail, &line(W1, 39));
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &without_tail);
    let verifier = |acknowledged| {
        Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
            .expect(W0, Expect::Exactly(40))
            .expect(W1, Expect::Prefix { acknowledged })
            .verify()
    };
    verifier(39).assert_ok();
    assert_eq!(verifier(40).lost, 1, "an acknowledged record is missing");

    // A gap in the middle is a loss even for a killed writer.
    let mut with_gap = files;
    remove_line(&mut with_gap, &line(W1, 5));
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &with_gap);
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Exactly(40))
        .expect(W1, Expect::Prefix { acknowledged: 0 })
        .check_rotation_points(false)
        .verify();
    assert_eq!(report.lost, 1, "{report}");
}

#[test]
fn deleted_oldest_archives_may_take_only_the_oldest_records() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    // The two oldest archives are gone, as max_files would have it.
    write_chain(dir.path(), &files[2..]);
    let verifier = |expect| {
        Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
            .expect(W0, expect)
            .expect(W1, expect)
            .verify()
    };
    verifier(Expect::Newest { total: 40 }).assert_ok();
    assert!(verifier(Expect::Exactly(40)).lost > 0);

    // A gap after the oldest record present is still a loss.
    let mut with_gap = files[2..].to_vec();
    remove_line(&mut with_gap, &line(W0, 30));
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &with_gap);
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Newest { total: 40 })
        .expect(W1, Expect::Newest { total: 40 })
        .check_rotation_points(false)
        .verify();
    assert_eq!(report.lost, 1, "{report}");
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

#[test]
fn numbered_gzipped_archives_are_checked_by_their_uncompressed_content() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let archives = files.len() - 1;
    // Every archive but the newest compressed, as `delaycompress` would leave them.
    for index in 2..=archives {
        gzip_file(&dir.path().join(format!("app.log.{index}")), false);
    }
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    // Compressed sizes would fail the rotation points: each archive had room to spare.
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(
        (report.archives, report.compressed),
        (archives, archives - 1)
    );
    let plain_bytes: usize = files.iter().map(String::len).sum();
    assert_eq!(report.bytes_total, plain_bytes as u64);
}

#[test]
fn an_oversized_gzipped_archive_fails() {
    let mut files = correct_chain(40);
    let moved = files.remove(2);
    files[1].push_str(&moved);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let oversized = files.len() - 2;
    let path = dir.path().join(format!("app.log.{oversized}"));
    gzip_file(&path, false);
    assert!(
        std::fs::metadata(format!("{}.gz", path.display()))
            .unwrap()
            .len()
            <= MAX_BYTES
    );
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    assert_eq!(report.oversized, 1, "{report}");
    assert_one_problem(&report, "over max_bytes");
}

#[test]
fn an_identical_plain_and_gzipped_pair_is_one_archive() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    gzip_file(&dir.path().join("app.log.3"), true);
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, 80, "the pair is read once");
    assert_eq!((report.archives, report.compressed), (files.len() - 1, 1));
}

#[test]
fn a_plain_and_gzipped_pair_that_differ_fails() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let plain = dir.path().join("app.log.3");
    let content = std::fs::read_to_string(&plain).unwrap();
    let without_last_line = content[..content.trim_end().rfind('\n').unwrap() + 1].to_string();
    let gz = dir.path().join("app.log.3.gz");
    std::fs::write(&gz, gzip(without_last_line.as_bytes())).unwrap();
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    assert_one_problem(
        &report,
        &format!("{} and {} differ", plain.display(), gz.display()),
    );
}

#[test]
fn a_corrupt_gz_fails() {
    let files = correct_chain(40);
    let archive = files[files.len() - 4].as_bytes();
    let whole = gzip(archive);
    let corruptions: [(&str, Vec<u8>); 5] = [
        ("truncated in the middle", whole[..whole.len() / 2].to_vec()),
        ("without its trailer", whole[..whole.len() - 8].to_vec()),
        ("a wrong checksum", {
            let mut bad = whole.clone();
            let crc = bad.len() - 8;
            bad[crc] ^= 0xff;
            bad
        }),
        ("empty", Vec::new()),
        ("not gzip at all", archive.to_vec()),
    ];
    for (what, bytes) in corruptions {
        for keep_plain in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_chain(dir.path(), &files);
            let plain = dir.path().join("app.log.3");
            let gz = dir.path().join("app.log.3.gz");
            std::fs::write(&gz, &bytes).unwrap();
            if !keep_plain {
                std::fs::remove_file(&plain).unwrap();
            }
            let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
            let corrupt = format!("{} is corrupt", gz.display());
            assert!(
                report.problems.iter().any(|p| p.starts_with(&corrupt)),
                "a .gz {what} (plain kept: {keep_plain}) must be corrupt:\n{report}"
            );
            if keep_plain {
                // The plain twin still holds every line: the corruption is the one problem.
                assert_one_problem(&report, &corrupt);
            } else {
                let lines = files[files.len() - 4].lines().count() as u64;
                assert_eq!(report.lost, lines, "{what}: its records are lost\n{report}");
            }
        }
    }
}

// ---- Timestamped names ------------------------------------------------------------------

/// The fmt timestamp every `fmt_line` carries.
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

#[test]
fn a_timestamped_chain_with_counters_passes() {
    let contents = correct_chain(40);
    assert!(contents.len() > 16, "the fixture must rotate often");
    // One archive at 14:00:00, twelve in the next second (counters up to .11, which
    // sort after .2 by number, not by name), the rest one second later.
    let files: Vec<Crafted> = contents
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: match i {
                0 => 0,
                1..=12 => 1000,
                _ => 2000,
            },
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert!(names.contains(&stamped_name(1, Some(11))));
    let report = verifier_for(dir.path(), MAX_BYTES, 40)
        .timestamped(true)
        .verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(report.archives, files.len() - 1);
    assert_eq!(report.files.len(), files.len());

    // With the numbered naming the same directory holds no archives at all.
    let numbered = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    assert_eq!(numbered.archives, 0, "{numbered}");
}

#[test]
fn timestamped_gzipped_archives_and_pairs_pass() {
    let files: Vec<Crafted> = correct_chain(40)
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: i as u64 * 1000,
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    // All compressed but the newest; one left as a pair, one with a counter name.
    for (i, name) in names.iter().enumerate().rev().skip(1) {
        gzip_file(&dir.path().join(name), i == 3);
    }
    let report = verifier_for(dir.path(), MAX_BYTES, 40)
        .timestamped(true)
        .verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(
        (report.archives, report.compressed),
        (names.len(), names.len() - 1)
    );
}

#[test]
fn a_timestamped_chain_out_of_order_fails() {
    let files: Vec<Crafted> = correct_chain(40)
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: i as u64 * 1000,
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = verifier_for(dir.path(), MAX_BYTES, 40).timestamped(true);
    verifier.verify().assert_ok();
    // Swap two neighbouring archives' names, as a stamp that sorts wrong would: each
    // writer's records then go back once.
    let (a, b) = (dir.path().join(&names[4]), dir.path().join(&names[5]));
    let swap = dir.path().join("swap");
    std::fs::rename(&a, &swap).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&swap, &b).unwrap();
    let out_of_order = |report: &Report| -> Vec<String> {
        let marker = "the files are out of order";
        let found: Vec<String> = report
            .problems
            .iter()
            .filter(|p| p.ends_with(marker))
            .cloned()
            .collect();
        assert_eq!(report.out_of_order, found.len() as u64, "{report}");
        found
    };
    let expected_in = format!(
        " in {} comes after its seq ",
        dir.path().join(&names[5]).display()
    );
    let report = verifier.clone().verify();
    let found = out_of_order(&report);
    assert_eq!(found.len(), 2, "{report}");
    assert!(found.iter().all(|p| p.contains(&expected_in)), "{report}");

    // On its own, without the rotation points (which the swap upsets too).
    let only_order = verifier.clone().check_rotation_points(false);
    let report = only_order.check_record_order(true).verify();
    assert_eq!(out_of_order(&report), report.problems, "{report}");
    assert_eq!(report.problems.len(), 2, "{report}");

    // Off by default along with the rotation points (files moved by hand).
    verifier.check_rotation_points(false).verify().assert_ok();
}

#[test]
fn look_alikes_are_ignored() {
    // Each look-alike holds a copy of a real record and a garbled line: read, it would
    // show as a duplicate and a torn line.
    let decoy = format!("{}not a record\n", line(W0, 0));
    let look_alikes = [
        "app.log.bak",
        "app.log.2026-01-01.txt",
        "app.log.1x",
        "app.log.01",
        "app.log.0",
        "app.log.+1",
        "app.log.-1",
        "app.log.",
        "app.log.gz",
        "app.log.1.gz.gz",
        "app.log.1.tmp",
        "app.log.2026-11-27T14-00-00Z.0",
        "app.log.2026-11-27T14-00-00Z.01",
        "app.log.2026-11-27T14-00-00Z.1x",
        "app.log.2026-11-27T14-00-00Z.gz.1",
        "app.log.2026-11-27T14-00-00Z.gz.tmp",
        "app.log.2026-11-27T14:00:00Z",
        "app.log.2026-11-27T14-00-00",
        "app.log.2026-11-27T14-00-00.5Z",
        "app.log.2026-13-01T00-00-00Z",
        "app.log.2026-02-29T00-00-00Z",
        "app.log.2026-11-27T24-00-00Z",
        "app.log.20261127T140000Z",
        "other.log.1",
        "other.log.2026-11-27T14-00-00Z",
        ".app.log.2026-11-27T14-00-00Z.gz",
        ".app.log.1",
    ];
    let contents = correct_chain(40);
    let numbered = tempfile::tempdir().unwrap();
    write_chain(numbered.path(), &contents);
    let stamped_files: Vec<Crafted> = contents
        .iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: 3000 + i as u64 * 1000,
            ..Crafted::new(content.clone())
        })
        .collect();
    let stamped = tempfile::tempdir().unwrap();
    write_stamped(stamped.path(), &stamped_files);
    for dir in [numbered.path(), stamped.path()] {
        for name in look_alikes {
            std::fs::write(dir.join(name), &decoy).unwrap();
        }
    }
    // Each naming also ignores the other's archives.
    write_stamped(numbered.path(), &stamped_files[..3]);
    write_chain(stamped.path(), &contents[..2]);
    std::fs::write(
        stamped.path().join("app.log"),
        &contents[contents.len() - 1],
    )
    .unwrap();
    std::fs::write(
        numbered.path().join("app.log"),
        &contents[contents.len() - 1],
    )
    .unwrap();

    for (dir, timestamped) in [(numbered.path(), false), (stamped.path(), true)] {
        let report = verifier_for(dir, MAX_BYTES, 40)
            .timestamped(timestamped)
            .verify();
        report.assert_ok();
        assert_eq!(report.lines_verified, 80, "{report}");
        assert_eq!(report.archives, contents.len() - 1, "{report}");
    }
}

#[test]
fn too_many_timestamped_archives_fail() {
    let files: Vec<Crafted> = correct_chain(40)
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: i as u64 * 1000,
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = |max_files| {
        Verifier::new(dir.path().join("app.log"), MAX_BYTES, max_files)
            .expect(W0, Expect::Exactly(40))
            .expect(W1, Expect::Exactly(40))
            .timestamped(true)
            .verify()
    };
    verifier(names.len()).assert_ok();
    let report = verifier(names.len() - 1);
    assert_one_problem(
        &report,
        &format!(
            "{} archives exist, 1 beyond max_files = {}",
            names.len(),
            names.len() - 1
        ),
    );
}

// ---- Time rotation ----------------------------------------------------------------------

const PERIOD_MS: u64 = 10_000;
const PERIOD: Duration = Duration::from_millis(PERIOD_MS);
/// `max_bytes` for time rotation alone.
const NO_SIZE_LIMIT: u64 = u64::MAX;

/// Records `0..n` of W0 and W1, one every `step_ms` each (W1 half a step after W0) from
/// 14:00:00, rotated as the library does: at each `PERIOD_MS` boundary, stamped with the
/// start of the period the archive covers; and when the next line would not fit
/// `max_bytes`, stamped with the rotation time (the next line's). With both, an archive
/// rotated at a boundary after size rotations in its period is stamped with its rotation
/// time too, so that names keep sorting by time.
fn timed_chain(n: u64, step_ms: u64, max_bytes: u64) -> Vec<Crafted> {
    timed_chain_rotating_early(n, step_ms, max_bytes, None)
}

/// `timed_chain`, with one extra rotation before W0's record `early` (as a process that
/// rotated on a stale size would make), stamped with its rotation time.
fn timed_chain_rotating_early(
    n: u64,
    step_ms: u64,
    max_bytes: u64,
    early: Option<u64>,
) -> Vec<Crafted> {
    let mut files = vec![Crafted::new(String::new())];
    let mut period = 0;
    let mut size_rotated_in_period = false;
    for seq in 0..n {
        for (k, writer) in [W0, W1].into_iter().enumerate() {
            let ms = seq * step_ms + k as u64 * step_ms / 2;
            let l = line_stamped(writer, seq, &timestamp(ms));
            let current = files.last_mut().unwrap();
            if !current.content.is_empty() {
                if ms / PERIOD_MS > period {
                    current.stamp_ms = if size_rotated_in_period {
                        ms
                    } else {
                        period * PERIOD_MS
                    };
                    size_rotated_in_period = false;
                    files.push(Crafted::new(String::new()));
                } else if (current.content.len() + l.len()) as u64 > max_bytes
                    || (early == Some(seq) && writer == W0)
                {
                    current.stamp_ms = ms;
                    current.full = early != Some(seq) || writer != W0;
                    size_rotated_in_period = true;
                    files.push(Crafted::new(String::new()));
                }
            }
            period = ms / PERIOD_MS;
            files.last_mut().unwrap().content.push_str(&l);
        }
    }
    files
}

/// Time-only rotation: 120 records each, every 700 ms, up to 14:01:23.650: 9 periods.
fn time_rotated_chain() -> Vec<Crafted> {
    let files = timed_chain(120, 700, NO_SIZE_LIMIT);
    assert_eq!(files.len(), 9);
    files
}

/// A verifier of a timestamped chain rotated every `PERIOD`.
fn timed_verifier(dir: &Path, max_bytes: u64, n: u64) -> Verifier {
    verifier_for(dir, max_bytes, n)
        .timestamped(true)
        .period(PERIOD, 0)
}

#[test]
fn a_time_rotated_chain_passes() {
    let files = time_rotated_chain();
    let dir = tempfile::tempdir().unwrap();
    write_stamped(dir.path(), &files);
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .one_archive_per_period(true)
        .stamps_match_periods(true)
        .verify();
    report.assert_ok();
    assert_eq!((report.lines_verified, report.archives), (240, 8));
    assert_eq!(report.periods, 9, "{report}");

    // The same files under numbered names, gzipped but for the newest archive.
    let contents: Vec<String> = files.into_iter().map(|f| f.content).collect();
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &contents);
    for index in 2..=8 {
        gzip_file(&dir.path().join(format!("app.log.{index}")), false);
    }
    let report = verifier_for(dir.path(), NO_SIZE_LIMIT, 120)
        .period(PERIOD, 0)
        .one_archive_per_period(true)
        .verify();
    report.assert_ok();
    assert_eq!((report.periods, report.compressed), (9, 7), "{report}");
}

#[test]
fn a_time_and_size_rotated_chain_passes() {
    let files = timed_chain(120, 300, MAX_BYTES);
    let archives = &files[..files.len() - 1];
    // Both kinds of rotation, and several archives in one second (counters).
    assert!(archives.iter().any(|f| f.full) && archives.iter().any(|f| !f.full));
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert!(names.iter().any(|name| name.ends_with(".1")));
    let report = timed_verifier(dir.path(), MAX_BYTES, 120).verify();
    report.assert_ok();
    assert_eq!(
        (report.archives, report.periods),
        (files.len() - 1, 4),
        "{report}"
    );
}

#[test]
fn a_line_of_a_later_period_in_an_archive_fails() {
    let mut files = time_rotated_chain();
    // The first line of the 14:00:30 period lands at the end of the 14:00:20 archive.
    let first = files[3]
        .content
        .split_inclusive('\n')
        .next()
        .unwrap()
        .to_string();
    files[3].content = files[3].content.replacen(&first, "", 1);
    files[2].content.push_str(&first);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .one_archive_per_period(true)
        .verify();
    assert_one_problem(
        &report,
        &format!(
            "{} holds lines of more than one period",
            dir.path().join(&names[2]).display()
        ),
    );
}

#[test]
fn a_line_stamped_before_its_boundary_passes_within_the_write_delay() {
    let mut files = time_rotated_chain();
    // The last line of the 14:00:20 period (stamped 14:00:29.750) was written after
    // 14:00:30: it opens the next file. Its lock wait, or a queue, explains it.
    let last = files[2]
        .content
        .split_inclusive('\n')
        .next_back()
        .unwrap()
        .to_string();
    assert!(last.starts_with("2026-11-27T14:00:29.750000Z"), "{last}");
    let kept = files[2].content.len() - last.len();
    files[2].content.truncate(kept);
    files[3].content.insert_str(0, &last);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = |delay| {
        timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
            .one_archive_per_period(true)
            .stamps_match_periods(true)
            .max_write_delay(delay)
            .verify()
    };
    verifier(Duration::from_secs(1)).assert_ok();
    let too_short = verifier(Duration::from_millis(100));
    assert_one_problem(
        &too_short,
        &format!(
            "{} holds lines of more than one period",
            dir.path().join(&names[3]).display()
        ),
    );
}

#[test]
fn two_archives_for_one_period_fail() {
    let mut files = time_rotated_chain();
    // The 14:00:40 period split in two, both stamped with its start (the second with
    // a counter).
    let content = files[4].content.clone();
    let middle = content[..content.len() / 2].rfind('\n').unwrap() + 1;
    files[4].content = content[middle..].to_string();
    files.insert(4, Crafted::new(content[..middle].to_string()));
    files[4].stamp_ms = files[5].stamp_ms;
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert_eq!(names[5], stamped_name(40, Some(1)));
    let (first, second) = (dir.path().join(&names[4]), dir.path().join(&names[5]));

    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .one_archive_per_period(true)
        .check_rotation_points(false)
        .verify();
    assert_one_problem(
        &report,
        &format!(
            "two files hold lines of the period starting 2026-11-27T14:00:40.000000000Z: {} and {}",
            first.display(),
            second.display()
        ),
    );
    // Without a size limit, the split is also an early rotation.
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120).verify();
    assert_one_problem(&report, &format!("{} was rotated at", first.display()));
}

#[test]
fn an_early_rotation_under_time_and_size_rotation_fails() {
    // A rotation before W0's record 5 (14:00:01.500), with room to spare and in the
    // same period as the next file.
    let files = timed_chain_rotating_early(120, 300, MAX_BYTES, Some(5));
    let early = files
        .iter()
        .position(|f| f.stamp_ms == 1500 && !f.full)
        .unwrap();
    let next_line = line_stamped(W0, 5, &timestamp(1500));
    assert!(files[early + 1].content.starts_with(&next_line));
    assert!(files[early].content.len() + next_line.len() <= MAX_BYTES as usize);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let report = timed_verifier(dir.path(), MAX_BYTES, 120).verify();
    assert_one_problem(
        &report,
        &format!(
            "{} was rotated at {} bytes although the next event ({} bytes) fitted under max_bytes = {MAX_BYTES} and the next file starts no later period",
            dir.path().join(&names[early]).display(),
            files[early].content.len(),
            next_line.len()
        ),
    );
}

#[test]
fn a_chain_whose_periods_go_back_fails() {
    let files = time_rotated_chain();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    // The 14:00:30 and 14:00:50 archives swap names.
    let (a, b) = (dir.path().join(&names[3]), dir.path().join(&names[5]));
    let swap = dir.path().join("swap");
    std::fs::rename(&a, &swap).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&swap, &b).unwrap();
    // Without the rotation points, which the swap upsets too (and record order with them).
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .check_rotation_points(false)
        .verify();
    assert_eq!(report.problems.len(), 2, "{report}");
    for (file, older) in [(&names[4], &names[3]), (&names[5], &names[4])] {
        let expected = format!(
            "the chain is out of order: {} holds lines of the period starting",
            dir.path().join(file).display()
        );
        assert!(
            report.problems.iter().any(|p| p.starts_with(&expected)
                && p.contains(&format!(
                    "than those of {}",
                    dir.path().join(older).display()
                ))),
            "{expected}\n{report}"
        );
    }
}

#[test]
fn a_stamp_that_is_not_its_period_start_fails() {
    let mut files = time_rotated_chain();
    files[3].stamp_ms += 1000;
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120).one_archive_per_period(true);
    verifier.clone().verify().assert_ok();
    let report = verifier.stamps_match_periods(true).verify();
    assert_one_problem(
        &report,
        &format!(
            "{} was rotated at a boundary but its stamp 2026-11-27T14:00:31.000000000Z is not the start of its lines' period (2026-11-27T14:00:30.000000000Z)",
            dir.path().join(&names[3]).display()
        ),
    );
}

/// A live file alone holding W0's records stamped `timestamps`, checked with `period`.
fn verify_live_file(timestamps: &[&str], period: Duration, utc_offset: i32) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let content: String = (0..)
        .zip(timestamps)
        .map(|(seq, timestamp)| line_stamped(W0, seq, timestamp))
        .collect();
    std::fs::write(dir.path().join("app.log"), content).unwrap();
    Verifier::new(dir.path().join("app.log"), NO_SIZE_LIMIT, 100)
        .expect(W0, Expect::Exactly(timestamps.len() as u64))
        .period(period, utc_offset)
        .verify()
}

#[test]
fn line_timestamps_may_have_any_number_of_fraction_digits() {
    let report = verify_live_file(
        &[
            "2026-11-27T14:00:00Z",
            "2026-11-27T14:00:05.5Z",
            "2026-11-27T14:00:09.999999999Z",
            "2026-11-27T14:00:09.9999999999Z",
        ],
        PERIOD,
        0,
    );
    report.assert_ok();
    assert_eq!(report.periods, 1);
    // The boundary itself opens the next period.
    let report = verify_live_file(
        &["2026-11-27T14:00:09.999Z", "2026-11-27T14:00:10Z"],
        PERIOD,
        0,
    );
    assert_one_problem(&report, "holds lines of more than one period");
}

#[test]
fn day_and_week_boundaries_follow_the_utc_offset() {
    const DAY: Duration = Duration::from_secs(86_400);
    const WEEK: Duration = Duration::from_secs(7 * 86_400);
    const PLUS_ONE_HOUR: i32 = 3600;
    const MINUS_FIVE_HOURS: i32 = -5 * 3600;
    let same_period = |timestamps: &[&str], period, offset| {
        let report = verify_live_file(timestamps, period, offset);
        match report.problems.as_slice() {
            [] => true,
            [one] if one.contains("holds lines of more than one period") => false,
            _ => panic!("{report}"),
        }
    };
    // Days: local midnight is 23:00 UTC at +01:00, 05:00 UTC at -05:00.
    assert!(same_period(
        &["2026-11-27T00:00:00Z", "2026-11-27T23:59:59Z"],
        DAY,
        0
    ));
    assert!(!same_period(
        &["2026-11-27T22:59:59Z", "2026-11-27T23:00:00Z"],
        DAY,
        PLUS_ONE_HOUR
    ));
    assert!(same_period(
        &["2026-11-27T23:00:00Z", "2026-11-28T22:59:59Z"],
        DAY,
        PLUS_ONE_HOUR
    ));
    assert!(!same_period(
        &["2026-11-27T04:59:59Z", "2026-11-27T05:00:00Z"],
        DAY,
        MINUS_FIVE_HOURS
    ));
    assert!(same_period(
        &["2026-11-27T05:00:00Z", "2026-11-28T04:59:59Z"],
        DAY,
        MINUS_FIVE_HOURS
    ));
    // Weeks start on Monday (2026-11-30) at 00:00 local time.
    assert!(same_period(
        &["2026-11-23T00:00:00Z", "2026-11-29T23:59:59Z"],
        WEEK,
        0
    ));
    assert!(!same_period(
        &["2026-11-29T23:59:59Z", "2026-11-30T00:00:00Z"],
        WEEK,
        0
    ));
    assert!(same_period(
        &["2026-11-29T23:00:00Z", "2026-12-06T22:59:59Z"],
        WEEK,
        PLUS_ONE_HOUR
    ));
    assert!(!same_period(
        &["2026-11-29T22:59:59Z", "2026-11-29T23:00:00Z"],
        WEEK,
        PLUS_ONE_HOUR
    ));
    // Across a year's end and a leap day.
    assert!(same_period(
        &["2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"],
        WEEK,
        0
    ));
    assert!(!same_period(
        &["2028-02-28T23:59:59Z", "2028-02-29T00:00:00Z"],
        DAY,
        0
    ));
    assert!(same_period(
        &["2028-02-29T00:00:00Z", "2028-02-29T23:59:59Z"],
        DAY,
        0
    ));
}
