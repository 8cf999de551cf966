//! A forked child must not keep its parent's lock alive: the kernel drops a flock only
//! when the last descriptor of its open file description closes, so a child that kept
//! the inherited lock descriptor would hold a killed parent's lock for as long as it
//! lives. And after a fork, parent and child both log safely to the same file.
//!
//! Also: a worker that drops privileges and then forks has a grandchild that logs every
//! record; a child forked with no descriptor free does not keep the lock either, and its
//! inherited lock number stays taken, so that none of its own files is closed or replaced
//! behind its back; a forked child's stats count only what it did; and no child forked
//! while another thread builds a `SharedFile` inherits a lock description that the fork
//! handlers did not replace (Linux: compared with `kcmp(2)`).
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
            // The repair it does is expected: keep its notice off the test's output.
            .on_error(|_| {})
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

// ---------------------------------------------------------------------------------------
// A worker that drops privileges, then forks: the grandchild logs too.

const GRANDCHILD_ENV: &str = "TSF_FORK_LOCK_GRANDCHILD";
/// The uid and gid of `nobody`, to which the worker drops.
const NOBODY: u32 = 65534;
/// Large enough that nothing rotates: the unprivileged processes cannot rename in the
/// directory.
const NO_ROTATION: u64 = 1 << 30;

/// Waits for `pid`, a child of this process, killing it at the deadline. `None` if it
/// hung.
fn wait_child(pid: libc::pid_t) -> Option<libc::c_int> {
    let deadline = Instant::now() + DEADLINE;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill and reap of our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn exited_ok(status: libc::c_int) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Logs `seqs` and checks this process's stats: exactly `written` events, none dropped.
/// Says on stderr what went wrong (only ever seen when the test fails).
fn log_and_check(
    log: &SharedFile,
    who: &str,
    writer: WriterId,
    seqs: std::ops::Range<u64>,
    written: u64,
) -> bool {
    if std::panic::catch_unwind(|| log_records(writer, seqs)).is_err() {
        return false;
    }
    let stats = log.stats();
    let ok = stats.events_written == written && stats.events_dropped == 0;
    if !ok {
        eprintln!("{who}: expected {written} events written and none dropped: {stats:?}");
    }
    ok
}

/// Process P (root): builds the log (files `0644 root`), forks worker C, which drops to
/// nobody and logs, then forks grandchild G, which logs while C goes on logging. P logs
/// meanwhile. Every process logs `LINES` records.
#[test]
fn dropped_worker_and_grandchild_entry() {
    let Some(dir) = std::env::var_os(GRANDCHILD_ENV) else {
        return;
    };
    let path = Path::new(&dir).join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(NO_ROTATION)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    // Whatever the umask: the unprivileged processes may read the files, never write them.
    use std::os::unix::fs::PermissionsExt;
    for file in [path.clone(), Path::new(&dir).join("app.log.lock")] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    tracing_subscriber::registry().with(log.layer()).init();
    let [parent, worker, grandchild] = [0, 1, 2].map(|process| WriterId { process, thread: 0 });
    log_records(parent, 0..1);
    // SAFETY: the child logs, forks and `_exit`s.
    let worker_pid = unsafe { libc::fork() };
    assert!(worker_pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if worker_pid == 0 {
        // SAFETY: plain syscalls changing this process's own credentials.
        if unsafe { libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 } {
            eprintln!(
                "worker: cannot drop privileges: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(2) };
        }
        // The worker uses the lock unprivileged before it forks.
        log_records(worker, 0..1);
        // SAFETY: the grandchild only logs and `_exit`s.
        let grandchild_pid = unsafe { libc::fork() };
        if grandchild_pid == 0 {
            let ok = log_and_check(&log, "grandchild", grandchild, 0..LINES, LINES);
            // SAFETY: ends the grandchild without running destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let worker_ok =
            grandchild_pid > 0 && log_and_check(&log, "worker", worker, 1..LINES, LINES);
        let grandchild_ok = match wait_child(grandchild_pid) {
            Some(status) => exited_ok(status),
            None => {
                eprintln!("worker: the grandchild hung");
                false
            }
        };
        let code = match (worker_ok, grandchild_ok) {
            (true, true) => 0,
            (false, true) => 3,
            (true, false) => 4,
            (false, false) => 5,
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    log_records(parent, 1..LINES);
    let status = wait_child(worker_pid).expect("the worker hung");
    assert!(
        exited_ok(status),
        "the worker failed: status {status:#x} (exit 2: cannot drop privileges, 3: the \
         worker, 4: the grandchild, 5: both lost records)"
    );
}

/// A worker that drops privileges and then forks: the grandchild's lock description is
/// opened in the worker's fork handler, by an unprivileged process that may only read the
/// lock file. Before the fix it was opened read-write, failed, and the grandchild lost
/// every line ("Permission denied").
#[test]
fn a_grandchild_of_a_worker_that_dropped_privileges_logs_every_record() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: dropping privileges needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Searchable by nobody, so the unprivileged processes can look the paths up; not
    // writable, so they cannot create or rename anything there.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut process = KillOnDrop(
        common::spawn_retrying(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "dropped_worker_and_grandchild_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(GRANDCHILD_ENV, dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the logging process hung");
        std::thread::sleep(Duration::from_millis(5));
    };
    let report = Verifier::new(dir.path().join("app.log"), NO_ROTATION, MAX_FILES)
        .expect_threads(0, 1, Expect::Exactly(LINES))
        .expect_threads(1, 1, Expect::Exactly(LINES))
        .expect_threads(2, 1, Expect::Exactly(LINES))
        .verify();
    assert!(
        status.success(),
        "the logging process failed ({status}); the file holds:\n{report}"
    );
    report.assert_ok();
    assert_eq!(report.archives, 0, "nothing rotated\n{report}");
}

// ---------------------------------------------------------------------------------------
// A parent at its descriptor limit forks an idle child, then is killed mid-append.

const EMFILE_PARENT_ENV: &str = "TSF_FORK_LOCK_EMFILE_PARENT";

/// Process P, as in [`big_writer_parent_entry`], except that it forks the idle child with
/// no descriptor free: the fork handler can open neither a fresh lock description nor a
/// placeholder, so the child must close the inherited description all the same.
#[test]
fn big_writer_at_descriptor_limit_entry() {
    let Some(dir) = std::env::var_os(EMFILE_PARENT_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(1 << 40)
        .build()
        .unwrap();
    // Every number below the lowest free one is taken: a limit at that number leaves no
    // descriptor to open.
    // SAFETY: plain descriptor and rlimit syscalls on this process.
    let (old, pid) = unsafe {
        let lowest = libc::dup(0);
        assert!(lowest >= 0, "dup: {}", std::io::Error::last_os_error());
        libc::close(lowest);
        let mut old: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let tight = libc::rlimit {
            rlim_cur: lowest as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &tight), 0);
        // The limit bites: not even /dev/null can be opened now.
        let probe = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let probe_error = std::io::Error::last_os_error();
        if probe >= 0 {
            libc::close(probe);
            libc::setrlimit(libc::RLIMIT_NOFILE, &old);
            panic!("a descriptor was still free under the limit");
        }
        assert_eq!(
            probe_error.raw_os_error(),
            Some(libc::EMFILE),
            "{probe_error}"
        );
        // The child only sleeps and `_exit`s.
        (old, libc::fork())
    };
    if pid == 0 {
        // The idle child: it never logs, and must outlive P.
        std::thread::sleep(IDLE_CHILD_LIFE);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: restores this process's own limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    assert!(pid > 0, "fork failed");
    std::fs::write(dir.join("idle_child.pid"), pid.to_string()).unwrap();
    let mut event = vec![b'x'; BIG_EVENT];
    *event.last_mut().unwrap() = b'\n';
    std::fs::write(dir.join("writing"), b"").unwrap();
    let _ = (&log).write_all(&event);
}

/// The descriptors of process `pid` that name `file`.
fn descriptors_of(pid: libc::pid_t, file: &Path) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            (std::fs::read_link(entry.path()).ok()? == file)
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Before the fix, a child forked with no descriptor free kept the inherited lock
/// description (and so a killed parent's lock) for as long as it lived.
#[test]
fn an_idle_child_forked_at_the_descriptor_limit_does_not_keep_a_killed_parents_lock() {
    const BEFORE: &[u8] = b"written before the parent was killed\n";
    const AFTER: &[u8] = b"written by the survivor\n";
    // A kill can land after the append finished; try again then.
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let survivor = SharedFile::builder(&path)
            .max_bytes(1 << 40)
            // The repair it does is expected: keep its notice off the test's output.
            .on_error(|_| {})
            .build()
            .unwrap();
        (&survivor).write_all(BEFORE).unwrap();

        let mut parent = KillOnDrop(
            common::spawn_retrying(
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "big_writer_at_descriptor_limit_entry",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(EMFILE_PARENT_ENV, dir.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )
            .unwrap(),
        );
        let mut idle_child = IdleChild(None);
        wait_for_file(&mut parent.0, &dir.path().join("writing"));
        let idle_pid: libc::pid_t = std::fs::read_to_string(dir.path().join("idle_child.pid"))
            .unwrap()
            .parse()
            .unwrap();
        idle_child.0 = Some(idle_pid);
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

        let (tx, rx) = mpsc::channel();
        {
            let survivor = survivor.clone();
            std::thread::spawn(move || {
                let result = (&survivor).write_all(AFTER);
                let _ = tx.send((result, died.elapsed()));
            });
        }
        let Ok((result, took)) = rx.recv_timeout(Duration::from_secs(1)) else {
            let held_by_child = descriptors_of(idle_pid, &dir.path().join("app.log.lock"));
            drop(idle_child);
            let freed = Instant::now();
            let released = rx.recv_timeout(Duration::from_secs(10)).is_ok();
            panic!(
                "the survivor's write was still blocked 1 s after the lock holder died: the idle \
                 child, forked with no descriptor free, kept the dead parent's lock (its lock \
                 file descriptors: {held_by_child:?}); {}",
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
        // The child really went without a lock description: it was forked at the limit.
        assert_eq!(
            descriptors_of(idle_pid, &dir.path().join("app.log.lock")),
            Vec::<String>::new(),
            "the idle child holds a descriptor of the lock file"
        );
        let content = std::fs::read(&path).unwrap();
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
// A forked child's stats count what the child did, from the fork on.

const STATS_ENV: &str = "TSF_FORK_LOCK_STATS";
/// Every event of the stats scenario: 40 bytes, so that `STATS_MAX_BYTES` holds two.
const STATS_EVENT_LEN: usize = 40;
const STATS_MAX_BYTES: u64 = 100;

fn stats_event(who: &str, index: usize) -> Vec<u8> {
    let mut event = format!("{who} event {index} ").into_bytes();
    event.resize(STATS_EVENT_LEN - 1, b'.');
    event.push(b'\n');
    event
}

/// Every counter of `stats`, on one line.
fn stats_line(stats: &tracing_shared_file::Stats) -> String {
    format!(
        "events_written={} bytes_written={} rotations={} write_errors={} rotation_errors={} \
         events_dropped={} lock_wait_total={:?} lock_wait_max={:?}",
        stats.events_written,
        stats.bytes_written,
        stats.rotations,
        stats.write_errors,
        stats.rotation_errors,
        stats.events_dropped,
        stats.lock_wait_total,
        stats.lock_wait_max
    )
}

/// Process P: writes 5 events (rotating twice), forks child C, which writes 3 (rotating
/// once) and records its stats in `<dir>/child.stats`; then P records its own in
/// `<dir>/parent.stats`.
#[test]
fn stats_across_fork_entry() {
    let Some(dir) = std::env::var_os(STATS_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(STATS_MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    for index in 0..5 {
        (&log).write_all(&stats_event("parent", index)).unwrap();
    }
    // SAFETY: the child writes, records its stats and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let wrote = (0..3).all(|index| (&log).write_all(&stats_event("child", index)).is_ok());
        let recorded = std::fs::write(dir.join("child.stats"), stats_line(&log.stats())).is_ok();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if wrote && recorded { 0 } else { 1 }) };
    }
    let status = wait_child(pid).expect("the forked child hung");
    assert!(
        exited_ok(status),
        "the forked child failed: status {status:#x}"
    );
    std::fs::write(dir.join("parent.stats"), stats_line(&log.stats())).unwrap();
}

#[test]
fn a_forked_childs_stats_count_only_what_the_child_did() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = KillOnDrop(
        common::spawn_retrying(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "stats_across_fork_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(STATS_ENV, dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the logging process hung");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the logging process failed: {status}");

    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    // Nobody else held the lock, so neither waited.
    assert_eq!(
        read("child.stats"),
        "events_written=3 bytes_written=120 rotations=1 write_errors=0 rotation_errors=0 \
         events_dropped=0 lock_wait_total=0ns lock_wait_max=0ns",
        "the child's stats must count its own 3 events and 1 rotation, not its parent's"
    );
    assert_eq!(
        read("parent.stats"),
        "events_written=5 bytes_written=200 rotations=2 write_errors=0 rotation_errors=0 \
         events_dropped=0 lock_wait_total=0ns lock_wait_max=0ns",
        "the parent's stats must not count its child's events"
    );
    // The events went where the counters say: two per file, the child rotating once.
    let files: Vec<Vec<u8>> = ["app.log.3", "app.log.2", "app.log.1", "app.log"]
        .iter()
        .map(|name| std::fs::read(dir.path().join(name)).unwrap())
        .collect();
    let expected: Vec<Vec<u8>> = [
        [stats_event("parent", 0), stats_event("parent", 1)],
        [stats_event("parent", 2), stats_event("parent", 3)],
        [stats_event("parent", 4), stats_event("child", 0)],
        [stats_event("child", 1), stats_event("child", 2)],
    ]
    .iter()
    .map(|pair| pair.concat())
    .collect();
    assert_eq!(
        files
            .iter()
            .map(|f| f.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|f| f.escape_ascii().to_string())
            .collect::<Vec<_>>()
    );
    assert!(!dir.path().join("app.log.4").exists());
}

// ---------------------------------------------------------------------------------------
// A child forked with no descriptor free: the inherited lock number stays taken.

const EMFILE_GRANDCHILD_ENV: &str = "TSF_FORK_LOCK_EMFILE_GRANDCHILD";
const EMFILE_DROP_ENV: &str = "TSF_FORK_LOCK_EMFILE_DROP";
/// The file a child forked at the descriptor limit opens for itself.
const CHILD_OWN_FILE: &str = "child-own.txt";
const OWN_BEFORE: &[u8] = b"the child's own line, before it forks\n";
const OWN_GRANDCHILD: &[u8] = b"the grandchild's line in the child's own file\n";
const OWN_AFTER: &[u8] = b"the child's own line, after its child exited\n";
/// Records each process of the scenario logs.
const EMFILE_LINES: u64 = 100;

/// Writes `text` to stderr in one `write(2)`, as a forked child must (no buffer, no lock).
fn say(text: &str) {
    // SAFETY: writes from a live buffer of that length.
    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}

/// Lowers this process's descriptor limit to its lowest free descriptor number, so that
/// not one more can be opened (checked); returns the limit to restore.
fn limit_descriptors_to_those_open() -> libc::rlimit {
    // SAFETY: plain descriptor and rlimit syscalls on this process.
    unsafe {
        let lowest = libc::dup(0);
        assert!(lowest >= 0, "dup: {}", std::io::Error::last_os_error());
        libc::close(lowest);
        let mut old: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let tight = libc::rlimit {
            rlim_cur: lowest as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &tight), 0);
        let probe = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if probe >= 0 {
            libc::close(probe);
            libc::setrlimit(libc::RLIMIT_NOFILE, &old);
            panic!("a descriptor was still free under the limit");
        }
        old
    }
}

fn restore_descriptor_limit(old: &libc::rlimit) {
    // SAFETY: restores this process's own limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, old) };
}

fn write_records(log: &SharedFile, writer: WriterId, seqs: std::ops::Range<u64>) -> bool {
    seqs.into_iter().all(|seq| {
        (&*log)
            .write_all(common::workload::fmt_line(writer, seq).as_bytes())
            .is_ok()
    })
}

/// Process P: logs, forks child C with no descriptor free (so C gets no fresh lock
/// description), and logs on. C opens a file of its own (the lowest free number), writes a
/// line to it, and forks grandchild G before it ever logs; G writes a line to C's file
/// through the descriptor it inherited, and logs; then C logs and writes to its file again.
/// Exit codes of C: bit 0 its own file, bit 1 its logging, bit 2 its grandchild failed.
#[test]
fn emfile_child_and_grandchild_entry() {
    let Some(dir) = std::env::var_os(EMFILE_GRANDCHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(NO_ROTATION)
        .build()
        .unwrap();
    let [parent, child, grandchild] = [0, 1, 2].map(|process| WriterId { process, thread: 0 });
    assert!(write_records(&log, parent, 0..1));
    let old = limit_descriptors_to_those_open();
    // SAFETY: the child only writes, forks and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        restore_descriptor_limit(&old);
        let Ok(mut own) = std::fs::File::create(dir.join(CHILD_OWN_FILE)) else {
            say("child: cannot create its own file\n");
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(1) };
        };
        let mut failed = 0;
        if own.write_all(OWN_BEFORE).is_err() {
            failed |= 1;
        }
        // SAFETY: the grandchild only writes and `_exit`s.
        let grandchild_pid = unsafe { libc::fork() };
        if grandchild_pid == 0 {
            let own_ok = match own.write_all(OWN_GRANDCHILD) {
                Ok(()) => true,
                Err(e) => {
                    say(&format!("grandchild: writing its parent's own file: {e}\n"));
                    false
                }
            };
            let logged = write_records(&log, grandchild, 0..EMFILE_LINES);
            let counted = log.stats().events_written == EMFILE_LINES;
            // SAFETY: ends the grandchild without running destructors.
            unsafe { libc::_exit(if own_ok && logged && counted { 0 } else { 1 }) };
        }
        if !wait_child(grandchild_pid).is_some_and(exited_ok) {
            failed |= 4;
        }
        if !write_records(&log, child, 0..EMFILE_LINES) {
            failed |= 2;
        }
        if let Err(e) = own.write_all(OWN_AFTER) {
            say(&format!("child: writing its own file: {e}\n"));
            failed |= 1;
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(failed) };
    }
    restore_descriptor_limit(&old);
    assert!(pid > 0, "fork failed");
    assert!(write_records(&log, parent, 1..EMFILE_LINES));
    let status = wait_child(pid).expect("the child hung");
    assert!(
        exited_ok(status),
        "the child failed: status {status:#x} (exit bits: 1 its own file, 2 its logging, 4 \
         its grandchild)"
    );
}

/// Process P: logs, forks child C with no descriptor free. C opens a file of its own,
/// drops its `SharedFile` (as one that builds a new one would), writes to its own file,
/// then builds a new `SharedFile` and logs. P logs once C is done. Exit codes of C: 1 its
/// own file, 2 its logging.
#[test]
fn emfile_child_drops_its_log_entry() {
    let Some(dir) = std::env::var_os(EMFILE_DROP_ENV) else {
        return;
    };
    let path = PathBuf::from(dir).join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(NO_ROTATION)
        .build()
        .unwrap();
    (&log).write_all(b"parent first\n").unwrap();
    let old = limit_descriptors_to_those_open();
    // SAFETY: the child only writes, builds and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        restore_descriptor_limit(&old);
        let own = std::fs::File::create(path.with_file_name(CHILD_OWN_FILE));
        let Ok(mut own) = own else {
            say("child: cannot create its own file\n");
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(1) };
        };
        drop(log);
        let mut failed = 0;
        if let Err(e) = own.write_all(OWN_AFTER) {
            say(&format!(
                "child: writing its own file after dropping its log: {e}\n"
            ));
            failed |= 1;
        }
        let rebuilt = SharedFile::builder(&path).max_bytes(NO_ROTATION).build();
        if !rebuilt.is_ok_and(|log| (&log).write_all(b"child, after the rebuild\n").is_ok()) {
            failed |= 2;
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(failed) };
    }
    restore_descriptor_limit(&old);
    assert!(pid > 0, "fork failed");
    let status = wait_child(pid).expect("the child hung");
    (&log).write_all(b"parent last\n").unwrap();
    assert!(
        exited_ok(status),
        "the child failed: status {status:#x} (exit bits: 1 its own file, 2 its logging)"
    );
}

/// Runs `entry` in a fresh process with `env` set to `dir`, and waits for it to succeed.
fn run_entry(entry: &str, env: &str, dir: &Path) {
    let mut process = KillOnDrop(
        common::spawn_retrying(
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", entry, "--nocapture", "--test-threads=1"])
                .env(env, dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{entry} hung");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{entry} failed: {status}");
}

/// Before the fix, the child closed the inherited lock descriptor while its `LockFile`
/// still owned the number; the child's own file then got that number, and the fork of
/// the grandchild put a lock description in its place there: the grandchild's write to
/// the child's file failed (`EBADF`). Now the number stays taken (it points at the log
/// file's description) until the child reopens the lock file.
#[test]
fn a_child_forked_at_the_descriptor_limit_keeps_its_own_files_and_its_grandchild_logs() {
    let dir = tempfile::tempdir().unwrap();
    run_entry(
        "emfile_child_and_grandchild_entry",
        EMFILE_GRANDCHILD_ENV,
        dir.path(),
    );
    assert_eq!(
        std::fs::read(dir.path().join(CHILD_OWN_FILE))
            .unwrap()
            .escape_ascii()
            .to_string(),
        [OWN_BEFORE, OWN_GRANDCHILD, OWN_AFTER]
            .concat()
            .escape_ascii()
            .to_string(),
        "the child's own file holds its lines and its child's, and nothing else"
    );
    let report = Verifier::new(dir.path().join("app.log"), NO_ROTATION, MAX_FILES)
        .expect_threads(0, 1, Expect::Exactly(EMFILE_LINES))
        .expect_threads(1, 1, Expect::Exactly(EMFILE_LINES))
        .expect_threads(2, 1, Expect::Exactly(EMFILE_LINES))
        .verify();
    report.assert_ok();
    assert_eq!(report.archives, 0, "nothing rotated\n{report}");
}

/// Before the fix, a child forked at the limit that dropped its `SharedFile` before it
/// ever logged closed the inherited lock number a second time: by then its own file's.
#[test]
fn a_child_forked_at_the_descriptor_limit_that_drops_its_log_closes_none_of_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    run_entry(
        "emfile_child_drops_its_log_entry",
        EMFILE_DROP_ENV,
        dir.path(),
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(CHILD_OWN_FILE)).unwrap(),
        String::from_utf8(OWN_AFTER.to_vec()).unwrap(),
        "the child's write to its own file went through"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.log")).unwrap(),
        "parent first\nchild, after the rebuild\nparent last\n"
    );
}

// ---------------------------------------------------------------------------------------
// A SharedFile built by one thread while another forks.

const BUILD_FORK_ENV: &str = "TSF_FORK_LOCK_BUILD_FORK";
/// Forks made while another thread builds.
const FORKS: u32 = 200;
/// Descriptor numbers the child inspects, and compares with its parent's: well above
/// what the scenario opens (it keeps at most `KEPT_BUILDS` files alive).
const SCANNED_FDS: i32 = 1024;
const KEPT_BUILDS: usize = 32;

/// `kcmp(KCMP_FILE)`: 0 when descriptor `fd1` of `pid1` and `fd2` of `pid2` are the same
/// open file description.
#[cfg(target_os = "linux")]
fn kcmp_file(pid1: libc::pid_t, pid2: libc::pid_t, fd1: i32, fd2: i32) -> libc::c_long {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp only compares kernel objects; async-signal-safe.
    unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(pid1),
            libc::c_long::from(pid2),
            KCMP_FILE,
            libc::c_long::from(fd1),
            libc::c_long::from(fd2),
        )
    }
}

/// In a child just forked from a process whose other thread may be running anything:
/// only async-signal-safe calls. Finds every descriptor of the lock file (`dev`, `ino`)
/// that is read-write (the fork handlers give a child read-only ones only) and, with
/// `kcmp`, whether it is the same description as one its parent still has. Returns 0 if
/// none; 1 if one is read-write, 3 if it is also its parent's.
#[cfg(target_os = "linux")]
fn inspect_lock_descriptors(dev: u64, ino: u64, kcmp_works: bool) -> i32 {
    // SAFETY: plain syscalls on this process's descriptors.
    unsafe {
        let (me, parent) = (libc::getpid(), libc::getppid());
        let mut found = 0;
        for fd in 0..SCANNED_FDS {
            let mut stat: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut stat) != 0 || stat.st_dev != dev || stat.st_ino != ino {
                continue;
            }
            if libc::fcntl(fd, libc::F_GETFL) & libc::O_ACCMODE == libc::O_RDONLY {
                continue;
            }
            found |= 1;
            if kcmp_works && (0..SCANNED_FDS).any(|theirs| kcmp_file(me, parent, fd, theirs) == 0) {
                found |= 2;
            }
        }
        found
    }
}

/// Process P: a thread builds `SharedFile`s on one path in a loop (keeping the last
/// `KEPT_BUILDS`), while the main thread forks `FORKS` children one after the other; each
/// child looks for a lock description of its parent's among its descriptors, and says so
/// in its exit code. P fails if any child found one.
#[cfg(target_os = "linux")]
#[test]
fn build_while_forking_entry() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let Some(dir) = std::env::var_os(BUILD_FORK_ENV) else {
        return;
    };
    let path = PathBuf::from(dir).join("app.log");
    let first = SharedFile::builder(&path).build().unwrap();
    let lock = std::fs::metadata(path.with_file_name("app.log.lock")).unwrap();
    let (dev, ino) = (lock.dev(), lock.ino());
    // A container may refuse kcmp: then a read-write description alone is the sign.
    let probe = std::fs::File::open(path.with_file_name("app.log.lock")).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&probe);
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let kcmp_works = kcmp_file(me, me, fd, fd) == 0;
    assert!(fd + 4 * KEPT_BUILDS as i32 + 64 < SCANNED_FDS);
    drop(probe);
    if !kcmp_works {
        println!(
            "note: kcmp is not available ({}); checking access modes only",
            std::io::Error::last_os_error()
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let builds = Arc::new(AtomicU64::new(0));
    // Held by the main thread around each fork, and by the builder while it drops a file:
    // a child that inherits a descriptor that another thread is closing at that moment
    // holds no lock with it, and is not what this test looks for.
    let not_forking = Arc::new(std::sync::Mutex::new(()));
    let builder = {
        let (stop, builds, path) = (Arc::clone(&stop), Arc::clone(&builds), path.clone());
        let not_forking = Arc::clone(&not_forking);
        std::thread::spawn(move || {
            let mut kept = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                kept.push_back(SharedFile::builder(&path).build().unwrap());
                if kept.len() > KEPT_BUILDS {
                    let _not_forking = not_forking.lock().unwrap();
                    kept.pop_front();
                }
                builds.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let deadline = Instant::now() + DEADLINE;
    while builds.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the builder never built");
        std::thread::sleep(Duration::from_millis(1));
    }
    let builds_before = builds.load(Ordering::Relaxed);
    let mut found = Vec::new();
    for fork in 0..FORKS {
        let not_dropping = not_forking.lock().unwrap();
        // SAFETY: the child only makes async-signal-safe calls and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = inspect_lock_descriptors(dev, ino, kcmp_works);
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        drop(not_dropping);
        let status = wait_child(pid).expect("a forked child hung");
        assert!(libc::WIFEXITED(status), "child {fork}: status {status:#x}");
        match libc::WEXITSTATUS(status) {
            0 => {}
            code => found.push((fork, code)),
        }
    }
    let builds_during = builds.load(Ordering::Relaxed) - builds_before;
    stop.store(true, Ordering::Relaxed);
    builder.join().unwrap();
    drop(first);
    assert!(
        found.is_empty(),
        "{} of {FORKS} children (forked while another thread built {builds_during} times) \
         held a read-write description of the lock file that the fork handlers did not \
         replace (code 1), the parent's own (code 3); (fork, code), first ten: {:?}",
        found.len(),
        &found[..found.len().min(10)]
    );
    println!("\nBUILDS_DURING_FORKS {builds_during}");
}

/// Before the fix, a `SharedFile` being built while another thread forked had its lock
/// descriptions open before the fork handlers knew of it: the child kept its parent's
/// read-write lock description (the same description, as `kcmp` shows), so an idle child
/// held a killed parent's lock. Now a build opens them and registers under the handlers'
/// registry lock, which the fork waits for.
#[cfg(target_os = "linux")]
#[test]
fn no_child_forked_while_another_thread_builds_inherits_a_lock_description() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdout");
    let mut process = KillOnDrop(
        common::spawn_retrying(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "build_while_forking_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(BUILD_FORK_ENV, dir.path())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out).unwrap()),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the forking process hung");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the forking process failed: {status}");
    let stdout = std::fs::read_to_string(&out).unwrap();
    let builds: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BUILDS_DURING_FORKS "))
        .unwrap_or_else(|| panic!("no count of builds in:\n{stdout}"))
        .parse()
        .unwrap();
    // The race was run: the builds went on while the children were forked.
    assert!(builds > 0, "no SharedFile was built during the forks");
}

#[cfg(not(target_os = "linux"))]
#[test]
fn no_child_forked_while_another_thread_builds_inherits_a_lock_description() {
    println!("skipped: the check compares open file descriptions with kcmp(2), Linux only");
}
