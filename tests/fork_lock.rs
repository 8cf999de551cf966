//! A forked child must not keep its parent's lock alive: the kernel drops a flock only
//! when the last descriptor of its open file description closes, so a child that kept
//! the inherited lock descriptor would hold a killed parent's lock for as long as it
//! lives. And after a fork, parent and child both log safely to the same file.
//!
//! Also: a worker that drops privileges and then forks has a grandchild that logs every
//! record; a child forked with no descriptor free does not keep the lock either; and a
//! forked child's stats count only what it did.
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
