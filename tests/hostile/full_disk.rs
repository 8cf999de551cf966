//! A disk that fills up while several processes log: events are dropped whole and
//! counted, no line is ever torn, and logging resumes by itself once space returns.
//!
//! Runs on a small tmpfs, which needs root (or CAP_SYS_ADMIN); where mounting is not
//! permitted the test says so and skips. CI runs as root, so it runs there.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::verifier::{Expect, Verifier};
use common::workload::{Workers, WriterSpec, run_writer};

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        let dropped = spec.sync_dir.join(format!("dropped.{}", spec.process));
        std::fs::write(dropped, stats.events_dropped.to_string()).unwrap();
    }
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("app.log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn wait_for_log_bytes(dir: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_bytes(dir) < bytes {
        assert!(
            Instant::now() < deadline,
            "writers never reached {bytes} bytes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Takes every free byte of the file system, as another program filling the disk would.
fn fill(path: &Path) -> u64 {
    let mut filler = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    written
}

#[test]
fn a_full_disk_drops_whole_events_and_logging_resumes() {
    let tmpfs = match Tmpfs::mount("16m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!(
                "SKIPPED a_full_disk_drops_whole_events_and_logging_resumes: cannot mount a tmpfs here ({reason})"
            );
            return;
        }
    };
    const MAX_BYTES: u64 = 64 * 1024;
    let scratch = tempfile::tempdir().unwrap();
    let sync_dir = scratch.path().join("sync");
    std::fs::create_dir(&sync_dir).unwrap();
    let logs = tmpfs.path().join("logs");
    let specs: Vec<WriterSpec> = (0..3)
        .map(|process| WriterSpec {
            max_bytes: MAX_BYTES,
            process,
            lines_per_thread: u64::MAX,
            until_stopped: true,
            ..WriterSpec::new(logs.join("app.log"), sync_dir.clone())
        })
        .collect();
    let workers = Workers::start(
        || common::entry_command(&common::entry!(worker_entry)),
        &specs,
    );

    wait_for_log_bytes(&logs, 256 * 1024);
    let filler: PathBuf = tmpfs.path().join("filler");
    assert!(fill(&filler) > 0, "the filler took the free space");
    // Let the writers run into the full disk for a while.
    std::thread::sleep(Duration::from_millis(300));
    let while_full = log_bytes(&logs);
    std::fs::remove_file(&filler).unwrap();
    wait_for_log_bytes(&logs, while_full + 256 * 1024);
    std::fs::write(sync_dir.join("stop"), b"").unwrap();
    workers.wait();

    let dropped: u64 = specs
        .iter()
        .map(|s| {
            std::fs::read_to_string(sync_dir.join(format!("dropped.{}", s.process)))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(dropped > 0, "the writers ran into the full disk");

    let verifier = specs
        .iter()
        .fold(
            Verifier::new(logs.join("app.log"), MAX_BYTES, 100_000),
            |v, spec| {
                let writer = spec.writers().next().unwrap();
                v.expect(
                    writer,
                    Expect::Resumed {
                        attempted: spec.attempted(writer),
                    },
                )
            },
        )
        // A dropped event never arrives to follow the rotation it caused.
        .check_rotation_points(false);
    let report = verifier.verify();
    println!("{dropped} events dropped while full; {report}");
    report.assert_ok();
    assert_eq!(report.torn, 0);
}

#[test]
fn a_lock_file_created_on_a_full_disk_is_an_error_not_a_crash() {
    // The lock file's page is mapped; over a hole, the first store would need a block
    // and a full disk would answer with SIGBUS, killing this test process.
    let tmpfs = match Tmpfs::mount("64k") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!(
                "SKIPPED a_lock_file_created_on_a_full_disk_is_an_error_not_a_crash: cannot mount a tmpfs here ({reason})"
            );
            return;
        }
    };
    let log_path = tmpfs.path().join("app.log");
    let log = tracing_shared_file::SharedFile::builder(&log_path)
        .path_check_interval(Duration::ZERO)
        // The failures are the point: keep their reports off the test's output.
        .on_error(|_| {})
        .build()
        .unwrap();
    fill(&tmpfs.path().join("filler"));

    // A new lock file while the disk is full: at build time...
    let err = tracing_shared_file::SharedFile::builder(tmpfs.path().join("other.log"))
        .build()
        .unwrap_err();
    assert_eq!(
        err.kind(),
        tracing_shared_file::ErrorKind::OpenLockFile,
        "{err}"
    );
    // ...and when an operator deletes the lock file under a running process.
    std::fs::remove_file(tmpfs.path().join("app.log.lock")).unwrap();
    assert!((&log).write_all(b"no room for a new lock file\n").is_err());

    std::fs::remove_file(tmpfs.path().join("filler")).unwrap();
    // The space comes back once the filler's last descriptor closes, and a child that
    // another test thread is spawning may hold a copy until it execs: retry, as the
    // library's own next write would.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (&log).write_all(b"logging resumed\n").is_err() {
        assert!(Instant::now() < deadline, "space never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap(),
        "logging resumed\n"
    );
}
