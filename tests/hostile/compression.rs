//! Hostile inputs to compression: something already at an
//! archive's `.gz` name (a symbolic link, an empty file, a truncated gzip), an archive
//! that cannot be deleted, a foreign name stamped in 2099; and the non-blocking writer's
//! `flush()` racing the guard's drop. Each test asserts what the library must do: no
//! line lost, foreign files left as they were, the other archives still compressed,
//! failures reported to `on_error`.

use crate::common;

use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::immutable::Immutable;
use common::verifier::{Expect, Report, Verifier};
use common::workload::{StampedName, WriterId, fmt_line, stamped_archives};
use tracing_shared_file::{Naming, SharedFile};

const WRITER: WriterId = WriterId {
    process: 1,
    thread: 0,
};
/// Two records per file.
const MAX_BYTES: u64 = 300;
const KEEP_ALL: usize = 1000;
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);

fn compressed(log: &Path) -> tracing_shared_file::Builder {
    SharedFile::builder(log)
        .naming(Naming::Timestamped)
        .max_bytes(MAX_BYTES)
        .max_files(KEEP_ALL)
        .compress(true)
}

/// Writes records from `*seq` on until this process has rotated `rotations` times in all.
fn write_until_rotated(log: &SharedFile, seq: &mut u64, rotations: u64) {
    while log.stats().rotations < rotations {
        assert!(*seq < 10_000, "never rotated: {:?}", log.stats());
        (&*log)
            .write_all(fmt_line(WRITER, *seq).as_bytes())
            .unwrap_or_else(|e| panic!("write of record {seq} failed: {e}"));
        *seq += 1;
    }
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut names: Vec<(String, u64)> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            (entry.file_name().into_string().unwrap(), len)
        })
        .collect();
    names.sort();
    names
}

/// Waits (bounded) until no compressor's temporary file is left and the directory has
/// not changed for a while: the compression passes are over.
fn wait_until_quiet(dir: &Path) {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    let mut last = listing(dir);
    let mut quiet_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = listing(dir);
        let temporaries = now.iter().any(|(name, _)| name.ends_with(".tmp"));
        if now != last || temporaries {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(500) {
            return;
        }
        assert!(Instant::now() < deadline, "never settled: {last:?}");
    }
}

/// Waits (bounded) until every archive but the newest and those in `except` is only
/// gzipped, and no temporary file is left.
fn wait_until_compressed(log: &Path, except: &[&str]) {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    loop {
        let archives: Vec<StampedName> = stamped_archives(log)
            .into_iter()
            .filter(|a| !except.contains(&a.name.strip_suffix(".gz").unwrap_or(&a.name)))
            .collect();
        let newest = archives.iter().map(|a| (a.stamp, a.counter)).max();
        let left: Vec<&str> = archives
            .iter()
            .filter(|a| Some((a.stamp, a.counter)) != newest)
            .filter(|a| {
                // Plain, or gzipped with its plain form still there.
                !a.gz
                    || archives
                        .iter()
                        .any(|b| !b.gz && b.stamp == a.stamp && b.counter == a.counter)
            })
            .map(|a| a.name.as_str())
            .collect();
        let temporaries = listing(log.parent().unwrap())
            .into_iter()
            .any(|(name, _)| name.ends_with(".tmp"));
        if left.is_empty() && !temporaries {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "archives never compressed: {left:?}; directory: {:?}",
            listing(log.parent().unwrap())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[track_caller]
fn assert_all_lines(log: &Path, lines: u64) -> Report {
    let report = Verifier::new(log, MAX_BYTES, KEEP_ALL)
        .timestamped(true)
        .expect(WRITER, Expect::Exactly(lines))
        .verify();
    assert!(report.is_ok(), "lines lost or damaged:\n{report}");
    report
}

/// What a test put at an archive's `.gz` name.
#[derive(Debug, Clone, Copy)]
enum ForeignGz {
    /// A symbolic link to a file outside the log directory.
    Symlink,
    /// An empty regular file (`gzip -c X > X.gz` interrupted at once).
    Empty,
    /// A gzip header and nothing more.
    Truncated,
}

/// Something already at `<archive>.gz` is not taken for a finished compression: the
/// plain archive is never deleted, every line stays, and the foreign object is left as
/// it was.
fn foreign_gz(kind: ForeignGz) {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let shared = compressed(&log).build().unwrap();
    let mut seq = 0;
    write_until_rotated(&shared, &mut seq, 1);
    let first = stamped_archives(&log)[0].name.clone();
    let gz = log.with_file_name(format!("{first}.gz"));
    let target = outside.path().join("elsewhere");
    fs::write(&target, "outside the log directory\n").unwrap();
    match kind {
        ForeignGz::Symlink => std::os::unix::fs::symlink(&target, &gz).unwrap(),
        ForeignGz::Empty => fs::write(&gz, b"").unwrap(),
        ForeignGz::Truncated => fs::write(&gz, b"\x1f\x8b\x08\x00").unwrap(),
    }
    write_until_rotated(&shared, &mut seq, 4);
    assert_eq!(shared.stats().write_errors, 0);
    drop(shared);
    wait_until_quiet(dir.path());

    let meta = fs::symlink_metadata(&gz)
        .unwrap_or_else(|e| panic!("{kind:?} at {first}.gz was removed: {e}"));
    match kind {
        ForeignGz::Symlink => {
            assert!(meta.file_type().is_symlink(), "the symlink was replaced");
            assert_eq!(fs::read_link(&gz).unwrap(), target);
        }
        ForeignGz::Empty => assert!(meta.is_file() && meta.len() == 0, "{meta:?}"),
        ForeignGz::Truncated => assert_eq!(fs::read(&gz).unwrap(), b"\x1f\x8b\x08\x00"),
    }
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "outside the log directory\n",
        "the symlink's target was written"
    );
    assert!(
        log.with_file_name(&first).exists(),
        "{first} was deleted for a {kind:?} at its .gz name: {:?}",
        listing(dir.path())
    );
    // Not ours: out of the verifier's way.
    fs::remove_file(&gz).unwrap();
    assert_all_lines(&log, seq);
}

#[test]
fn a_symlink_at_an_archives_gz_name_never_loses_the_archive() {
    foreign_gz(ForeignGz::Symlink);
}

#[test]
fn an_empty_file_at_an_archives_gz_name_never_loses_the_archive() {
    foreign_gz(ForeignGz::Empty);
}

#[test]
fn a_truncated_gzip_at_an_archives_gz_name_never_loses_the_archive() {
    foreign_gz(ForeignGz::Truncated);
}

/// One archive that cannot be deleted once compressed: every other archive is still
/// compressed, and the failure reaches `on_error`.
#[test]
fn an_undeletable_archive_does_not_stop_the_others_being_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let hook_failures = Arc::clone(&failures);
    let shared = compressed(&log)
        .on_error(move |failure| hook_failures.lock().unwrap().push(failure.to_string()))
        .build()
        .unwrap();
    let mut seq = 0;
    write_until_rotated(&shared, &mut seq, 1);
    let stuck = stamped_archives(&log)[0].name.clone();
    let Some(_immutable) = Immutable::set(&log.with_file_name(&stuck)) else {
        return;
    };
    for rotations in 2..=7 {
        write_until_rotated(&shared, &mut seq, rotations);
    }
    wait_until_compressed(&log, &[&stuck]);
    assert!(log.with_file_name(&stuck).exists());
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures
            .iter()
            .any(|f| f.contains("cannot delete or compress")),
        "on_error never heard of the undeletable archive: {failures:?}"
    );
    assert_eq!(shared.stats().write_errors, 0);
    drop(shared);
    wait_until_quiet(dir.path());
    let report = assert_all_lines(&log, seq);
    assert!(report.archives >= 7, "{report}");
}

/// A foreign file stamped in 2099 is no archive: never compressed, renamed or deleted,
/// and the archives made now are named by the clock and compressed as usual.
#[test]
fn a_name_stamped_far_in_the_future_is_never_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let foreign = log.with_file_name("app.log.2099-01-01T00-00-00Z");
    fs::write(&foreign, "restored from another machine\n").unwrap();
    let shared = compressed(&log).build().unwrap();
    let mut seq = 0;
    write_until_rotated(&shared, &mut seq, 4);
    wait_until_compressed(&log, &["app.log.2099-01-01T00-00-00Z"]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for archive in stamped_archives(&log) {
        let base = archive.name.strip_suffix(".gz").unwrap_or(&archive.name);
        if base == "app.log.2099-01-01T00-00-00Z" {
            continue;
        }
        assert!(
            (archive.stamp - now).abs() <= 60,
            "{} is not named by the clock",
            archive.name
        );
    }
    drop(shared);
    wait_until_quiet(dir.path());
    assert_eq!(
        fs::read_to_string(&foreign).ok().as_deref(),
        Some("restored from another machine\n"),
        "the 2099 file was touched: {:?}",
        listing(dir.path())
    );
    let names: Vec<String> = listing(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("app.log.2099-01-01T00-00-00Z.")),
        "names taken from the 2099 file: {names:?}"
    );
    fs::remove_file(&foreign).unwrap();
    let report = assert_all_lines(&log, seq);
    assert_eq!(report.compressed, report.archives - 1, "{report}");
}

/// `flush()` on one thread while the guard is dropped on another (a shutdown): when
/// `flush()` returns, every event queued before the call is in the file.
#[test]
fn flush_racing_the_guards_drop_returns_only_once_everything_is_written() {
    const QUEUED: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let shared = SharedFile::builder(&log)
        .max_bytes(u64::MAX)
        .build()
        .unwrap();
    // Another holder of the lock keeps the background thread waiting.
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(log.with_file_name("app.log.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (mut writer, guard) = shared.non_blocking();
    writer.write_all(fmt_line(WRITER, 0).as_bytes()).unwrap();
    // The background thread takes it and waits for the lock.
    std::thread::sleep(Duration::from_millis(100));
    for seq in 1..QUEUED {
        writer.write_all(fmt_line(WRITER, seq).as_bytes()).unwrap();
    }
    let flusher = {
        let mut writer = writer.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            writer.flush().unwrap();
            // At once: the size of the file is what flush() left written.
            let len = fs::metadata(&log).unwrap().len();
            let text = fs::read(&log).unwrap();
            text[..len as usize].iter().filter(|&&b| b == b'\n').count() as u64
        })
    };
    // The flush is waiting; shutdown begins on another thread, then the lock is free.
    std::thread::sleep(Duration::from_millis(200));
    let dropper = std::thread::spawn(move || drop(guard));
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) }, 0);
    let seen = flusher.join().expect("flusher");
    dropper.join().expect("dropper");
    assert_eq!(
        seen, QUEUED,
        "flush() returned with {seen} of the {QUEUED} events queued before it written"
    );
    let report = Verifier::new(&log, u64::MAX, 1)
        .expect(WRITER, Expect::Exactly(QUEUED))
        .verify();
    assert!(report.is_ok(), "{report}");
}
