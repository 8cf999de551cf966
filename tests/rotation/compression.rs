//! Compression of timestamped archives (`compress(true)`), with real processes.
//!
//! - `build()` refuses compression with numbered names.
//! - Several processes rotating and compressing at once: every line lands exactly once,
//!   in a plain or a `.gz` archive; once the last process's compression is done, every
//!   archive but the newest is gzipped, the newest is plain, and no temporary file is
//!   left; files that only look like archives are never compressed.
//! - Compression with retention keeps the limits.
//!
//! The rotating children here are shared with `compression_races`.

use crate::common;

use common::children::{RunningChild, start_entry};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{
    RotationPolicy, StampedName, Workers, WriterId, WriterSpec, fmt_line, stamped_archives,
};
use tracing_shared_file::{ErrorKind, Naming, SharedFile};

pub(crate) const WORKER_DEADLINE: Duration = Duration::from_secs(60);
/// How long the last process may take to compress what is left.
pub(crate) const SETTLE_DEADLINE: Duration = Duration::from_secs(30);
pub(crate) const KEEP_ALL: usize = 100_000;

const ENV_CHILD: &str = "TSF_COMPRESS_CHILD";
const ENV_LOG: &str = "TSF_COMPRESS_LOG";
const ENV_SYNC: &str = "TSF_COMPRESS_SYNC";
const ENV_MAX_BYTES: &str = "TSF_COMPRESS_MAX_BYTES";
const ENV_MAX_FILES: &str = "TSF_COMPRESS_MAX_FILES";
const ENV_MODE: &str = "TSF_COMPRESS_MODE";

#[test]
fn worker_entry() {
    common::workload::run_worker_saving_stats();
}

/// What a rotating child does once it has rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Exit at once (a normal exit, which waits for its compression).
    Exit,
    /// Wait until its compression has left the directory settled (see `settled`).
    Settle,
    /// Wait to be killed (or for `<sync>/quit`).
    Hold,
}

/// A child that writes records of writer `(process, 0)` until it has rotated once,
/// writes how many it wrote to `<sync>/wrote.<process>`, and the `.gz` files there were
/// as its last write returned to `<sync>/gz.<process>`, then does what `Then` says.
#[test]
fn rotating_child_entry() {
    let Some(process) = std::env::var_os(ENV_CHILD) else {
        return;
    };
    let process: u32 = process.to_str().unwrap().parse().unwrap();
    let var = |name| std::env::var(name).unwrap();
    let log = PathBuf::from(var(ENV_LOG));
    let sync = PathBuf::from(var(ENV_SYNC));
    let then = match var(ENV_MODE).as_str() {
        "exit" => Then::Exit,
        "settle" => Then::Settle,
        _ => Then::Hold,
    };
    let shared = SharedFile::builder(&log)
        .max_bytes(var(ENV_MAX_BYTES).parse().unwrap())
        .max_files(var(ENV_MAX_FILES).parse().unwrap())
        .naming(Naming::Timestamped)
        .compress(true)
        .build()
        .expect("build");
    let writer = WriterId { process, thread: 0 };
    let mut written = 0;
    while shared.stats().rotations == 0 {
        assert!(written < 100_000, "never rotated");
        (&shared)
            .write_all(fmt_line(writer, written).as_bytes())
            .expect("write");
        written += 1;
    }
    let compressed: Vec<String> = listing(log.parent().unwrap())
        .into_iter()
        .filter(|name| name.ends_with(".gz"))
        .collect();
    let stats = shared.stats();
    assert_eq!((stats.write_errors, stats.rotation_errors), (0, 0));
    fs::write(sync.join(format!("gz.{process}")), compressed.join("\n")).unwrap();
    fs::write(sync.join(format!("wrote.{process}")), written.to_string()).unwrap();
    match then {
        Then::Exit => {}
        Then::Settle => {
            let deadline = Instant::now() + SETTLE_DEADLINE;
            while let Err(why) = settled(&log) {
                assert!(Instant::now() < deadline, "never settled: {why}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Then::Hold => {
            let deadline = Instant::now() + WORKER_DEADLINE;
            while !sync.join("quit").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A rotating child, killed if the test fails before it ends.
pub(crate) struct RotatingChild {
    process: u32,
    sync: PathBuf,
    child: RunningChild,
}

impl RotatingChild {
    pub(crate) fn spawn(
        log: &Path,
        sync: &Path,
        process: u32,
        max_bytes: u64,
        max_files: usize,
        then: Then,
    ) -> Self {
        let mode = match then {
            Then::Exit => "exit",
            Then::Settle => "settle",
            Then::Hold => "hold",
        };
        let entry = common::entry!(rotating_child_entry);
        let name = format!("rotating{process}");
        let child = start_entry(&entry, sync, &name, |command| {
            command
                .env(ENV_CHILD, process.to_string())
                .env(ENV_LOG, log)
                .env(ENV_SYNC, sync)
                .env(ENV_MAX_BYTES, max_bytes.to_string())
                .env(ENV_MAX_FILES, max_files.to_string())
                .env(ENV_MODE, mode);
        })
        .with_deadline(WORKER_DEADLINE);
        RotatingChild {
            process,
            sync: sync.to_path_buf(),
            child,
        }
    }

    /// Waits until the child has rotated; returns how many records it wrote.
    pub(crate) fn wait_until_rotated(&mut self) -> u64 {
        let path = self.sync.join(format!("wrote.{}", self.process));
        let deadline = Instant::now() + WORKER_DEADLINE;
        loop {
            if let Ok(text) = fs::read_to_string(&path)
                && let Ok(written) = text.parse()
            {
                return written;
            }
            if let Some(status) = self.child.exited() {
                panic!("child {} exited ({status}) before it rotated", self.process);
            }
            assert!(
                Instant::now() < deadline,
                "child {} never rotated",
                self.process
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[cfg(unix)]
    pub(crate) fn pid(&self) -> libc::pid_t {
        self.child.pid()
    }

    /// The `.gz` files there were as the child's last write returned.
    #[cfg(unix)] // Used by the Unix-only compression_races.
    pub(crate) fn compressed_when_written(&self) -> Vec<String> {
        let text = fs::read_to_string(self.sync.join(format!("gz.{}", self.process))).unwrap();
        text.lines().map(String::from).collect()
    }

    /// Waits for the child to end by itself, successfully, within `limit`.
    pub(crate) fn wait_within(self, limit: Duration) {
        self.child.wait(Instant::now() + limit).assert_exited_ok();
    }

    #[cfg(unix)] // Used by the Unix-only compression_races.
    pub(crate) fn kill(self) {
        self.child.kill();
    }
}

/// Whether compression is done with `log`'s archives: every one but the newest only
/// gzipped, the newest only plain, and no temporary file left.
pub(crate) fn settled(log: &Path) -> Result<(), String> {
    let archives = stamped_archives(log);
    let mut forms: BTreeMap<(i64, u64), Vec<&StampedName>> = BTreeMap::new();
    for archive in &archives {
        forms
            .entry((archive.stamp, archive.counter))
            .or_default()
            .push(archive);
    }
    let count = forms.len();
    for (index, names) in forms.values().enumerate() {
        let gz: Vec<bool> = names.iter().map(|name| name.gz).collect();
        let expected = if index + 1 == count { [false] } else { [true] };
        if gz != expected {
            let names: Vec<&str> = names.iter().map(|name| name.name.as_str()).collect();
            return Err(format!("archive {index} of {count} is {names:?}"));
        }
    }
    let temporaries = temporaries(log);
    if !temporaries.is_empty() {
        return Err(format!("temporary files left: {temporaries:?}"));
    }
    Ok(())
}

/// The compressor's temporary files for `log`'s archives.
pub(crate) fn temporaries(log: &Path) -> Vec<String> {
    let prefix = format!(".{}.", log.file_name().unwrap().to_str().unwrap());
    fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(&prefix) && name.ends_with(".tmp"))
        .collect()
}

/// The whole content of a gzip file, or why it has none (a truncated one has none).
#[cfg(unix)] // Used by the Unix-only compression_races.
pub(crate) fn gunzip(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let compressed = fs::read(path).map_err(|e| e.to_string())?;
    if !compressed.starts_with(&[0x1f, 0x8b]) {
        return Err(format!("{} has no gzip header", path.display()));
    }
    let mut content = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed.as_slice())
        .read_to_end(&mut content)
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    Ok(content)
}

pub(crate) fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[track_caller]
pub(crate) fn assert_verified(report: &Report, what: &str) {
    assert!(report.is_ok(), "{what}: verification failed:\n{report}");
}

pub(crate) fn compressed_policy() -> RotationPolicy {
    RotationPolicy {
        timestamped: true,
        compress: true,
        ..RotationPolicy::default()
    }
}

/// Compression would race with renumbering, so it needs timestamped names.
#[test]
fn compression_needs_timestamped_names() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    for builder in [
        SharedFile::builder(&log).compress(true),
        SharedFile::builder(&log)
            .naming(Naming::Numbered)
            .compress(true),
    ] {
        let error = builder
            .build()
            .expect_err("numbered names with compression");
        assert_eq!(error.kind(), ErrorKind::CompressionNeedsTimestamps);
    }
    assert_eq!(
        listing(dir.path()),
        BTreeSet::new(),
        "a refused build creates nothing"
    );
    SharedFile::builder(&log)
        .naming(Naming::Numbered)
        .compress(false)
        .build()
        .expect("numbered names without compression");
    SharedFile::builder(&log)
        .naming(Naming::Timestamped)
        .compress(true)
        .build()
        .expect("timestamped names with compression");
}

/// Writers in several processes, each compressing after its rotations, then one last
/// process that rotates and finishes: every line exactly once, every archive but the
/// newest gzipped, nothing else touched. With `max_files`, the limit holds too.
#[test]
fn every_line_lands_once_in_plain_or_gzipped_archives() {
    const MAX_BYTES: u64 = 8 * 1024;
    for max_files in [KEEP_ALL, 4, 40] {
        let what = format!("max_files {max_files}");
        let dir = tempfile::tempdir().unwrap();
        let sync = dir.path().join("sync");
        fs::create_dir_all(&sync).unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let log = dir.path().join("logs/app.log");
        // Not `app.log.1`: a numbered archive is an archive of this log too, which
        // retention counts and deletes oldest first (tests/fleets/disagreeing.rs).
        let look_alikes = [
            "app.log.bak",
            "app.log.2026-11-27T14-00-00Z.txt",
            "other.log.2020-01-01T00-00-00Z",
        ];
        for name in look_alikes {
            fs::write(log.with_file_name(name), name).unwrap();
        }
        let specs: Vec<WriterSpec> = (0..4)
            .map(|process| WriterSpec {
                max_bytes: MAX_BYTES,
                max_files,
                process,
                threads: 2,
                lines_per_thread: 500,
                policy: compressed_policy(),
                ..WriterSpec::new(log.clone(), sync.clone())
            })
            .collect();
        Workers::start(
            || common::entry_command(&common::entry!(worker_entry)),
            &specs,
        )
        .wait_within(WORKER_DEADLINE);
        let mut last = RotatingChild::spawn(&log, &sync, 9, MAX_BYTES, max_files, Then::Settle);
        let last_lines = last.wait_until_rotated();
        last.wait_within(SETTLE_DEADLINE);

        let rotations: u64 = specs.iter().map(|spec| spec.saved_stats().rotations).sum();
        let archives: Vec<StampedName> = stamped_archives(&log);
        if max_files == KEEP_ALL {
            assert_eq!(archives.len() as u64, rotations + 1, "{what}: {archives:?}");
        } else {
            let fewest = max_files - max_files / 16;
            assert!(
                (fewest..=max_files).contains(&archives.len()),
                "{what}: {} archives: {:?}",
                archives.len(),
                archives.iter().map(|a| &a.name).collect::<Vec<_>>()
            );
        }
        let mut expected: BTreeSet<String> = archives.iter().map(|a| a.name.clone()).collect();
        expected.extend(["app.log", "app.log.lock"].map(String::from));
        expected.extend(look_alikes.map(String::from));
        assert_eq!(listing(log.parent().unwrap()), expected, "{what}");
        for name in look_alikes {
            assert_eq!(fs::read_to_string(log.with_file_name(name)).unwrap(), name);
        }

        let expectation = |lines| match max_files {
            KEEP_ALL => Expect::Exactly(lines),
            _ => Expect::Newest { total: lines },
        };
        let verifier = specs.iter().fold(
            Verifier::new(&log, MAX_BYTES, max_files).timestamped(true),
            |verifier, spec| verifier.expect_threads(spec.process, 2, expectation(500)),
        );
        let report = verifier
            .expect(
                WriterId {
                    process: 9,
                    thread: 0,
                },
                Expect::Exactly(last_lines),
            )
            .verify();
        assert_verified(&report, &what);
        assert_eq!(report.compressed, report.archives - 1, "{what}: {report}");
    }
}
