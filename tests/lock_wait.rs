//! A lock holder that never lets go: `Builder::lock_timeout` bounds the wait for the lock
//! (past it the events are dropped, counted, and reported with the holder's pid when the
//! holder is one of ours), dropping a non-blocking `WorkerGuard` still returns, and a
//! `fork()` never waits for a lock that another process holds.
//!
//! Lock holders are real processes (this test binary re-run): a plain `flock` holder,
//! or a `SharedFile` writer stopped with `SIGSTOP` inside its critical section. Every
//! wait has a deadline, and every child is killed when its guard drops, which also frees
//! any write still waiting when a test fails.

mod common;

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing_shared_file::{SharedFile, Stats};

const HOLDER_ENV: &str = "TSF_LOCK_WAIT_HOLDER";
const LOOPER_ENV: &str = "TSF_LOCK_WAIT_LOOPER";
const FORK_ENV: &str = "TSF_LOCK_WAIT_FORK";
/// The bound under test.
const LOCK_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a write bounded by `LOCK_TIMEOUT` may take before the test calls it unbounded.
const GENEROUS: Duration = Duration::from_secs(5);
/// Any wait for a child longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Child processes.

/// A holder that is not one of ours: a plain `flock` on `<dir>/app.log.lock`. Creates
/// `<dir>/held` once it has the lock, and lets go when `<dir>/release` appears or after
/// the number of milliseconds given after the colon.
#[test]
fn lock_holder_entry() {
    let Ok(spec) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let (dir, hold_ms) = spec.rsplit_once(':').unwrap();
    let dir = PathBuf::from(dir);
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("app.log.lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(dir.join("held"), b"").unwrap();
    let until = Instant::now() + Duration::from_millis(hold_ms.parse().unwrap());
    while !dir.join("release").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The looping writer's event: large enough that its append takes a while, so that a
/// `SIGSTOP` sent while the file grows stops the writer as its `write(2)` returns, inside
/// its critical section. (A stop sent at a random moment can land just after the flock
/// was taken, before the holder could record its pid.)
const BIG_EVENT: usize = 64 << 20;

/// A `SharedFile` writer that appends `BIG_EVENT`s in a loop, each in a fresh file
/// (`max_bytes(1)`, one archive kept). Creates `<dir>/looping` before it starts.
#[test]
fn looping_writer_entry() {
    let Some(dir) = std::env::var_os(LOOPER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(1)
        .max_files(1)
        .build()
        .unwrap();
    let mut event = vec![b'x'; BIG_EVENT];
    *event.last_mut().unwrap() = b'\n';
    std::fs::write(dir.join("looping"), b"").unwrap();
    // Ends by itself, in case the test could not kill it.
    let until = Instant::now() + DEADLINE;
    while Instant::now() < until {
        (&log).write_all(&event).unwrap();
    }
}

const WAITING_LINE: &[u8] = b"written by the thread that waited for the lock\n";

/// Runs in a process whose threads the test controls: thread T blocks in a write while
/// another process holds the lock, then the main thread forks (`fork`) or spawns a
/// command with a `pre_exec` hook (`pre_exec`). Writes how long that took, in
/// microseconds, to `<dir>/fork_micros`, then waits for T's write.
#[test]
fn fork_while_waiting_entry() {
    let Ok(spec) = std::env::var(FORK_ENV) else {
        return;
    };
    let (how, dir) = spec.split_once(':').unwrap();
    let dir = Path::new(dir);
    let log = SharedFile::builder(dir.join("app.log")).build().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (log, done) = (log.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let result = (&log).write_all(WAITING_LINE);
            done.store(true, Ordering::SeqCst);
            result
        })
    };
    // Ample time for T to reach the wait for the lock, which it cannot leave before the
    // holder lets go.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "T wrote although another process held the lock"
    );
    let started = Instant::now();
    match how {
        "fork" => {
            // SAFETY: the child `_exit`s at once.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
            if pid == 0 {
                // SAFETY: ends the child without running anything of the parent's.
                unsafe { libc::_exit(0) };
            }
            let took = started.elapsed();
            reap_within_deadline(pid);
            std::fs::write(dir.join("fork_micros"), took.as_micros().to_string()).unwrap();
        }
        "pre_exec" => {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new("true");
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: the hook does nothing; it only makes std fork (running the fork
            // handlers) instead of using posix_spawn.
            unsafe { command.pre_exec(|| Ok(())) };
            let mut child = command.spawn().unwrap();
            let deadline = Instant::now() + DEADLINE;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the spawned `true` hung");
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let took = started.elapsed();
            assert!(status.success(), "`true` failed: {status}");
            std::fs::write(dir.join("fork_micros"), took.as_micros().to_string()).unwrap();
        }
        other => panic!("unknown scenario {other}"),
    }
    waiter.join().unwrap().unwrap();
}

/// Waits for a child that should exit at once; kills it and fails if it hangs (in a fork
/// handler, say) or fails.
fn reap_within_deadline(pid: libc::pid_t) {
    let deadline = Instant::now() + DEADLINE;
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != pid {
        if Instant::now() > deadline {
            // SAFETY: kill of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child {pid} hung");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed: status {status:#x}"
    );
}

// ---------------------------------------------------------------------------------------
// Test side: children, and what the hook saw.

/// A child that is killed if the test panics before it exits. Killing it frees the lock
/// it holds, so that a write the failing test left waiting can finish.
struct Running {
    name: &'static str,
    child: Child,
    stderr: PathBuf,
}

impl Running {
    fn spawn(dir: &Path, name: &'static str, entry: &str, env: (&str, String)) -> Self {
        let stderr = dir.join(format!("{}.stderr", name.replace(' ', "_")));
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", entry, "--nocapture", "--test-threads=1"])
            .env(env.0, env.1)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap());
        let child = common::spawn_retrying(&mut command).unwrap();
        Running {
            name,
            child,
            stderr,
        }
    }

    /// A holder that is not one of ours, holding the lock of `<dir>/app.log` until
    /// `<dir>/release` appears or `hold` has passed; returns once it holds the lock.
    fn foreign_holder(dir: &Path, hold: Duration) -> Self {
        let spec = format!("{}:{}", dir.display(), hold.as_millis());
        let mut holder =
            Running::spawn(dir, "lock holder", "lock_holder_entry", (HOLDER_ENV, spec));
        holder.wait_for_file(&dir.join("held"));
        holder
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the child creates `path`; fails if it exits first or takes too long.
    fn wait_for_file(&mut self, path: &Path) {
        let deadline = Instant::now() + DEADLINE;
        while !path.exists() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before creating {}:\n{}",
                    self.name,
                    path.display(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} never created {}",
                self.name,
                path.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for a successful exit, failing at the deadline.
    fn wait_success(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{} hung", self.name);
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(
            status.success(),
            "{} failed ({status}):\n{}",
            self.name,
            self.stderr()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: a plain kill of a child of this test.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Whether every thread of `pid` is stopped (state `T` in /proc).
fn is_stopped(pid: libc::pid_t) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state == 'T' || state == 't')
        })
    })
}

/// Whether some process holds the flock that `probe` (our own open of the lock file)
/// would take; a free lock is released again at once.
fn lock_is_held(probe: &File) -> bool {
    match probe.try_lock() {
        Ok(()) => {
            probe.unlock().unwrap();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(e)) => panic!("probing the lock: {e}"),
    }
}

/// One failure as the `on_error` hook saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    kind: io::ErrorKind,
    event_dropped: bool,
    message: String,
}

type Failures = Arc<Mutex<Vec<Failure>>>;

/// A `SharedFile` on `<dir>/app.log` whose hook records every failure (which also keeps
/// the reports off the test's stderr).
fn build_recording(dir: &Path, lock_timeout: Option<Duration>) -> (SharedFile, Failures) {
    let failures = Failures::default();
    let mut builder = SharedFile::builder(dir.join("app.log")).on_error({
        let failures = Arc::clone(&failures);
        move |failure| {
            failures.lock().unwrap().push(Failure {
                kind: failure.error().kind(),
                event_dropped: failure.event_dropped(),
                message: failure.error().to_string(),
            });
        }
    });
    if let Some(timeout) = lock_timeout {
        builder = builder.lock_timeout(timeout);
    }
    (builder.build().unwrap(), failures)
}

/// Writes `line` as one event on a helper thread, so that the test can tell a write
/// that waits from one that returns; the receiver gets the result and the time it took.
fn write_in_background(
    log: &SharedFile,
    line: &'static [u8],
) -> mpsc::Receiver<(io::Result<()>, Duration)> {
    let (tx, rx) = mpsc::channel();
    let log = log.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = (&log).write_all(line);
        let _ = tx.send((result, started.elapsed()));
    });
    rx
}

/// `(events_written, events_dropped, write_errors)`, the counters these tests pin down.
fn counts(stats: Stats) -> (u64, u64, u64) {
    (
        stats.events_written,
        stats.events_dropped,
        stats.write_errors,
    )
}

/// Whether `message` names `pid` as `pid <N>` (and not a longer number starting alike).
fn names_pid(message: &str, pid: libc::pid_t) -> bool {
    let needle = format!("pid {pid}");
    message.match_indices(&needle).any(|(at, _)| {
        !message[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Checks that a bounded write failed as a timeout, and what was counted and reported.
#[track_caller]
fn assert_timed_out(
    outcome: Result<(io::Result<()>, Duration), RecvTimeoutError>,
    log: &SharedFile,
    failures: &Failures,
    events_written_before: u64,
) -> Failure {
    let (result, took) = outcome.unwrap_or_else(|_| {
        panic!(
            "with lock_timeout({LOCK_TIMEOUT:?}) the write was still waiting after {GENEROUS:?}: \
             the bound is not enforced"
        )
    });
    let error = result.expect_err("the write succeeded although another process held the lock");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    // A little less than the bound, for the coarse clock.
    assert!(
        took >= LOCK_TIMEOUT - Duration::from_millis(50),
        "gave up after {took:?}, before the bound of {LOCK_TIMEOUT:?}"
    );
    assert_eq!(
        counts(log.stats()),
        (events_written_before, 1, 1),
        "(events_written, events_dropped, write_errors)"
    );
    let failures = failures.lock().unwrap().clone();
    assert_eq!(
        failures.len(),
        1,
        "one report per failed write: {failures:?}"
    );
    let failure = failures.into_iter().next().unwrap();
    assert_eq!(
        (failure.kind, failure.event_dropped),
        (io::ErrorKind::TimedOut, true),
        "{failure:?}"
    );
    failure
}

// ---------------------------------------------------------------------------------------
// Repro 1: a holder that never lets go.

/// A `SharedFile` writer stopped inside its critical section holds the lock for good; a
/// bounded write gives up, and the report names the stopped process.
#[test]
fn a_write_times_out_on_a_stopped_writer_and_the_report_names_its_pid() {
    const LINE: &[u8] = b"dropped: the lock holder is stopped\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut looper = Running::spawn(
        dir,
        "looping writer",
        "looping_writer_entry",
        (LOOPER_ENV, dir.display().to_string()),
    );
    looper.wait_for_file(&dir.join("looping"));
    let pid = looper.pid();

    // Stop the writer in the middle of an append, until it is caught holding the lock.
    let probe = File::open(dir.join("app.log.lock")).unwrap();
    let log_len = || std::fs::metadata(dir.join("app.log")).map_or(0, |m| m.len());
    let mut caught = false;
    for _attempt in 0..20 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(1..BIG_EVENT as u64).contains(&log_len()) {
            assert!(Instant::now() < deadline, "the writer never appended");
            std::hint::spin_loop();
        }
        signal(pid, libc::SIGSTOP);
        while !is_stopped(pid) {
            assert!(Instant::now() < deadline, "the writer did not stop");
            std::thread::sleep(Duration::from_micros(100));
        }
        if lock_is_held(&probe) {
            caught = true;
            break;
        }
        signal(pid, libc::SIGCONT);
    }
    assert!(caught, "never caught the looping writer holding the lock");

    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    let outcome = write_in_background(&log, LINE).recv_timeout(GENEROUS);
    let failure = assert_timed_out(outcome, &log, &failures, 0);
    assert!(
        names_pid(&failure.message, pid),
        "the report must name the holder as `pid {pid}`: {:?}",
        failure.message
    );

    drop(looper);
}

/// A holder that is not one of ours records no pid; the bounded write still gives up,
/// and does not blame this process, whose pid the page held from its own earlier write.
/// Once the holder lets go, writing works again.
#[test]
fn a_write_times_out_on_a_foreign_holder_and_writes_again_once_it_lets_go() {
    const BEFORE: &[u8] = b"before the foreign holder\n";
    const DROPPED: &[u8] = b"dropped: a foreign process holds the lock\n";
    const AFTER: &[u8] = b"after the foreign holder let go\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    (&log).write_all(BEFORE).unwrap();
    let mut holder = Running::foreign_holder(dir, DEADLINE);

    let outcome = write_in_background(&log, DROPPED).recv_timeout(GENEROUS);
    let failure = assert_timed_out(outcome, &log, &failures, 1);
    let own_pid = std::process::id() as libc::pid_t;
    assert!(
        !names_pid(&failure.message, own_pid),
        "the report blames this process (pid {own_pid}), which does not hold the lock: {:?}",
        failure.message
    );

    std::fs::write(dir.join("release"), b"").unwrap();
    holder.wait_success();
    (&log).write_all(AFTER).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("app.log")).unwrap(),
        String::from_utf8([BEFORE, AFTER].concat()).unwrap()
    );
    assert_eq!(counts(log.stats()), (2, 1, 1));
}

/// Without `lock_timeout` a write waits for as long as another process holds the lock,
/// and completes once it lets go.
#[test]
fn without_a_bound_a_write_waits_until_the_holder_lets_go() {
    const LINE: &[u8] = b"waited for the lock\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, None);
    let mut holder = Running::foreign_holder(dir, DEADLINE);

    let write = write_in_background(&log, LINE);
    assert!(
        matches!(
            write.recv_timeout(Duration::from_millis(500)),
            Err(RecvTimeoutError::Timeout)
        ),
        "the write returned although another process held the lock"
    );
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.wait_success();
    let (result, _) = write
        .recv_timeout(GENEROUS)
        .expect("the write was still waiting after the holder let go");
    result.unwrap();
    assert_eq!(
        std::fs::read(dir.join("app.log")).unwrap(),
        LINE,
        "the file holds the one event"
    );
    assert_eq!(counts(log.stats()), (1, 0, 0));
    assert_eq!(*failures.lock().unwrap(), []);
}

/// Non-blocking with a bound: while a foreign process holds the lock for 30 s, dropping
/// the `WorkerGuard` returns after the bound instead of waiting in `join`; every queued
/// event is counted as dropped and none reached the file.
#[test]
fn dropping_the_guard_returns_while_the_lock_is_never_released() {
    const EVENTS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    let _holder = Running::foreign_holder(dir, DEADLINE);

    let (mut writer, guard) = log.non_blocking();
    for seq in 0..EVENTS {
        writer
            .write_all(format!("queued event {seq}\n").as_bytes())
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_ok(),
        "dropping the WorkerGuard was still blocked after 3 s, with lock_timeout({LOCK_TIMEOUT:?})"
    );

    let stats = log.stats();
    assert_eq!(
        (stats.events_written, stats.events_dropped),
        (0, EVENTS),
        "(events_written, events_dropped): every queued event was dropped"
    );
    // How many writes the events went out in depends on how the worker batched them.
    assert!(
        (1..=EVENTS).contains(&stats.write_errors),
        "write_errors = {}",
        stats.write_errors
    );
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len() as u64, stats.write_errors, "{failures:?}");
    for failure in &failures {
        assert_eq!(
            (failure.kind, failure.event_dropped),
            (io::ErrorKind::TimedOut, true),
            "{failure:?}"
        );
    }
    assert_eq!(std::fs::read(dir.join("app.log")).unwrap(), b"");
}

// ---------------------------------------------------------------------------------------
// Repro 2: a fork while another thread waits for the lock.

/// Runs `fork_while_waiting_entry` while a foreign process holds the lock for up to 4 s,
/// and checks that the fork (or spawn) took under a second.
fn run_fork_while_waiting(how: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut holder = Running::foreign_holder(dir, Duration::from_secs(4));
    let mut forker = Running::spawn(
        dir,
        "forking process",
        "fork_while_waiting_entry",
        (FORK_ENV, format!("{how}:{}", dir.display())),
    );
    forker.wait_for_file(&dir.join("fork_micros"));
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.wait_success();
    forker.wait_success();

    let took = Duration::from_micros(
        std::fs::read_to_string(dir.join("fork_micros"))
            .unwrap()
            .parse()
            .unwrap(),
    );
    assert!(
        took < Duration::from_secs(1),
        "{how} took {took:?} while another thread waited for a lock that another process held"
    );
    assert_eq!(
        std::fs::read(dir.join("app.log")).unwrap(),
        WAITING_LINE,
        "the waiting thread's event, written once the holder let go"
    );
}

#[test]
fn fork_does_not_wait_for_a_lock_that_another_process_holds() {
    run_fork_while_waiting("fork");
}

#[test]
fn spawning_with_pre_exec_does_not_wait_for_a_lock_that_another_process_holds() {
    run_fork_while_waiting("pre_exec");
}

// ---------------------------------------------------------------------------------------
// Review: an unrepresentable bound, and a dead holder named as the holder.

/// Waits for a write started by `write_in_background` to be still waiting after `wait`;
/// fails if it returned, or if its thread panicked.
#[track_caller]
fn assert_still_waiting(write: &mpsc::Receiver<(io::Result<()>, Duration)>, wait: Duration) {
    match write.recv_timeout(wait) {
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => panic!("the writing thread panicked"),
        Ok((result, took)) => panic!(
            "the write returned {result:?} after {took:?} although another process held the lock"
        ),
    }
}

/// `lock_timeout(Duration::MAX)` is a bound too far off to add to the clock: it means no
/// bound. A write waits while another process holds the lock, and completes once it lets
/// go, instead of panicking while it works out the deadline.
#[test]
fn with_lock_timeout_duration_max_a_write_waits_until_the_holder_lets_go() {
    const LINE: &[u8] = b"waited for the lock with lock_timeout(Duration::MAX)\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(Duration::MAX));
    let mut holder = Running::foreign_holder(dir, DEADLINE);

    let write = write_in_background(&log, LINE);
    assert_still_waiting(&write, Duration::from_millis(200));
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.wait_success();
    let (result, _) = write
        .recv_timeout(GENEROUS)
        .expect("the write was still waiting after the holder let go");
    result.unwrap();

    assert_eq!(std::fs::read(dir.join("app.log")).unwrap(), LINE);
    assert_eq!(counts(log.stats()), (1, 0, 0));
    assert_eq!(*failures.lock().unwrap(), []);
}

/// The same through a non-blocking writer: its background thread waits for the lock
/// (it used to panic there, losing every queued event), then writes every event.
#[test]
fn with_lock_timeout_duration_max_a_non_blocking_writer_waits_and_writes_everything() {
    const EVENTS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(Duration::MAX));
    let mut holder = Running::foreign_holder(dir, DEADLINE);

    let (mut writer, guard) = log.non_blocking();
    let events: Vec<String> = (0..EVENTS)
        .map(|seq| format!("queued event {seq}\n"))
        .collect();
    for event in &events {
        writer.write_all(event.as_bytes()).unwrap();
    }
    // The background thread is waiting for the lock: nothing written, nothing dropped.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counts(log.stats()), (0, 0, 0));
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.wait_success();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    rx.recv_timeout(GENEROUS)
        .expect("dropping the WorkerGuard was still blocked after the holder let go");

    assert_eq!(
        std::fs::read_to_string(dir.join("app.log")).unwrap(),
        events.concat(),
        "every queued event, once the holder let go (a background thread that panicked \
         loses them)"
    );
    assert_eq!(counts(log.stats()), (EVENTS, 0, 0));
    assert_eq!(*failures.lock().unwrap(), []);
}

/// Kills a looping writer with SIGKILL while its append is under way (the file is partly
/// written), so that it dies holding the lock with its pid recorded. A kill that lands
/// between two appends (the timing is the kernel's) is tried again with a new writer, in
/// a fresh directory under `root`. Returns that directory and the dead writer's pid,
/// reaped.
fn kill_a_writer_inside_an_append(root: &Path) -> (PathBuf, libc::pid_t) {
    for attempt in 0..20 {
        let dir = root.join(format!("attempt{attempt}"));
        std::fs::create_dir(&dir).unwrap();
        let log_len = || std::fs::metadata(dir.join("app.log")).map_or(0, |m| m.len());
        let inside_an_append = || (1..BIG_EVENT as u64).contains(&log_len());
        let mut looper = Running::spawn(
            &dir,
            "looping writer",
            "looping_writer_entry",
            (LOOPER_ENV, dir.display().to_string()),
        );
        looper.wait_for_file(&dir.join("looping"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !inside_an_append() {
            assert!(Instant::now() < deadline, "the writer never appended");
            std::hint::spin_loop();
        }
        let pid = looper.pid();
        signal(pid, libc::SIGKILL);
        let status = looper.child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        // Dead, its append stopped where it was: the file is still partly written.
        if inside_an_append() {
            return (dir, pid);
        }
    }
    panic!("never killed the looping writer inside an append");
}

/// A `SharedFile` writer killed mid-append leaves its pid recorded as the holder's; the
/// kernel frees its flock, and a plain `flock` holder (not one of ours, recording no pid)
/// takes the lock. The report of a bounded write that times out must say the holder did
/// not record its pid, and name the dead writer only as having exited, never as holding
/// the lock.
#[test]
fn a_timeout_after_a_writer_was_killed_mid_append_does_not_name_the_dead_pid_as_holder() {
    const LINE: &[u8] = b"dropped: a foreign process holds the lock\n";
    let root = tempfile::tempdir().unwrap();
    let (dir, dead) = kill_a_writer_inside_an_append(root.path());
    let dir = dir.as_path();
    let _holder = Running::foreign_holder(dir, DEADLINE);

    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    let outcome = write_in_background(&log, LINE).recv_timeout(GENEROUS);
    let failure = assert_timed_out(outcome, &log, &failures, 0);
    let message = &failure.message;
    assert!(
        !message.contains(&format!("held by pid {dead}")),
        "the report names pid {dead}, which is dead, as the holder: {message:?}"
    );
    assert!(
        message.contains("did not record its pid"),
        "the report must say the holder did not record its pid: {message:?}"
    );
    assert!(
        message.contains("has exited"),
        "the report must say that pid {dead} has exited: {message:?}"
    );
}
