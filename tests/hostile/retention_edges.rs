//! Hostile inputs to retention: a live file last modified at the epoch, an archive that
//! cannot be deleted, and `max_total_bytes` added on a restart. No panic, no archive named
//! before 2000, no write that rotates for nothing, retention oldest first, every line
//! whole and present.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::rotation_policy::{
    MAX_BYTES, WRITER, archive_names, assert_written_whole, now, timestamped, verifier,
    wait_until_into_period, write,
};
use crate::common;
use common::immutable::Immutable;
use common::verifier::Expect;
use common::workload::{RotationPolicy, Workers, WriterId, WriterSpec, fmt_line};
use tracing_shared_file::Period;

/// Child side of the `Workers` below.
#[test]
fn worker_entry() {
    common::workload::run_worker_saving_stats();
}

/// A live file last modified at the epoch and a new lock file, with time rotation: the
/// file is never taken as 1970, neither in the archive's name nor by `max_age`.
#[test]
fn a_live_file_modified_at_the_epoch_is_never_taken_as_1970() {
    epoch_mtime(None);
}

#[test]
fn a_live_file_modified_at_the_epoch_is_never_deleted_by_max_age() {
    epoch_mtime(Some(Duration::from_secs(60)));
}

fn epoch_mtime(max_age: Option<Duration>) {
    let what = format!("max_age {max_age:?}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let old: String = (0..3).map(|seq| fmt_line(WRITER, seq)).collect();
    fs::write(&log, old).unwrap();
    fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(UNIX_EPOCH)
        .unwrap();
    let mut builder = timestamped(&log)
        .max_bytes(u64::MAX)
        .max_files(100)
        .rotate_every(Period::Every(Duration::from_secs(1)));
    if let Some(age) = max_age {
        builder = builder.max_age(age);
    }
    let shared = builder.build().unwrap();
    for seq in 3..6 {
        write(&shared, WRITER, seq..seq + 1);
        wait_until_into_period(1000, 50);
    }
    write(&shared, WRITER, 6..7);
    let expected = verifier(&log, u64::MAX, 100)
        .check_rotation_points(false)
        .check_record_order(true)
        .expect(WRITER, Expect::Exactly(7));
    assert_written_whole(shared, &log, &what, expected);
}

/// One archive that cannot be deleted, with time rotation every second and
/// `max_files(1)`: one rotation per boundary, not one per write; the archives left over
/// stay bounded; the failure reaches `on_error` as a failure to delete old archives,
/// not as a failed rotation.
#[test]
fn an_undeletable_archive_neither_makes_every_write_rotate_nor_fails_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    {
        let shared = timestamped(&log)
            .max_bytes(MAX_BYTES)
            .max_files(2)
            .build()
            .unwrap();
        write(&shared, WRITER, 0..6);
    }
    let stuck = archive_names(&log)[0].clone();
    let Some(_immutable) = Immutable::set(&log.with_file_name(&stuck)) else {
        return;
    };
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let hook_failures = Arc::clone(&failures);
    let shared = timestamped(&log)
        .max_bytes(u64::MAX)
        .max_files(1)
        .rotate_every(Period::Every(Duration::from_secs(1)))
        .on_error(move |failure| hook_failures.lock().unwrap().push(failure.to_string()))
        .build()
        .unwrap();
    let writer = WriterId {
        process: 2,
        ..WRITER
    };
    let first_second = now();
    let end = Instant::now() + Duration::from_secs(5);
    let mut seq = 0;
    while Instant::now() < end {
        write(&shared, writer, seq..seq + 1);
        seq += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let boundaries = (now() - first_second) as u64;
    let stats = shared.stats();
    let others: Vec<String> = archive_names(&log)
        .into_iter()
        .filter(|name| *name != stuck)
        .collect();
    let failures = failures.lock().unwrap().clone();
    assert!(
        stats.rotations <= boundaries + 1 && stats.rotations + 1 >= boundaries,
        "{} rotations for {boundaries} boundaries and {seq} writes: {stats:?}",
        stats.rotations
    );
    assert!(
        others.len() <= 2,
        "max_files 1 but {} archives besides the undeletable one: {others:?}",
        others.len()
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("cannot delete or compress")),
        "on_error never heard of the undeletable archive: {failures:?}"
    );
    assert!(
        !failures.iter().any(|f| f.contains("grows past max_bytes")),
        "rotations that happened were reported as failed: {failures:?}"
    );
    assert_eq!(stats.write_errors, 0, "{stats:?}");
    let live = fs::read_to_string(&log).unwrap();
    assert!(
        live.ends_with(&fmt_line(writer, seq - 1)),
        "the last record is not the live file's last line"
    );
}

/// `max_total_bytes` added on a restart, to archives made without it: the second
/// process applies it to them all (delete down to limit - limit/16 once over), so after
/// its rotations the archives take at most the limit.
#[test]
fn max_total_bytes_added_on_restart_applies_to_the_archives_already_there() {
    const LIMIT: u64 = 5000;
    const ROTATE_AT: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("logs")).unwrap();
    let log = dir.path().join("logs/app.log");
    let mut policy = RotationPolicy {
        timestamped: true,
        ..RotationPolicy::default()
    };
    let mut specs = Vec::new();
    // The second process sets no count limit that would make it list the archives.
    for (process, lines, max_files) in [(1, 200, 20), (2, 24, 1000)] {
        let sync = dir.path().join(format!("sync{process}"));
        fs::create_dir(&sync).unwrap();
        let spec = WriterSpec {
            max_bytes: ROTATE_AT,
            max_files,
            process,
            lines_per_thread: lines,
            policy,
            ..WriterSpec::new(log.clone(), sync)
        };
        Workers::start(
            || common::entry_command(&common::entry!(worker_entry)),
            std::slice::from_ref(&spec),
        )
        .wait_within(Duration::from_secs(60));
        let stats = spec.saved_stats();
        assert_eq!((stats.write_errors, stats.rotation_errors), (0, 0));
        let wanted = if process == 1 { 5 } else { 2 };
        assert!(stats.rotations >= wanted, "process {process}: {stats:?}");
        if process == 1 {
            let total: u64 = archive_sizes(&log).iter().map(|(_, len)| len).sum();
            assert!(total > LIMIT, "the first process left only {total} bytes");
        }
        specs.push(spec);
        policy.max_total_bytes = Some(LIMIT);
    }
    let sizes = archive_sizes(&log);
    let total: u64 = sizes.iter().map(|(_, len)| len).sum();
    assert!(
        total <= LIMIT,
        "{total} bytes of archives under max_total_bytes {LIMIT}: {sizes:?}"
    );
    let report = specs
        .iter()
        .fold(verifier(&log, ROTATE_AT, 20), |verifier, spec| {
            let total = spec.lines_per_thread;
            verifier.expect_threads(spec.process, 1, Expect::Newest { total })
        })
        .verify();
    assert!(report.is_ok(), "{report}");
}

fn archive_sizes(log: &Path) -> Vec<(String, u64)> {
    archive_names(log)
        .into_iter()
        .map(|name| {
            let len = fs::metadata(log.with_file_name(&name)).unwrap().len();
            (name, len)
        })
        .collect()
}
