//! A `write(2)` or an `open` of the log interrupted by a signal (`EINTR`, as a handler
//! installed without `SA_RESTART` causes) is retried, in both modes: no event is lost,
//! counted as an error or reported.
//!
//! On a local file system the kernel does not interrupt those calls, so a signal storm
//! cannot show it (`crash::signals` does that for the wait for the lock). Here a child
//! process runs with a small `LD_PRELOAD` library, compiled with the C compiler that
//! links Rust programs, whose `write` and `openat` fail every other call on the log with
//! `EINTR`, exactly as an interrupted call does. Where no C compiler runs, the test
//! prints `skipped:` and passes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::common::children::start_entry;
use crate::common::workload::{WriterId, fmt_line};
use tracing_shared_file::SharedFile;

const CHILD_ENV: &str = "TSF_INTERRUPTED_CALLS_DIR";
const TARGET_ENV: &str = "TSF_EINTR_TARGET";
const LINES: u64 = 20;
const SYNC: WriterId = WriterId {
    process: 1,
    thread: 0,
};
const QUEUED: WriterId = WriterId {
    process: 2,
    thread: 0,
};

/// Every other `write` to a descriptor of the file named `$TSF_EINTR_TARGET`, and every
/// other `openat` of that name, fails with `EINTR`; the counts are exported.
const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static unsigned long injected_writes, injected_opens;
static int write_toggle, open_toggle;

unsigned long tsf_injected_writes(void) { return __atomic_load_n(&injected_writes, __ATOMIC_SEQ_CST); }
unsigned long tsf_injected_opens(void) { return __atomic_load_n(&injected_opens, __ATOMIC_SEQ_CST); }

static int names_target(const char *path) {
    const char *target = getenv("TSF_EINTR_TARGET");
    if (!target || !path) return 0;
    const char *base = strrchr(path, '/');
    return strcmp(base ? base + 1 : path, target) == 0;
}

static int fd_is_target(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return names_target(path);
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (fd > 2 && fd_is_target(fd) && __atomic_xor_fetch(&write_toggle, 1, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&injected_writes, 1, __ATOMIC_SEQ_CST);
        errno = EINTR;
        return -1;
    }
    return real(fd, buf, count);
}

static int open_shim(const char *symbol, int dirfd, const char *path, int flags, mode_t mode) {
    int (*real)(int, const char *, int, ...) = dlsym(RTLD_NEXT, symbol);
    if (names_target(path) && __atomic_xor_fetch(&open_toggle, 1, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&injected_opens, 1, __ATOMIC_SEQ_CST);
        errno = EINTR;
        return -1;
    }
    return real(dirfd, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return open_shim("openat", dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return open_shim("openat64", dirfd, path, flags, mode);
}
"#;

/// Compiles the shim into `dir`; `None`, after printing why, where that fails.
fn compile_shim(dir: &Path) -> Option<PathBuf> {
    let source = dir.join("eintr.c");
    let library = dir.join("eintr.so");
    fs::write(&source, SHIM).unwrap();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status();
    match status {
        Ok(status) if status.success() => Some(library),
        other => {
            println!("skipped: {compiler} could not build the EINTR shim ({other:?})");
            None
        }
    }
}

/// A counter the shim exports, looked up in this process.
fn shim_counter(name: &str) -> u64 {
    let symbol = std::ffi::CString::new(name).unwrap();
    // SAFETY: looks up a function of the preloaded shim, `unsigned long (void)`.
    unsafe {
        let f = libc::dlsym(libc::RTLD_DEFAULT, symbol.as_ptr());
        assert!(!f.is_null(), "the EINTR shim is not loaded");
        let f: extern "C" fn() -> libc::c_ulong = std::mem::transmute(f);
        f() as u64
    }
}

/// Child side, under the shim: writes in both modes, the log moved away now and then so
/// that it is opened again.
#[test]
fn interrupted_writer_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .path_check_interval(Duration::ZERO)
        .build()
        .unwrap();
    for seq in 0..LINES {
        if seq % 5 == 4 {
            fs::rename(dir.join("app.log"), dir.join(format!("moved.{seq}"))).unwrap();
        }
        (&log).write_all(fmt_line(SYNC, seq).as_bytes()).unwrap();
    }
    let (mut writer, guard) = log.non_blocking();
    for seq in 0..LINES {
        writer.write_all(fmt_line(QUEUED, seq).as_bytes()).unwrap();
        if seq % 5 == 4 {
            guard.flush();
            fs::rename(dir.join("app.log"), dir.join(format!("moved.q{seq}"))).unwrap();
        }
    }
    drop(guard);
    let stats = log.stats();
    println!(
        "events_written={} write_errors={} events_dropped={} injected_writes={} injected_opens={}",
        stats.events_written,
        stats.write_errors,
        stats.events_dropped,
        shim_counter("tsf_injected_writes"),
        shim_counter("tsf_injected_opens"),
    );
}

/// The record lines of every file in `dir` but the lock file, in no particular order.
fn all_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            name == "app.log" || name.starts_with("moved.")
        })
        .flat_map(|path| {
            let content = fs::read_to_string(path).unwrap();
            content
                .lines()
                .map(|line| format!("{line}\n"))
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn interrupted_writes_and_opens_are_retried_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(shim) = compile_shim(dir.path()) else {
        return;
    };
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let entry = common::entry!(interrupted_writer_entry);
    let finished = start_entry(&entry, dir.path(), "interrupted", |command| {
        command
            .env(CHILD_ENV, &logs)
            .env(TARGET_ENV, "app.log")
            .env("LD_PRELOAD", &shim);
    })
    .finish();
    finished.assert_success();
    assert!(finished.reports().is_empty(), "{}", finished.stderr);
    let counts = finished
        .stdout
        .split_once("events_written=")
        .map(|(_, rest)| rest.lines().next().unwrap().to_string())
        .expect(&finished.stdout);
    let numbers: Vec<u64> = counts
        .split(' ')
        .map(|field| field.rsplit('=').next().unwrap().parse().unwrap())
        .collect();
    let [
        written,
        write_errors,
        dropped,
        injected_writes,
        injected_opens,
    ] = numbers[..]
    else {
        panic!("{counts}");
    };
    assert_eq!(
        (written, write_errors, dropped),
        (2 * LINES, 0, 0),
        "after {injected_writes} interrupted writes and {injected_opens} interrupted opens"
    );
    // Every sync event's write was interrupted once, and each batch's; the log was
    // opened at build() and after each of the seven moves that a write followed.
    assert!(injected_writes > LINES, "{injected_writes}");
    assert_eq!(injected_opens, 8);
    let mut expected: Vec<String> = (0..LINES)
        .flat_map(|seq| [fmt_line(SYNC, seq), fmt_line(QUEUED, seq)])
        .collect();
    expected.sort();
    assert_eq!(all_lines(&logs), expected);
}
