//! System calls interrupted by signals (`EINTR`); `errno`; and the test-only fault that
//! proves every such call is retried (by `retry_interrupted`, in `common`).

use std::io;

/// Sets the calling thread's `errno`, where the platform says how; elsewhere the end of a
/// directory stream and an error reading it look alike, and both end the listing.
pub(crate) fn set_errno(value: libc::c_int) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "dragonfly"))]
    // SAFETY: the calling thread's errno.
    unsafe {
        *libc::__errno_location() = value;
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: the calling thread's errno.
    unsafe {
        *libc::__error() = value;
    }
    #[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
    // SAFETY: the calling thread's errno.
    unsafe {
        *libc::__errno() = value;
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    )))]
    let _ = value;
}

/// Makes the system call `call`; in tests, while [`interruptions`] is armed, every other
/// one fails with EINTR instead, without being made. Every call that can return EINTR
/// goes through this inside [`retry_interrupted`].
pub(crate) fn interruptible<T>(call: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    #[cfg(test)]
    if interruptions::inject() {
        return Err(io::Error::from_raw_os_error(libc::EINTR));
    }
    call()
}

/// A test-only fault: while armed on a thread, every other system call made through
/// [`interruptible`] on it fails with EINTR without being made, as a signal would make
/// it: one that is not retried fails the test.
#[cfg(test)]
pub(crate) mod interruptions {
    use std::cell::Cell;

    thread_local! {
        static ARMED: Cell<bool> = const { Cell::new(false) };
        static CALLS: Cell<u64> = const { Cell::new(0) };
        static INJECTED: Cell<u64> = const { Cell::new(0) };
    }

    /// Arms (or disarms) the fault on this thread; returns how many were injected so far.
    pub(crate) fn arm(armed: bool) -> u64 {
        ARMED.set(armed);
        INJECTED.get()
    }

    /// Whether to fail this call: every other one while armed, so that each retry of a
    /// failed one goes through.
    pub(in crate::platform) fn inject() -> bool {
        if !ARMED.get() {
            return false;
        }
        let calls = CALLS.get() + 1;
        CALLS.set(calls);
        let inject = calls % 2 == 1;
        if inject {
            INJECTED.set(INJECTED.get() + 1);
        }
        inject
    }
}
