//! Children made with `fork(2)` inside a test process, for what only a fork shows: what a
//! child inherits (locks, descriptors, stats, threads that are not there).
//!
//! A forked child of a process with other threads may only make async-signal-safe calls
//! until it `_exit`s; it never returns into the test harness. It says what went wrong with
//! [`say`] and in its exit code, which the parent reads with [`wait_forked`].

use std::time::{Duration, Instant};

/// Any wait for a forked child longer than this is a hang.
pub const FORKED_DEADLINE: Duration = Duration::from_secs(60);

/// Forks a child that runs `body` and `_exit`s: 0 if it returned, 1 if it panicked.
/// Returns the child's pid.
pub fn fork_child(body: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the child only runs `body` and then `_exit`s, never returning into the
    // test harness; the library's fork handlers make its locks usable in the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_ok();
        // SAFETY: ends the child at once, without running the parent's destructors twice.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// Waits for `pid`, a child of this process, until `deadline`; then kills and reaps it and
/// returns `None` (it hung). Otherwise its wait status.
pub fn wait_forked_until(pid: libc::pid_t, deadline: Instant) -> Option<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(rc >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if rc == pid {
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

/// [`wait_forked_until`] [`FORKED_DEADLINE`] from now.
pub fn wait_forked(pid: libc::pid_t) -> Option<libc::c_int> {
    wait_forked_until(pid, Instant::now() + FORKED_DEADLINE)
}

/// Whether a wait status is a normal exit with code 0.
pub fn exited_ok(status: libc::c_int) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Writes `text` to stderr in one `write(2)`, as a forked child must (no buffer, no lock).
pub fn say(text: &str) {
    // SAFETY: writes from a live buffer of that length.
    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}
