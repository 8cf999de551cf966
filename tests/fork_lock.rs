//! A forked child must not keep its parent's lock alive: the kernel drops a flock only
//! when the last descriptor of its open file description closes, so a child that kept
//! the inherited lock descriptor would hold a killed parent's lock for as long as it
//! lives. And after a fork, parent and child both log safely to the same file.
//!
//! Each scenario runs in a fresh process (this test binary re-run), so that it forks a
//! process whose threads it controls.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, record};
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const PARENT_ENV: &str = "TSF_FORK_LOCK_PARENT";
const LOGGING_ENV: &str = "TSF_FORK_LOCK_LOGGING";
/// Set: the forked child drops to uid and gid 65534 (nobody) before it logs.
const DROP_ENV: &str = "TSF_FORK_LOCK_DROP_PRIVILEGES";
/// The killed parent's event: large enough that the kernel copies it page by page, so a
/// kill lands in the middle of the append.
const BIG_EVENT: usize = 256 << 20;
/// How long the idle child lives unless killed.
const IDLE_CHILD_LIFE: Duration = Duration::from_secs(30);
/// Any wait for a child longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// Process P: builds a `SharedFile`, forks an idle child C (its pid goes to
/// `<dir>/idle_child.pid`), then appends one huge event, announced by `<dir>/writing`.
/// The test kills P in the middle of that append.
#[test]
fn big_writer_parent_entry() {
    let Some(dir) = std::env::var_os(PARENT_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(1 << 40)
        .build()
        .unwrap();
    // SAFETY: the child only sleeps and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // The idle child: it never logs, and must outlive P.
        std::thread::sleep(IDLE_CHILD_LIFE);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    std::fs::write(dir.join("idle_child.pid"), pid.to_string()).unwrap();
    let mut event = vec![b'x'; BIG_EVENT];
    *event.last_mut().unwrap() = b'\n';
    std::fs::write(dir.join("writing"), b"").unwrap();
    let _ = (&log).write_all(&event);
}

/// Kills the idle child when dropped (it is P's child, so this test cannot wait for it).
struct IdleChild(Option<libc::pid_t>);

impl Drop for IdleChild {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: a plain kill of the process the test's child forked.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Kills the process when dropped, so a failing test leaves nothing behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Waits until `path` exists; fails if `child` exits first or at the deadline.
fn wait_for_file(child: &mut Child, path: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited ({status}) before creating {}", path.display());
        }
        assert!(
            Instant::now() < deadline,
            "child never created {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn an_idle_forked_child_does_not_keep_a_killed_parents_lock() {
    const BEFORE: &[u8] = b"written before the parent was killed\n";
    const AFTER: &[u8] = b"written by the survivor\n";
    // A kill can land after the append finished; try again then (the test needs P to die
    // holding the lock).
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let survivor = SharedFile::builder(&path)
            .max_bytes(1 << 40)
            .build()
            .unwrap();
        (&survivor).write_all(BEFORE).unwrap();

        let mut parent = KillOnDrop(
            common::spawn_retrying(
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "big_writer_parent_entry",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(PARENT_ENV, dir.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )
            .unwrap(),
        );
        let mut idle_child = IdleChild(None);
        wait_for_file(&mut parent.0, &dir.path().join("writing"));
        idle_child.0 = Some(
            std::fs::read_to_string(dir.path().join("idle_child.pid"))
                .unwrap()
                .parse()
                .unwrap(),
        );
        let deadline = Instant::now() + DEADLINE;
        while file_len(&path) <= BEFORE.len() as u64 {
            assert!(
                Instant::now() < deadline,
                "the parent's append never started"
            );
            std::hint::spin_loop();
        }
        parent.0.kill().unwrap();
        parent.0.wait().unwrap();
        let died = Instant::now();
        let at_death = file_len(&path);
        if at_death >= (BEFORE.len() + BIG_EVENT) as u64 {
            continue;
        }

        // The survivor writes on a helper thread, so that the test can time it.
        let (tx, rx) = mpsc::channel();
        {
            let survivor = survivor.clone();
            std::thread::spawn(move || {
                let result = (&survivor).write_all(AFTER);
                let _ = tx.send((result, died.elapsed()));
            });
        }
        let Ok((result, took)) = rx.recv_timeout(Duration::from_secs(1)) else {
            // Killing the idle child frees the lock; then the write goes through.
            drop(idle_child);
            let freed = Instant::now();
            let released = rx.recv_timeout(Duration::from_secs(10)).is_ok();
            panic!(
                "the survivor's write was still blocked 1 s after the lock holder died: the idle \
                 forked child kept the dead parent's lock; {}",
                if released {
                    format!(
                        "it went through {:?} after the idle child was killed",
                        freed.elapsed()
                    )
                } else {
                    "it was still blocked 10 s after the idle child was killed".to_string()
                }
            );
        };
        result.unwrap();
        assert!(
            took < Duration::from_secs(1),
            "the survivor's write took {took:?} after the lock holder died"
        );
        let content = std::fs::read(&path).unwrap();
        // Compared without printing: the content may hold megabytes of partial event.
        assert!(
            content == [BEFORE, AFTER].concat(),
            "the partial event ({} bytes) must be cut off and the survivor's line appended \
             whole; the file holds {} bytes",
            at_death - BEFORE.len() as u64,
            content.len()
        );
        return;
    }
    panic!(
        "every kill landed after the append completed; the dead holder's lock was never exercised"
    );
}

// ---------------------------------------------------------------------------------------
// After a fork, the child logs too.

const MAX_BYTES: u64 = 32 * 1024;
const MAX_FILES: usize = 100_000;
const LINES: u64 = 1_000;

fn log_records(writer: WriterId, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        tracing::info!(target: "workload", "{}", record(writer, seq));
    }
}

/// Process side: logs, forks a child, and both log `LINES` records at once.
#[test]
fn parent_and_child_logging_entry() {
    let Some(dir) = std::env::var_os(LOGGING_ENV) else {
        return;
    };
    let drop_privileges = std::env::var_os(DROP_ENV).is_some();
    let log = SharedFile::builder(Path::new(&dir).join("app.log"))
        // Without privileges the child could not rename in the directory: no rotation.
        .max_bytes(if drop_privileges { 1 << 30 } else { MAX_BYTES })
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    tracing_subscriber::registry().with(log.layer()).init();
    let parent = WriterId {
        process: 0,
        thread: 0,
    };
    let child = WriterId {
        process: 1,
        thread: 0,
    };
    // The parent has used the lock before the fork.
    log_records(parent, 0..1);
    // SAFETY: the child only logs and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        if drop_privileges {
            // SAFETY: plain syscalls changing this process's own credentials.
            let dropped = unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
            if !dropped {
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(2) };
            }
        }
        let ok = std::panic::catch_unwind(|| log_records(child, 0..LINES)).is_ok()
            && log.stats().events_dropped == 0;
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    log_records(parent, 1..LINES);
    let deadline = Instant::now() + DEADLINE;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kill of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed: status {status:#x}"
    );
}

#[test]
fn a_forked_child_and_its_parent_both_log_every_record() {
    parent_and_child_log_every_record(false);
}

/// A worker that drops privileges after the fork keeps the lock description, the mapped
/// page and the log handle it inherited: it needs no permission on the files (here
/// `0644 root`) to go on logging.
#[test]
fn a_forked_child_that_drops_privileges_still_logs_every_record() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: dropping privileges needs root");
        return;
    }
    parent_and_child_log_every_record(true);
}

fn parent_and_child_log_every_record(drop_privileges: bool) {
    let dir = tempfile::tempdir().unwrap();
    // The unprivileged child still looks the paths up (lstat), as any worker in
    // /var/log/app would: the directory is searchable, the files are not writable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "parent_and_child_logging_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOGGING_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if drop_privileges {
        command.env(DROP_ENV, "1");
    }
    let mut process = KillOnDrop(common::spawn_retrying(&mut command).unwrap());
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the logging process hung");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the logging process failed: {status}");

    let max_bytes = if drop_privileges { 1 << 30 } else { MAX_BYTES };
    let report = Verifier::new(dir.path().join("app.log"), max_bytes, MAX_FILES)
        .expect_process(0, 1, LINES)
        .expect(
            WriterId {
                process: 1,
                thread: 0,
            },
            Expect::Exactly(LINES),
        )
        .verify();
    report.assert_ok();
    if !drop_privileges {
        assert!(report.archives >= 2, "rotation ran\n{report}");
    }
}
