//! A `fork()`, or a spawn with a `pre_exec` hook, never waits for a lock that another
//! process holds while another thread of the forking process waits for it; the waiting
//! thread's event is written once the holder lets go.

use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;

use super::holders::{DEADLINE, foreign_holder};
use crate::common;
use common::children::start_entry_env;

const FORK_ENV: &str = "TSF_LOCK_WAIT_FORK";

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

/// Runs `fork_while_waiting_entry` while a foreign process holds the lock for up to 4 s,
/// and checks that the fork (or spawn) took under a second.
fn run_fork_while_waiting(how: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let holder = foreign_holder(dir, Duration::from_secs(4));
    let spec = format!("{how}:{}", dir.display());
    let entry = common::entry!(fork_while_waiting_entry);
    let mut forker = start_entry_env(&entry, dir, "forker", FORK_ENV, spec).with_deadline(DEADLINE);
    forker.wait_for_file(&dir.join("fork_micros"));
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.finish().assert_exited_ok();
    forker.finish().assert_exited_ok();

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
