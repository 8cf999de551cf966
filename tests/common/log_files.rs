//! The files of a rotated log: archive names, waiting for a rotation, and record lines
//! read back from them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::children::CHILD_DEADLINE;
use super::workload::{WriterId, record};

/// Small enough that the writers rotate often.
pub const ROTATING_MAX_BYTES: u64 = 16 * 1024;
/// Large enough that no archive is deleted, so every line can be accounted for.
pub const KEEP_ALL: usize = 100_000;

/// Waits until `path` exists (a rotation happened), so that damage lands mid-run.
pub fn wait_for_path(path: &Path) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    while fs::symlink_metadata(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn archive(log: &Path, index: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// The writer and sequence of an intact record line (the fmt layer's prefix, then exactly
/// the record `workload::record` makes for them), or `None` for anything else.
pub fn parse_record(line: &str) -> Option<(WriterId, u64)> {
    let start = line.find("REC ")?;
    let (prefix, rest) = line.split_at(start);
    // The ready-made layers add `pid=N ` after the level.
    let level = match prefix.find(" pid=") {
        Some(at) => &prefix[..at],
        None => prefix.strip_suffix(" workload: ")?,
    };
    if !(level.ends_with("  INFO") && prefix.ends_with(" workload: ") && prefix.contains('T')) {
        return None;
    }
    let mut fields = rest.split(' ').skip(1);
    let mut field = |name: &str| fields.next()?.strip_prefix(name);
    let process = field("p=")?.parse().ok()?;
    let thread = field("t=")?.parse().ok()?;
    let seq = field("s=")?.parse().ok()?;
    let writer = WriterId { process, thread };
    (rest == record(writer, seq)).then_some((writer, seq))
}

/// A lock on `log`'s lock file held through an open file (description) of the test's
/// own, as another process would hold it: a writer waits for it until it is dropped or
/// unlocked. Taken as the crate takes it: `flock` on Unix; on Windows `LockFileEx` on the
/// byte the crate locks (2^62, see src/platform/windows/lock.rs), since std's
/// `File::unlock` fails under Wine 8.
pub struct HeldLock(fs::File);

#[cfg(windows)]
fn at_locked_byte() -> windows_sys::Win32::System::IO::OVERLAPPED {
    // SAFETY: plain data; all zeroes is its initial state.
    let mut overlapped: windows_sys::Win32::System::IO::OVERLAPPED = unsafe { std::mem::zeroed() };
    overlapped.Anonymous.Anonymous.OffsetHigh = 1 << 30;
    overlapped
}

impl HeldLock {
    fn take(file: fs::File, wait: bool) -> Option<Self> {
        #[cfg(unix)]
        let taken = if wait {
            file.lock().is_ok()
        } else {
            file.try_lock().is_ok()
        };
        #[cfg(windows)]
        let taken = {
            use std::os::windows::io::AsRawHandle;
            use windows_sys::Win32::Storage::FileSystem::{
                LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, LockFileEx,
            };
            let flags = match wait {
                true => LOCKFILE_EXCLUSIVE_LOCK,
                false => LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            };
            let mut overlapped = at_locked_byte();
            // SAFETY: a handle we own, for synchronous I/O.
            unsafe { LockFileEx(file.as_raw_handle(), flags, 0, 1, 0, &mut overlapped) != 0 }
        };
        taken.then_some(HeldLock(file))
    }

    /// Lets go of the lock.
    pub fn unlock(&self) -> std::io::Result<()> {
        #[cfg(unix)]
        return self.0.unlock();
        #[cfg(windows)]
        {
            use std::os::windows::io::AsRawHandle;
            let mut overlapped = at_locked_byte();
            // SAFETY: as in `take`.
            let unlocked = unsafe {
                windows_sys::Win32::Storage::FileSystem::UnlockFileEx(
                    self.0.as_raw_handle(),
                    0,
                    1,
                    0,
                    &mut overlapped,
                )
            };
            match unlocked {
                0 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        }
    }
}

/// Takes the lock of `log`'s lock file (`<log>.lock`, created if missing), waiting for it.
pub fn hold_lock(log: &Path) -> HeldLock {
    let lock_path = lock_file_of(log);
    let lock = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    HeldLock::take(lock, true).expect("take the lock")
}

/// The lock of `log`'s lock file if nobody holds it now, without waiting.
pub fn try_hold_lock(log: &Path) -> Option<HeldLock> {
    let lock_path = lock_file_of(log);
    let lock = fs::File::options()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    HeldLock::take(lock, false)
}

/// Whether another process could take `log`'s lock right now: a description of the
/// test's own tries the lock without waiting, and closing it lets go at once.
pub fn lock_is_free(log: &Path) -> bool {
    try_hold_lock(log).is_some()
}

fn lock_file_of(log: &Path) -> PathBuf {
    let mut lock_path = log.as_os_str().to_owned();
    lock_path.push(".lock");
    PathBuf::from(lock_path)
}

/// What a lock-holder child does: holds the lock of `<dir>/app.log`, creates
/// `<dir>/held` once it has it, and lets go when `<dir>/release` appears or at `until`
/// (so that it never outlives its test).
pub fn hold_lock_until_released(dir: &Path, until: Instant) {
    let _lock = hold_lock(&dir.join("app.log"));
    fs::write(dir.join("held"), b"").unwrap();
    while !dir.join("release").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}
