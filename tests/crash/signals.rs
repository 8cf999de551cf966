//! Signals without `SA_RESTART` while a writer waits for the lock: every interrupted
//! system call must be retried, so no event is lost and none is counted or reported as
//! lost. Covers the synchronous writer and the non-blocking writer's background thread.
//!
//! Another process holds the lock while a `SIGALRM` storm (`setitimer`, every 20 ms)
//! hits the waiting writer. The writer runs in a forked, single-threaded grandchild of
//! the test: a process-directed signal goes to the main thread whenever it does not block
//! it, and in a libtest process the main thread is the harness, not the test.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::children::{RunningChild, start_entry};
use common::log_files::hold_lock_until_released;
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::SharedFile;

const HOLDER_ENV: &str = "TSF_SIGNALS_HOLDER";
const WRITER_ENV: &str = "TSF_SIGNALS_WRITER";
const EVENTS: u64 = 200;
const WRITER: WriterId = WriterId {
    process: 1,
    thread: 0,
};
/// How long the writer is kept waiting for the lock under the signal storm.
const STORM: Duration = Duration::from_secs(1);
/// Any wait longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Child processes.

/// Holds the lock from another process: creates `<dir>/held` once it has it, lets go
/// when `<dir>/release` appears (or after the deadline, so it can never outlive a test).
#[test]
fn lock_holder_entry() {
    let Some(dir) = std::env::var_os(HOLDER_ENV) else {
        return;
    };
    hold_lock_until_released(Path::new(&dir), Instant::now() + DEADLINE);
}

/// The writer: forks a single-threaded process that runs [`write_under_signal_storm`],
/// and fails if it fails.
#[test]
fn signal_writer_entry() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let (mode, dir) = spec.split_once(':').unwrap();
    // SAFETY: the child only runs the scenario and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain prctl; the grandchild must not outlive this process.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let ok = std::panic::catch_unwind(|| write_under_signal_storm(mode, Path::new(dir)));
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok.is_ok() { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + DEADLINE;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kill of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the signalled writer hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the signalled writer failed: status {status:#x}"
    );
}

static SIGNALS: AtomicU64 = AtomicU64::new(0);
static HOOK_CALLS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Relaxed);
}

/// Installs a `SIGALRM` handler WITHOUT `SA_RESTART`: a system call it interrupts fails
/// with `EINTR` instead of being restarted by the kernel.
fn install_sigalrm_handler() {
    // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// Starts (`Some`) or stops (`None`) a process-wide `SIGALRM` every `interval`.
fn set_alarm_timer(interval: Option<Duration>) {
    let micros = interval.map_or(0, |i| i.as_micros() as libc::suseconds_t);
    let tick = libc::timeval {
        tv_sec: 0,
        tv_usec: micros,
    };
    let timer = libc::itimerval {
        it_interval: tick,
        it_value: tick,
    };
    // SAFETY: valid pointers to a struct we own.
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "setitimer: {}", std::io::Error::last_os_error());
}

/// Blocks `SIGALRM` in the calling thread only.
fn block_sigalrm_in_this_thread() {
    // SAFETY: a sigset we own, filled by the libc calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

/// Grandchild side: writes `EVENTS` lines while signals rain on whichever thread waits
/// for the lock, then records what it saw in `<dir>/result` and `<dir>/signals`.
fn write_under_signal_storm(mode: &str, dir: &Path) {
    let log = SharedFile::builder(dir.join("app.log"))
        .on_error(|_| {
            HOOK_CALLS.fetch_add(1, Relaxed);
        })
        .build()
        .unwrap();
    install_sigalrm_handler();
    let lines: Vec<String> = (0..EVENTS).map(|seq| fmt_line(WRITER, seq)).collect();
    let mut failed_writes = 0;
    match mode {
        // This (only) thread takes the signals while it waits in the lock.
        "sync" => {
            std::fs::write(dir.join("writing"), b"").unwrap();
            set_alarm_timer(Some(Duration::from_millis(20)));
            for line in &lines {
                if (&log).write(line.as_bytes()).is_err() {
                    failed_writes += 1;
                }
            }
            set_alarm_timer(None);
        }
        "non-blocking" => {
            let (mut writer, guard) = log.non_blocking();
            // The background thread exists now, with SIGALRM unblocked (a thread inherits
            // its creator's mask); blocked here, every signal lands on that thread.
            block_sigalrm_in_this_thread();
            std::fs::write(dir.join("writing"), b"").unwrap();
            set_alarm_timer(Some(Duration::from_millis(20)));
            for line in &lines {
                if writer.write(line.as_bytes()).is_err() {
                    failed_writes += 1;
                }
            }
            drop(guard);
            set_alarm_timer(None);
        }
        other => panic!("unknown mode {other}"),
    }
    let stats = log.stats();
    let result = format!(
        "events_written={} bytes_written={} events_dropped={} write_errors={} hook_calls={} failed_writes={failed_writes}",
        stats.events_written,
        stats.bytes_written,
        stats.events_dropped,
        stats.write_errors,
        HOOK_CALLS.load(Relaxed),
    );
    std::fs::write(dir.join("result"), result).unwrap();
    std::fs::write(dir.join("signals"), SIGNALS.load(Relaxed).to_string()).unwrap();
}

// ---------------------------------------------------------------------------------------
// Test side.

/// Starts `entry` with `env` set, its output in files in `dir`.
fn start(dir: &Path, name: &str, entry: &str, env: (&str, String)) -> RunningChild {
    start_entry(entry, dir, name, |command| {
        command.env(env.0, env.1);
    })
    .with_deadline(DEADLINE)
}

fn run_signal_storm(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut holder = start(
        dir,
        "holder",
        &common::entry!(lock_holder_entry),
        (HOLDER_ENV, dir.display().to_string()),
    );
    holder.wait_for_file(&dir.join("held"));
    let mut writer = start(
        dir,
        "writer",
        &common::entry!(signal_writer_entry),
        (WRITER_ENV, format!("{mode}:{}", dir.display())),
    );
    writer.wait_for_file(&dir.join("writing"));
    // The writer waits for the lock, its wait interrupted every 20 ms.
    std::thread::sleep(STORM);
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.finish().assert_exited_ok();
    let writer = writer.finish();
    writer.assert_exited_ok();

    let signals: u64 = std::fs::read_to_string(dir.join("signals"))
        .unwrap()
        .parse()
        .unwrap();
    let lines: Vec<String> = (0..EVENTS).map(|seq| fmt_line(WRITER, seq)).collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    assert_eq!(
        std::fs::read_to_string(dir.join("result")).unwrap(),
        format!(
            "events_written={EVENTS} bytes_written={bytes} events_dropped=0 write_errors=0 hook_calls=0 failed_writes=0"
        ),
        "{mode} writer under {signals} SIGALRMs without SA_RESTART: an interrupted wait for \
         the lock must be retried, not reported (writer stderr:\n{})",
        writer.stderr
    );
    // Checked after the outcome: a writer that gives up at the first signal sees only one.
    assert!(
        signals >= 10,
        "the storm never happened: only {signals} signals reached the waiting writer"
    );
    let content = std::fs::read_to_string(dir.join("app.log")).unwrap();
    assert!(
        content == lines.concat(),
        "the file must hold the {EVENTS} lines exactly once, in order; it holds {} lines:\n{content}",
        content.lines().count()
    );
}

#[test]
fn a_signal_storm_while_waiting_for_the_lock_loses_no_event_sync() {
    run_signal_storm("sync");
}

#[test]
fn a_signal_storm_while_waiting_for_the_lock_loses_no_event_non_blocking() {
    run_signal_storm("non-blocking");
}
