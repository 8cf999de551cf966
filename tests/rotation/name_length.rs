//! Names near the file-name limit (`NAME_MAX`, 255 bytes on Linux file systems):
//! `build()` refuses a log whose longest name, among all it will ever create (archives
//! with their largest counter and `.gz`, the lock file, temporary files), the directory
//! cannot take, saying which name and which limit, before it creates anything; and a log
//! whose longest name just fits rotates in several processes at once, with `file_mode`,
//! timestamped names or compression, and loses nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::{self, entry};
use common::children::{CHILD_DEADLINE, spawn_entry};
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::{ErrorKind, Naming, SharedFile};

const WRITER_ENV: &str = "TSF_NAME_LENGTH_WRITER";
const MAX_BYTES: u64 = 2000;
const MAX_FILES: usize = 100;
const LINES: u64 = 300;
const PROCESSES: u32 = 2;

/// The configurations, and for each the longest name in its directory beyond the log's
/// own name: `.lock`, `.100`, `.<stamp>.<u32::MAX>`, or a compressor's claim on an
/// archive, `.<archive>.gz.tmp`.
#[derive(Debug, Clone, Copy)]
enum Config {
    NumberedWithFileMode,
    Timestamped,
    Compressed,
}

impl Config {
    fn all() -> [Config; 3] {
        [
            Config::NumberedWithFileMode,
            Config::Timestamped,
            Config::Compressed,
        ]
    }

    fn extra(self) -> usize {
        match self {
            Config::NumberedWithFileMode => ".lock".len(),
            Config::Timestamped => ".2026-11-27T14-00-00Z.4294967295".len(),
            Config::Compressed => 1 + ".2026-11-27T14-00-00Z.4294967295".len() + ".gz.tmp".len(),
        }
    }

    fn builder(self, path: &Path) -> tracing_shared_file::Builder {
        let builder = SharedFile::builder(path)
            .max_bytes(MAX_BYTES)
            .max_files(MAX_FILES);
        match self {
            // Windows has no file modes (`build()` refuses them): numbered alone there.
            Config::NumberedWithFileMode if cfg!(windows) => builder,
            Config::NumberedWithFileMode => builder.file_mode(0o640),
            Config::Timestamped => builder.naming(Naming::Timestamped),
            Config::Compressed => builder.naming(Naming::Timestamped).compress(true),
        }
    }

    fn encode(self) -> &'static str {
        match self {
            Config::NumberedWithFileMode => "numbered",
            Config::Timestamped => "timestamped",
            Config::Compressed => "compressed",
        }
    }

    fn decode(text: &str) -> Config {
        Config::all()
            .into_iter()
            .find(|config| config.encode() == text)
            .unwrap()
    }
}

#[cfg(windows)]
fn name_max(_dir: &Path) -> usize {
    // NTFS's limit, in UTF-16 units; every name here is ASCII.
    255
}

#[cfg(unix)]
fn name_max(dir: &Path) -> usize {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    let max = unsafe { libc::pathconf(path.as_ptr(), libc::_PC_NAME_MAX) };
    assert!(max > 0, "the test needs a file system with a name limit");
    max as usize
}

/// A log name of `len` bytes.
fn log_name(len: usize) -> String {
    let mut name = "n".repeat(len - ".log".len());
    name.push_str(".log");
    name
}

#[test]
fn a_log_whose_longest_name_is_too_long_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let limit = name_max(dir.path());
    for config in Config::all() {
        let name = log_name(limit - config.extra() + 1);
        let err = config
            .builder(&dir.path().join(&name))
            .build()
            .expect_err("one byte too long");
        assert_eq!(err.kind(), ErrorKind::NameTooLong, "{config:?}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("at most {limit}")),
            "{config:?} names the limit: {message}"
        );
        assert!(
            message.contains(&format!("is {} bytes", limit + 1)),
            "{config:?} says how long the longest name is: {message}"
        );
        assert!(
            message.contains(&name),
            "{config:?} names the log: {message}"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{config:?}: nothing was created"
        );
    }
}

/// Child side: writes `LINES` records as writer `process` to the log, then prints its
/// stats.
#[test]
fn name_length_writer_entry() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    let config = Config::decode(parts.next().unwrap());
    let process: u32 = parts.next().unwrap().parse().unwrap();
    let path = PathBuf::from(parts.next().unwrap());
    let log = config.builder(&path).build().unwrap();
    let writer = WriterId { process, thread: 0 };
    for seq in 0..LINES {
        (&log).write_all(fmt_line(writer, seq).as_bytes()).unwrap();
    }
    let stats = log.stats();
    println!(
        "\nSTATS rotations={} write_errors={} rotation_errors={} dropped={}",
        stats.rotations, stats.write_errors, stats.rotation_errors, stats.events_dropped
    );
}

#[test]
fn a_log_whose_longest_name_just_fits_rotates_in_every_process_and_loses_nothing() {
    for config in Config::all() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        fs::create_dir(&logs).unwrap();
        let name = log_name(name_max(&logs) - config.extra());
        let path = logs.join(&name);
        let children: Vec<_> = (0..PROCESSES)
            .map(|process| {
                spawn_entry(
                    &std::env::current_exe().unwrap(),
                    &entry!(name_length_writer_entry),
                    dir.path(),
                    &format!("{}-{process}", config.encode()),
                    |command| {
                        let spec = format!("{}:{process}:{}", config.encode(), path.display());
                        command.env(WRITER_ENV, spec);
                    },
                )
            })
            .collect();
        let mut rotations = 0;
        for child in children {
            let finished = child.wait(Instant::now() + CHILD_DEADLINE);
            finished.assert_success();
            let count = |key: &str| finished.stat(key);
            assert_eq!(
                (
                    count("write_errors"),
                    count("rotation_errors"),
                    count("dropped")
                ),
                (0, 0, 0),
                "{config:?}: {}\n{}",
                finished.stdout,
                finished.stderr
            );
            rotations += count("rotations");
        }
        let mut verifier = Verifier::new(&path, MAX_BYTES, MAX_FILES)
            .timestamped(!matches!(config, Config::NumberedWithFileMode));
        for process in 0..PROCESSES {
            verifier = verifier.expect(WriterId { process, thread: 0 }, Expect::Exactly(LINES));
        }
        let report = verifier.verify();
        report.assert_ok();
        assert!(rotations >= 20, "{config:?}: {rotations} rotations");
        assert_eq!(report.archives as u64, rotations, "{config:?}: {report}");
    }
}
