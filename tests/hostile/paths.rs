//! Unusual things at the log path: a FIFO (refused at once, never a hang in `build()` or
//! in a write holding the lock), and symbolic links (the real file is rotated, the links
//! are kept, and processes given the link or the real path share one lock file).
//!
//! The symlink scenario re-runs this test binary as writer processes: `worker_entry`
//! becomes a child when it finds its environment variable, and is a no-op test otherwise.
//! Every wait has a deadline, so a hang fails the test instead of stalling it.

use crate::common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::children::{self, Fleet, WorkerConfig, WorkerOutcome};
use common::log_files::{KEEP_ALL, ROTATING_MAX_BYTES, archive};
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::SharedFile;

/// Child side of the writer processes that `Fleet` starts.
#[test]
fn worker_entry() {
    children::worker_main();
}

// ---------------------------------------------------------------------------------------
// A FIFO at the log path must be refused at once: opening it for writing would block until
// some process reads it, in `build()` or, worse, in a write holding the lock.

/// Runs `f` in a thread; if it has not finished after a second, opens `fifo` for reading
/// to unblock it. Returns whether it had to, and what `f` returned.
fn hangs_on_fifo<T: Send + 'static>(
    fifo: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> (bool, T) {
    use std::os::unix::fs::OpenOptionsExt;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let result = f();
        let _ = done_tx.send(());
        result
    });
    let hung = done_rx.recv_timeout(Duration::from_secs(1)).is_err();
    // A reader lets a blocked `open` for writing go on, and takes what it writes.
    let _reader = hung.then(|| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .expect("open the FIFO for reading")
    });
    (hung, thread.join().expect("the thread panicked"))
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain syscall with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o666) }, 0, "mkfifo");
}

#[test]
fn a_fifo_at_the_log_path_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let mut findings = Vec::new();

    // A FIFO where the log file should be, before build().
    let path = dir.path().join("before/app.log");
    fs::create_dir(path.parent().unwrap()).unwrap();
    mkfifo(&path);
    let (hung, built) = hangs_on_fifo(&path, {
        let path = path.clone();
        move || SharedFile::builder(&path).build().map(|_| ())
    });
    if hung {
        findings.push(format!(
            "build() blocked opening the FIFO {} until a reader appeared (it returned {built:?} \
             only then); expected a prompt error",
            path.display()
        ));
    } else if built.is_ok() {
        findings.push(format!("build() accepted the FIFO {}", path.display()));
    }

    // A FIFO put in place of the live file while a process logs.
    let path = dir.path().join("during/app.log");
    // The failed write is expected: keep its report off the test's output.
    let log = SharedFile::builder(&path).on_error(|_| {}).build().unwrap();
    (&log).write_all(b"a line before\n").unwrap();
    let fifo = dir.path().join("during/fifo");
    mkfifo(&fifo);
    fs::rename(&fifo, &path).unwrap();
    let (hung, written) = hangs_on_fifo(&path, {
        let log = log.clone();
        move || (&log).write_all(b"a line after\n").map_err(|e| e.kind())
    });
    if hung {
        findings.push(format!(
            "a write blocked, holding the lock, reopening the FIFO {} until a reader appeared \
             (it returned {written:?} only then); expected an error and a dropped event",
            path.display()
        ));
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The log path is a symbolic link.

#[test]
fn a_symlinked_path_rotates_the_real_file_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["logs", "mid"] {
        fs::create_dir(root.join(sub)).unwrap();
    }
    // logs/app.log -> ../mid/app.log -> <root>/real/app.log, which does not exist yet
    // (nor does its directory).
    let link = root.join("logs/app.log");
    let hop = root.join("mid/app.log");
    let real = root.join("real/app.log");
    std::os::unix::fs::symlink("../mid/app.log", &link).unwrap();
    std::os::unix::fs::symlink(&real, &hop).unwrap();

    let through_link = WorkerConfig {
        log: link.clone(),
        max_bytes: ROTATING_MAX_BYTES,
        max_files: KEEP_ALL,
        threads: 2,
        phases: vec![1500],
    };
    // Processes given the real path must lock the same lock file as those given the link.
    let direct = WorkerConfig {
        log: real.clone(),
        ..through_link.clone()
    };
    let mut fleet = Fleet::for_entry(&root.join("sync"), &common::entry!(worker_entry));
    fleet.start(0..2, &through_link);
    fleet.start(2..4, &direct);
    let outcomes = fleet.finish();

    let report = outcomes
        .iter()
        .fold(
            Verifier::new(&real, ROTATING_MAX_BYTES, KEEP_ALL),
            |verifier, outcome| {
                verifier.expect_process(
                    outcome.process,
                    outcome.config.threads,
                    outcome.config.total_per_thread(),
                )
            },
        )
        .verify();
    report.assert_ok();
    let total: u64 = outcomes.iter().map(WorkerOutcome::expected_events).sum();
    assert_eq!(report.lines_verified, total);
    assert!(report.archives >= 30, "{report}");
    for outcome in &outcomes {
        assert_eq!(outcome.stats["path"], real.display().to_string());
        assert_eq!(outcome.stat("written"), outcome.expected_events());
        assert!(
            outcome.finished.reports().is_empty(),
            "{}",
            outcome.finished.stderr
        );
    }

    // The links are untouched, and nothing was created beside them.
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("../mid/app.log"));
    assert_eq!(fs::read_link(&hop).unwrap(), real);
    for sub in ["logs", "mid"] {
        let names: Vec<_> = fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["app.log"], "in {sub}");
    }
    assert!(root.join("real/app.log.lock").is_file());
}

#[test]
fn a_symlink_to_an_existing_file_rotates_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("app.log");
    let writer = WriterId {
        process: 0,
        thread: 0,
    };
    fs::write(&real, fmt_line(writer, 0)).unwrap();
    let link = dir.path().join("app.log");
    std::os::unix::fs::symlink("real/app.log", &link).unwrap();

    let log = SharedFile::builder(&link)
        .max_bytes(1024)
        .max_files(3)
        .build()
        .unwrap();
    assert_eq!(log.path(), real);
    for seq in 1..100 {
        (&log)
            .write_all(fmt_line(writer, seq).as_bytes())
            .expect("write");
    }
    let stats = log.stats();
    assert!(stats.rotations >= 5, "{stats:?}");
    assert_eq!((stats.write_errors, stats.rotation_errors), (0, 0));

    let meta = fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link is still a link");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/app.log"));
    // Old archives were deleted past max_files; what is left is the newest records, whole.
    let report = Verifier::new(&real, 1024, 3)
        .expect(writer, Expect::Prefix { acknowledged: 0 })
        .verify();
    assert_eq!(report.archives, 3, "{report}");
    assert_eq!(
        (report.torn, report.duplicated, report.oversized),
        (0, 0, 0)
    );
    assert!(archive(&real, 3).is_file() && !archive(&real, 4).exists());
    assert!(
        !archive(&link, 1).exists(),
        "nothing rotated beside the link"
    );
    assert!(!dir.path().join("app.log.lock").exists());
    assert!(real_dir.join("app.log.lock").is_file());
    assert!(
        fs::read_to_string(&real)
            .unwrap()
            .ends_with(&fmt_line(writer, 99)),
        "the last line is in the live file behind the link"
    );
}
