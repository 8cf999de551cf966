//! No child forked while another thread builds a `SharedFile` inherits a lock
//! description that the fork handlers did not replace (Linux: compared with `kcmp(2)`):
//! a build opens its lock descriptions and registers them under the handlers' registry
//! lock, which the fork waits for.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;

use super::support::run_scenario;
use crate::common;
use common::forked::{FORKED_DEADLINE, wait_forked};

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
    let deadline = Instant::now() + FORKED_DEADLINE;
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
        let status = wait_forked(pid).expect("a forked child hung");
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
    let finished = run_scenario(
        &common::entry!(build_while_forking_entry),
        BUILD_FORK_ENV,
        dir.path().to_str().unwrap(),
    );
    let builds: u64 = finished.line("BUILDS_DURING_FORKS").parse().unwrap();
    // The race was run: the builds went on while the children were forked.
    assert!(builds > 0, "no SharedFile was built during the forks");
}

#[cfg(not(target_os = "linux"))]
#[test]
fn no_child_forked_while_another_thread_builds_inherits_a_lock_description() {
    println!("skipped: the check compares open file descriptions with kcmp(2), Linux only");
}
