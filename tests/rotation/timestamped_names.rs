//! Timestamped archive names (`Naming::Timestamped`), with real processes rotating many
//! times a second.
//!
//! - Every archive name is `app.log.<UTC stamp>[.K]`, stamped with the time of its
//!   (size) rotation; rotations in one second take the counters 1, 2, … without gaps.
//! - Sorting the names sorts the archives by age.
//! - A name is never used twice: not when its `.gz` is all that is left of it, not when
//!   retention deleted the archive that had it.
//! - Files that only look like archives are never moved.
//!
//! With `max_bytes` of 160, every record line (83 to 146 bytes) fills a file alone, so
//! every event after the first rotates.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{
    RotationPolicy, StampedName, Workers, WriterId, WriterSpec, archive_stamp, fmt_line,
    parse_stamped_name, stamped_archives,
};
use tracing_shared_file::{Naming, SharedFile};

/// One record line per file.
const MAX_BYTES: u64 = 160;
const KEEP_ALL: usize = 100_000;
const WORKER_DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn worker_entry() {
    common::workload::run_worker_saving_stats();
}

/// Writers that rotate at nearly every event, run to completion.
struct Run {
    _dir: tempfile::TempDir,
    log: PathBuf,
    specs: Vec<WriterSpec>,
}

impl Run {
    fn new(processes: u32, lines: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("logs")).unwrap();
        let sync_dir = dir.path().join("sync");
        fs::create_dir(&sync_dir).unwrap();
        let log = dir.path().join("logs/app.log");
        let specs = (0..processes)
            .map(|process| WriterSpec {
                max_bytes: MAX_BYTES,
                max_files: KEEP_ALL,
                process,
                lines_per_thread: lines,
                policy: RotationPolicy {
                    timestamped: true,
                    ..RotationPolicy::default()
                },
                ..WriterSpec::new(log.clone(), sync_dir.clone())
            })
            .collect();
        Run {
            _dir: dir,
            log,
            specs,
        }
    }

    fn run(&self) {
        Workers::start(
            || common::entry_command(&common::entry!(worker_entry)),
            &self.specs,
        )
        .wait_within(WORKER_DEADLINE);
    }

    fn rotations(&self) -> u64 {
        self.specs
            .iter()
            .map(|spec| {
                let stats = spec.saved_stats();
                assert_eq!(
                    (stats.write_errors, stats.rotation_errors),
                    (0, 0),
                    "worker {}",
                    spec.process
                );
                stats.rotations
            })
            .sum()
    }

    fn verifier(&self) -> Verifier {
        self.specs.iter().fold(
            Verifier::new(&self.log, MAX_BYTES, KEEP_ALL).timestamped(true),
            |verifier, spec| {
                verifier.expect_process(spec.process, spec.threads, spec.lines_per_thread)
            },
        )
    }
}

#[track_caller]
fn assert_verified(report: &Report) {
    assert!(report.is_ok(), "verification failed:\n{report}");
}

/// Every name in the log's directory.
fn listing(log: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The second, since the epoch, of a line's timestamp (`2026-11-27T18:19:16.123456Z …`).
fn line_second(line: &str) -> i64 {
    let stamp = format!("app.log.{}Z", line[..19].replace(':', "-"));
    parse_stamped_name("app.log", &stamp)
        .unwrap_or_else(|| panic!("no timestamp at the start of {line:?}"))
        .stamp
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Names are stamps of the rotation time, with counters 1, 2, … for more rotations in
/// the same second, and nothing else appears beside the log.
#[test]
fn archives_are_named_after_their_rotation_time_with_gapless_counters() {
    let run = Run::new(3, 25);
    let look_alikes = [
        "app.log.bak",
        "app.log.1",
        "app.log.2026-11-27T14-00-00Z.txt",
    ];
    for name in look_alikes {
        fs::write(run.log.with_file_name(name), name).unwrap();
    }
    let started = unix_now();
    run.run();
    let ended = unix_now();

    let rotations = run.rotations();
    let archives = stamped_archives(&run.log);
    assert_eq!(archives.len() as u64, rotations);
    assert_eq!(rotations, 3 * 25 - 1, "every event but the first rotates");
    // Nothing else beside the log: no other name, no compressed or temporary file.
    let mut expected: Vec<String> = archives.iter().map(|a| a.name.clone()).collect();
    expected.extend(["app.log", "app.log.lock"].map(String::from));
    expected.extend(look_alikes.map(String::from));
    expected.sort();
    assert_eq!(listing(&run.log), expected);
    for name in look_alikes {
        assert_eq!(
            fs::read_to_string(run.log.with_file_name(name)).unwrap(),
            name
        );
    }

    // Per second: no counter, then .1, .2, … without a gap.
    let mut per_second: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for archive in &archives {
        assert!(!archive.gz, "{}", archive.name);
        per_second
            .entry(archive.stamp)
            .or_default()
            .push(archive.counter);
    }
    for (stamp, counters) in &per_second {
        let gapless: Vec<u64> = (0..counters.len() as u64).collect();
        assert_eq!(counters, &gapless, "counters of {}", archive_stamp(*stamp));
    }
    assert!(
        per_second.values().any(|counters| counters.len() > 1),
        "74 rotations, yet never two in one second: {per_second:?}"
    );

    // Stamped when rotated: after the archive's line was written, and before the next
    // file's line was (which the fmt layer may have stamped a moment before the rotation).
    let files: Vec<PathBuf> = archives
        .iter()
        .map(|archive| run.log.with_file_name(&archive.name))
        .chain([run.log.clone()])
        .collect();
    let first_line_second = |path: &PathBuf| line_second(&fs::read_to_string(path).unwrap());
    for (archive, next) in archives.iter().zip(&files[1..]) {
        let written = first_line_second(&run.log.with_file_name(&archive.name));
        let next_written = first_line_second(next);
        // The next line may have been stamped a moment (well under a second) before.
        let latest = next_written + 1;
        assert!(
            (written..=latest).contains(&archive.stamp),
            "{} holds a line of {} and the next file one of {}",
            archive.name,
            archive_stamp(written),
            archive_stamp(next_written)
        );
        assert!((started..=ended).contains(&archive.stamp));
    }
    assert_verified(&run.verifier().verify());
}

/// The names are in UTC without colons so that sorting them sorts the archives by age to
/// the second; within one second, the counter orders them as a number (`…Z.10` comes
/// after `…Z.9`): here, dozens of rotations in one second.
#[test]
fn names_sort_in_time_order() {
    let run = Run::new(3, 25);
    run.run();

    let by_age = stamped_archives(&run.log);
    assert!(
        by_age.len() > 20,
        "{:?}",
        by_age.iter().map(|a| &a.name).collect::<Vec<_>>()
    );
    for (older, newer) in by_age.iter().zip(&by_age[1..]) {
        // The stamps sort as text, and agree with the times they name.
        let (older_stamp, newer_stamp) = (&older.name[..28], &newer.name[..28]);
        assert!(
            older_stamp <= newer_stamp,
            "{} before {}",
            newer.name,
            older.name
        );
        assert_eq!(
            older_stamp < newer_stamp,
            older.stamp < newer.stamp,
            "{} and {}",
            older.name,
            newer.name
        );
        // Within a second, the counter (absent: 0) goes up.
        if older.stamp == newer.stamp {
            assert!(
                older.counter < newer.counter,
                "{} and {}",
                older.name,
                newer.name
            );
        }
    }
    // And the age order is the order the lines were written in.
    assert_verified(&run.verifier().check_record_order(true).verify());
}

/// A name whose `.gz` exists is taken, even with no plain file: rotations in those
/// seconds skip to a free counter, and every planted file is left exactly as it was.
#[test]
fn no_name_is_reused_when_its_gz_or_a_later_counter_exists() {
    let run = Run::new(3, 8);
    let now = unix_now();
    // For the next few seconds, `<stamp>.gz` and `<stamp>.2` exist: the rotations in
    // them must take `.1`, then `.3`, `.4`, …
    let mut planted: Vec<(String, Vec<u8>, WriterId)> = Vec::new();
    for (k, second) in (now - 1..now + 6).enumerate() {
        let stamp = archive_stamp(second);
        let compressed_writer = WriterId {
            process: 500 + k as u32,
            thread: 0,
        };
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(fmt_line(compressed_writer, 0).as_bytes())
            .unwrap();
        planted.push((
            format!("app.log.{stamp}.gz"),
            encoder.finish().unwrap(),
            compressed_writer,
        ));
        let plain_writer = WriterId {
            process: 600 + k as u32,
            thread: 0,
        };
        planted.push((
            format!("app.log.{stamp}.2"),
            fmt_line(plain_writer, 0).into_bytes(),
            plain_writer,
        ));
    }
    for (name, content, _) in &planted {
        fs::write(run.log.with_file_name(name), content).unwrap();
    }
    run.run();

    for (name, content, _) in &planted {
        assert_eq!(
            &fs::read(run.log.with_file_name(name)).unwrap(),
            content,
            "{name} was changed"
        );
    }
    let planted_names: Vec<&str> = planted.iter().map(|(name, _, _)| name.as_str()).collect();
    let made: Vec<StampedName> = stamped_archives(&run.log)
        .into_iter()
        .filter(|archive| !planted_names.contains(&archive.name.as_str()))
        .collect();
    assert_eq!(made.len() as u64, run.rotations());
    for archive in &made {
        let taken = planted_names
            .iter()
            .any(|name| name.starts_with(&format!("app.log.{}", archive_stamp(archive.stamp))));
        if taken {
            assert!(
                ![0, 2].contains(&archive.counter),
                "{} reuses a planted name",
                archive.name
            );
        }
    }
    // Every line once, in age order; a plain file beside a planted `.gz` of the same
    // name would have been reported as the two forms differing.
    let report = planted
        .iter()
        .fold(run.verifier(), |verifier, (_, _, writer)| {
            verifier.expect(*writer, Expect::Exactly(1))
        })
        .check_rotation_points(false)
        .check_record_order(true)
        .verify();
    assert_verified(&report);
}

/// Retention deletes the oldest archives; the name of a deleted archive is never given
/// to a newer one (which would then sort, and be deleted, as the oldest). Watched event
/// by event, in one process.
#[test]
fn a_deleted_archives_name_is_never_given_to_a_newer_archive() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let shared = SharedFile::builder(&log)
        .max_bytes(MAX_BYTES)
        .max_files(3)
        .naming(Naming::Timestamped)
        .build()
        .unwrap();
    let writer = WriterId {
        process: 0,
        thread: 0,
    };
    // Every name ever seen, with the line it held.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for seq in 0..30 {
        (&shared)
            .write_all(fmt_line(writer, seq).as_bytes())
            .unwrap();
        for archive in stamped_archives(&log) {
            let content = fs::read_to_string(log.with_file_name(&archive.name)).unwrap();
            let first = seen.entry(archive.name.clone()).or_insert(content.clone());
            assert_eq!(
                *first, content,
                "after seq {seq}: {} was given to a newer archive",
                archive.name
            );
        }
    }
    // The three newest archives are kept: seq 26, 27, 28 (29 is live).
    let kept: Vec<String> = stamped_archives(&log)
        .iter()
        .map(|archive| fs::read_to_string(log.with_file_name(&archive.name)).unwrap())
        .collect();
    let newest: Vec<String> = (26..29).map(|seq| fmt_line(writer, seq)).collect();
    assert_eq!(kept, newest, "the archives kept are not the newest");
}

/// The names in `dir` but the live file and its lock file, sorted.
fn archive_names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "app.log" && name != "app.log.lock")
        .collect();
    names.sort();
    names
}

/// Numbered rotations count the timestamped archives of the same log too, and may delete
/// all of them; the next timestamped rotation, in the same second, must still not take a
/// name one of them had. (One process, two writers with different namings: the order of
/// rotations is exact. Attempts are repeated until the whole run falls in one second,
/// where a name given twice can show.)
#[test]
fn a_name_is_not_given_again_after_numbered_rotations_deleted_every_timestamped_archive() {
    let second = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    for _attempt in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let line = |i: usize| format!("line {i:05}\n");
        let build = |naming| {
            SharedFile::builder(&path)
                .naming(naming)
                .max_bytes(2 * line(0).len() as u64)
                .max_files(3)
                .build()
                .unwrap()
        };
        let (timestamped, numbered) = (build(Naming::Timestamped), build(Naming::Numbered));
        let started = second();
        let mut sent = 0;
        let mut write = |log: &SharedFile, lines: usize| {
            for _ in 0..lines {
                (&*log).write_all(line(sent).as_bytes()).unwrap();
                sent += 1;
            }
        };
        write(&timestamped, 8);
        let given = archive_names_in(dir.path());
        write(&numbered, 6);
        let after_numbered = archive_names_in(dir.path());
        write(&timestamped, 2);
        let last = archive_names_in(dir.path());
        if second() != started {
            continue;
        }
        assert_eq!(
            (timestamped.stats().rotations, numbered.stats().rotations),
            (4, 3)
        );
        assert!(
            given.iter().all(|name| !after_numbered.contains(name)),
            "the numbered rotations did not retire the timestamped archives: {given:?} then {after_numbered:?}"
        );
        let again: Vec<&String> = last.iter().filter(|name| given.contains(name)).collect();
        assert!(
            again.is_empty(),
            "names given twice: {again:?} (first {given:?}, then {after_numbered:?}, then {last:?})"
        );
        return;
    }
    panic!("no attempt fell within one second");
}
