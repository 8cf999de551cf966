//! `Builder::file_mode`: the exact permission bits of every file the crate
//! creates (the lock file, the log file, and so its archives, which are renamed log
//! files), whatever the umask; without it, `0o666` less the umask. It applies at creation
//! only: an existing file keeps its mode. A mode without owner read and write, or with
//! bits beyond `0o777`, is refused. No temporary file (`.app.log.<pid>.<n>.tmp`) is left
//! behind. None of this needs root.
//!
//! The umask is the whole process's, so the umask scenarios run in a fresh process each.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

use crate::common::verifier::{Expect, Verifier};
use crate::common::workload::{WriterId, fmt_line};
use crate::support::{Counts, MAX_FILES, Mode, Scratch};
use tracing_shared_file::{ErrorKind, SharedFile};

const UMASK_ENV: &str = "TSF_PRIVILEGES_UMASK";
/// The mode in octal, or `none` for no `file_mode`.
const FILE_MODE_ENV: &str = "TSF_PRIVILEGES_FILE_MODE";
const UMASK_LOG_ENV: &str = "TSF_PRIVILEGES_UMASK_LOG";
/// Small, so that a few dozen lines rotate several times.
const SMALL_MAX_BYTES: u64 = 1024;
const LINES: u64 = 60;
const WRITER: WriterId = WriterId {
    process: 0,
    thread: 0,
};

fn write_lines(mut log: &SharedFile, writer: WriterId, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        log.write_all(fmt_line(writer, seq).as_bytes())
            .expect("write");
    }
}

/// The mode of each file.
fn modes(files: &BTreeMap<String, fs::Metadata>) -> BTreeMap<String, Mode> {
    files
        .iter()
        .map(|(name, metadata)| (name.clone(), Mode::of(metadata)))
        .collect()
}

/// `mode` for every file of `files`.
fn all_with<V>(files: &BTreeMap<String, V>, mode: u32) -> BTreeMap<String, Mode> {
    files
        .keys()
        .map(|name| (name.clone(), Mode(mode)))
        .collect()
}

/// Child side: sets the umask, builds (with `file_mode` if given), logs with rotation.
#[test]
fn umask_entry() {
    let (Some(log), Ok(umask), Ok(file_mode)) = (
        std::env::var_os(UMASK_LOG_ENV),
        std::env::var(UMASK_ENV),
        std::env::var(FILE_MODE_ENV),
    ) else {
        return;
    };
    let umask = u32::from_str_radix(&umask, 8).unwrap();
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(umask as libc::mode_t) };
    let mut builder = SharedFile::builder(PathBuf::from(log))
        .max_bytes(SMALL_MAX_BYTES)
        .max_files(MAX_FILES);
    if file_mode != "none" {
        builder = builder.file_mode(u32::from_str_radix(&file_mode, 8).unwrap());
    }
    let log = builder.build().expect("build");
    write_lines(&log, WRITER, 0..LINES);
    println!("\nSTATS {}", Counts::of(&log.stats()).to_fields());
}

/// Runs a process that logs with rotation under `umask`, with `file_mode` if given, and
/// returns every file it left (checking that it left nothing else) with its mode.
fn modes_after_a_run(umask: u32, file_mode: Option<u32>) -> BTreeMap<String, Mode> {
    let scratch = Scratch::new(None, 0o755);
    let exe = std::env::current_exe().unwrap();
    let finished = scratch
        .spawn(&exe, "file_mode::umask_entry", "umask", |command| {
            command
                .env(UMASK_LOG_ENV, scratch.log())
                .env(UMASK_ENV, format!("{umask:o}"))
                .env(
                    FILE_MODE_ENV,
                    file_mode.map_or("none".to_string(), |mode| format!("{mode:o}")),
                );
        })
        .finish();
    finished.assert_success();
    assert_eq!(finished.reports(), Vec::<&str>::new(), "nothing failed");
    let counts = finished.counts();
    counts.assert_clean("the process", LINES);
    let report = Verifier::new(scratch.log(), SMALL_MAX_BYTES, MAX_FILES)
        .expect(WRITER, Expect::Exactly(LINES))
        .verify();
    report.assert_ok();
    assert_eq!(counts.rotations, report.archives as u64);
    assert!(report.archives >= 2, "archives were made\n{report}");
    modes(&scratch.log_files(report.archives))
}

#[test]
fn file_mode_gives_exactly_its_bits_under_umask_077() {
    let modes = modes_after_a_run(0o077, Some(0o640));
    assert_eq!(
        modes,
        all_with(&modes, 0o640),
        "lock file, live file and every archive"
    );
}

#[test]
fn file_mode_gives_exactly_its_bits_under_umask_000() {
    let modes = modes_after_a_run(0o000, Some(0o640));
    assert_eq!(
        modes,
        all_with(&modes, 0o640),
        "lock file, live file and every archive"
    );
}

#[test]
fn without_file_mode_the_umask_decides() {
    for (umask, mode) in [(0o077, 0o600), (0o000, 0o666)] {
        let modes = modes_after_a_run(umask, None);
        assert_eq!(modes, all_with(&modes, mode), "under umask {umask:03o}");
    }
}

#[test]
fn an_existing_file_keeps_its_mode_while_files_created_later_get_file_mode() {
    let scratch = Scratch::new(None, 0o755);
    // Both files exist before the build, mode 0600; the log holds a first line.
    fs::write(scratch.log(), fmt_line(WRITER, 0)).unwrap();
    File::create(scratch.lock()).unwrap();
    for path in [scratch.log(), scratch.lock()] {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let original = fs::metadata(scratch.log()).unwrap().ino();
    let log = SharedFile::builder(scratch.log())
        .max_bytes(SMALL_MAX_BYTES)
        .max_files(MAX_FILES)
        .file_mode(0o660)
        .build()
        .unwrap();
    write_lines(&log, WRITER, 1..LINES);

    let report = Verifier::new(scratch.log(), SMALL_MAX_BYTES, MAX_FILES)
        .expect(WRITER, Expect::Exactly(LINES))
        .verify();
    report.assert_ok();
    assert_eq!(log.stats().rotations, report.archives as u64);
    assert!(report.archives >= 2, "archives were made\n{report}");
    let files = scratch.log_files(report.archives);
    let oldest = format!("app.log.{}", report.archives);
    assert_eq!(
        files[&oldest].ino(),
        original,
        "the file that was there is the oldest archive"
    );
    let mut expected = all_with(&files, 0o660);
    expected.insert("app.log.lock".to_string(), Mode(0o600));
    expected.insert(oldest, Mode(0o600));
    assert_eq!(modes(&files), expected);
}

#[test]
fn a_file_mode_without_owner_read_and_write_or_with_bits_beyond_0o777_is_refused() {
    let scratch = Scratch::new(None, 0o755);
    let log = scratch.log();
    for mode in [
        0o444, 0o400, 0o200, 0o000, 0o1660, 0o2660, 0o4660, 0o10660, 0o7777,
    ] {
        let error = SharedFile::builder(&log)
            .file_mode(mode)
            .build()
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.path()),
            (ErrorKind::InvalidFileMode, log.as_path()),
            "file_mode({mode:#o})"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "log file `{}`: file_mode must give the owner read and write, and no bits \
                 beyond 0o777",
                log.display()
            )
        );
    }
    assert_eq!(
        fs::read_dir(&scratch.logs).unwrap().count(),
        0,
        "nothing was created"
    );
    // The bounds are valid, and exact whatever this process's umask.
    for mode in [0o600, 0o777] {
        let path = scratch.logs.join(format!("{mode:o}")).join("app.log");
        let log = SharedFile::builder(&path).file_mode(mode).build().unwrap();
        write_lines(&log, WRITER, 0..1);
        for file in [path.clone(), path.with_file_name("app.log.lock")] {
            let actual = Mode::of(&fs::metadata(&file).unwrap());
            assert_eq!(actual, Mode(mode), "{}", file.display());
        }
    }
}

#[test]
fn a_normal_run_leaves_no_temporary_files() {
    let scratch = Scratch::new(None, 0o755);
    // Two independent builds race to create the files, then log and rotate side by side.
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (1..=2)
        .map(|process| {
            let (path, start) = (scratch.log(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let log = SharedFile::builder(path)
                    .max_bytes(SMALL_MAX_BYTES)
                    .max_files(MAX_FILES)
                    .file_mode(0o640)
                    .build()
                    .unwrap();
                write_lines(&log, WriterId { process, thread: 0 }, 0..LINES);
                Counts::of(&log.stats())
            })
        })
        .collect();
    let mut rotations = 0;
    let mut verifier = Verifier::new(scratch.log(), SMALL_MAX_BYTES, MAX_FILES);
    for (process, writer) in (1..=2).zip(writers) {
        let counts = writer.join().expect("writer thread");
        counts.assert_clean(&format!("writer {process}"), LINES);
        rotations += counts.rotations;
        verifier = verifier.expect(WriterId { process, thread: 0 }, Expect::Exactly(LINES));
    }
    let report = verifier.verify();
    report.assert_ok();
    assert_eq!(rotations, report.archives as u64);
    // Exactly the live file, the lock file and the archives: no `.app.log.*.tmp`.
    let files = scratch.log_files(report.archives);
    assert_eq!(modes(&files), all_with(&files, 0o640));
}
