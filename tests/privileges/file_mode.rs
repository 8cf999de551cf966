//! `Builder::file_mode`: the exact permission bits of every file the crate
//! creates (the lock file, the log file, and so its archives, which are renamed log
//! files), whatever the umask; without it, `0o666` less the umask. It applies at creation
//! only: an existing file keeps its mode. A mode without owner read and write, or with
//! bits beyond `0o777`, is refused. No temporary file (`.app.log.<pid>.<n>.tmp`) is left
//! behind, and the next `build()` removes those a killed process left (only those).
//! Directories the crate creates take `file_mode` too, with search where it gives read.
//! None of this needs root.
//!
//! The umask is the whole process's, so the umask scenarios run in a fresh process each.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

use crate::common;
use crate::common::verifier::{Expect, Verifier};
use crate::common::workload::{WriterId, fmt_line};
use crate::support::{Counts, CountsOf, MAX_FILES, Mode, Scratch};
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
        .spawn(&exe, &common::entry!(umask_entry), "umask", |command| {
            command
                .env(UMASK_LOG_ENV, scratch.log())
                .env(UMASK_ENV, format!("{umask:o}"))
                .env(
                    FILE_MODE_ENV,
                    file_mode.map_or("none".to_string(), |mode| format!("{mode:o}")),
                );
        })
        .finish();
    finished.assert_exited_ok();
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

// ---------------------------------------------------------------------------------------
// Directories the crate creates take `file_mode`, with search wherever it gives read.

const DIR_MODES_ENV: &str = "TSF_PRIVILEGES_DIR_MODES";
/// Each case: the name of its tree, and its `file_mode` (`None`: no `file_mode`).
const DIR_MODE_CASES: [(&str, Option<u32>); 5] = [
    ("none", None),
    ("600", Some(0o600)),
    ("640", Some(0o640)),
    ("660", Some(0o660)),
    ("666", Some(0o666)),
];

/// The log of one case, two directories below the tree's existing root:
/// `<base>/<case>/a/b/app.log`.
fn nested_log(base: &std::path::Path, case: &str) -> PathBuf {
    base.join(case).join("a").join("b").join("app.log")
}

/// Child side: under umask 077, for each case builds a log whose two directories above it
/// are missing, in `<root>/built`; and in `<root>/recreated`, builds and logs, removes
/// both directories, and logs again, so that the writer creates them anew.
#[test]
fn directory_modes_entry() {
    let Some(root) = std::env::var_os(DIR_MODES_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0o077) };
    for (case, file_mode) in DIR_MODE_CASES {
        for tree in ["built", "recreated"] {
            let path = nested_log(&root.join(tree), case);
            let mut builder = SharedFile::builder(&path)
                // The removal below is noticed at the next write.
                .path_check_interval(std::time::Duration::ZERO);
            if let Some(mode) = file_mode {
                builder = builder.file_mode(mode);
            }
            let log = builder.build().expect("build");
            write_lines(&log, WRITER, 0..1);
            if tree == "recreated" {
                fs::remove_dir_all(root.join(tree).join(case).join("a")).unwrap();
                write_lines(&log, WRITER, 1..2);
            }
        }
    }
}

/// Under umask 077, the directories that `build()` creates, and those a writer creates
/// again after they were removed, get `file_mode` with search added wherever it gives
/// read (`0o660` makes `0o770`), exactly; without `file_mode`, the umask decides
/// (`0o700`). The directory that existed keeps its mode. Before the fix they were always
/// made by the umask, so a worker of the group could not reach files made `0o660` for it.
#[test]
fn directories_the_crate_creates_take_file_mode_with_search_where_it_gives_read() {
    let scratch = Scratch::new(None, 0o755);
    for tree in ["built", "recreated"] {
        let dir = scratch.logs.join(tree);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let finished = scratch
        .spawn(
            &exe,
            &common::entry!(directory_modes_entry),
            "dir-modes",
            |command| {
                command.env(DIR_MODES_ENV, &scratch.logs);
            },
        )
        .finish();
    finished.assert_exited_ok();

    let mode_of = |path: &std::path::Path| {
        Mode::of(&fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    };
    for tree in ["built", "recreated"] {
        let base = scratch.logs.join(tree);
        let (mut actual, mut expected) = (BTreeMap::new(), BTreeMap::new());
        for (case, file_mode) in DIR_MODE_CASES {
            let log = nested_log(&base, case);
            let b = log.parent().unwrap();
            let a = b.parent().unwrap();
            let top = a.parent().unwrap();
            let (dir_mode, files_mode) = match file_mode {
                Some(mode) => (mode | (mode & 0o444) >> 2, mode),
                None => (0o700, 0o600),
            };
            let name =
                |path: &std::path::Path| path.strip_prefix(&base).unwrap().display().to_string();
            for (dir, mode) in [(top, dir_mode), (a, dir_mode), (b, dir_mode)] {
                actual.insert(name(dir), mode_of(dir));
                expected.insert(name(dir), Mode(mode));
            }
            for file in [log.clone(), log.with_file_name("app.log.lock")] {
                actual.insert(name(&file), mode_of(&file));
                expected.insert(name(&file), Mode(files_mode));
            }
            let lines = if tree == "recreated" { 1..2 } else { 0..1 };
            assert_eq!(
                fs::read_to_string(&log).unwrap(),
                lines.map(|seq| fmt_line(WRITER, seq)).collect::<String>(),
                "{}",
                log.display()
            );
        }
        assert_eq!(
            actual, expected,
            "the modes of the directories and files in `{tree}` (umask 077)"
        );
        assert_eq!(
            mode_of(&base),
            Mode(0o755),
            "an existing directory keeps its mode"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Temporary files that a killed process left are removed by the next build.

/// A process id that no process has: that of a child that has been waited for.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("run `true`");
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    pid
}

/// A process killed while it created a file with `file_mode` (or compressed an archive)
/// leaves its hidden temporary file, `.app.log.<pid>.<n>.tmp`. The next `build()` removes
/// those whose process is gone, and only those: one of a live process is being written,
/// and names of other forms are not this crate's to touch.
#[test]
fn build_removes_the_temporary_files_of_dead_processes_and_nothing_else() {
    let scratch = Scratch::new(None, 0o755);
    let dead = dead_pid();
    let alive = std::process::id();
    let removed = [
        format!(".app.log.{dead}.0.tmp"),
        format!(".app.log.{dead}.17.tmp"),
        // A compressor's.
        format!(".app.log.2026-11-27T14-00-00Z.gz.{dead}.0.tmp"),
        // Beyond any pid the kernel hands out.
        ".app.log.99999999.0.tmp".to_string(),
    ];
    let kept = [
        // This process is alive (a counter far above the ones this process uses).
        format!(".app.log.{alive}.999999.tmp"),
        ".app.log.bak".to_string(),
        format!(".app.log.{dead}.tmp.txt"),
        format!(".app.log.{dead}.tmp"),
        format!(".app.log.x{dead}.0.tmp"),
        format!("app.log.{dead}.0.tmp"),
        format!(".other.log.{dead}.0.tmp"),
        format!(".app.logx.{dead}.0.tmp"),
    ];
    for name in removed.iter().chain(&kept) {
        fs::write(scratch.logs.join(name), name).unwrap();
    }
    let log = SharedFile::builder(scratch.log())
        .file_mode(0o640)
        .build()
        .unwrap();
    write_lines(&log, WRITER, 0..1);

    let mut expected: Vec<String> = kept.to_vec();
    expected.extend(["app.log".to_string(), "app.log.lock".to_string()]);
    expected.sort();
    let mut names: Vec<String> = fs::read_dir(&scratch.logs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names, expected,
        "the temporary files of dead process {dead} are gone, everything else is there"
    );
    for name in &kept {
        assert_eq!(
            fs::read_to_string(scratch.logs.join(name)).unwrap(),
            *name,
            "{name} is untouched"
        );
    }
    assert_eq!(
        fs::read_to_string(scratch.log()).unwrap(),
        fmt_line(WRITER, 0)
    );
}

/// A directory the crate creates inside a set-group-ID directory keeps the bit, so files
/// made in it still take the shared group (chmod would otherwise clear it).
#[test]
fn a_directory_made_in_a_set_group_id_directory_keeps_the_bit() {
    let root = tempfile::tempdir().unwrap();
    let shared = root.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o2775)).unwrap();
    let log = SharedFile::builder(shared.join("sub/app.log"))
        .file_mode(0o660)
        .build()
        .unwrap();
    drop(log);
    let sub = fs::metadata(shared.join("sub")).unwrap();
    assert_eq!(sub.mode() & 0o7777, 0o2770);
    assert_eq!(
        fs::metadata(shared.join("sub/app.log")).unwrap().gid(),
        fs::metadata(&shared).unwrap().gid()
    );
}
