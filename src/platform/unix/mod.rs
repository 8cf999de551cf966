use std::fs::{File, Metadata};
use std::io;
pub(crate) use std::os::fd::RawFd;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

mod dir;
mod interrupted;
mod lock;
use super::common::{AnonymousMemory, FileId, LinksAndLen, SharedPage, retry_interrupted};
pub(crate) use dir::Dir;
#[cfg(test)]
pub(crate) use interrupted::interruptions;
pub(crate) use interrupted::{interruptible, set_errno};
pub(crate) use lock::HandleLock;
#[cfg(feature = "compress")]
pub(crate) use lock::try_lock;
pub(crate) use std::fs::symlink_metadata;

impl FileId {
    pub(crate) fn of(metadata: &Metadata) -> Self {
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// What the kernel says of the open `file` (`fstat`), retried on EINTR.
pub(crate) fn metadata(file: &File) -> io::Result<Metadata> {
    retry_interrupted(|| interruptible(|| file.metadata()))
}

/// The descriptor number of `file`.
pub(crate) fn raw_fd(file: &File) -> RawFd {
    file.as_raw_fd()
}

/// Gives up ownership of `file`'s descriptor, leaving it open.
pub(crate) fn into_raw_fd(file: File) -> RawFd {
    file.into_raw_fd()
}

/// Sets the permission bits of what `path` names.
pub(crate) fn set_mode(path: &std::path::Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    retry_interrupted(|| {
        interruptible(|| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
    })
}

/// The set-group-ID bit of what `path` names, as a mode (0 if unset).
pub(crate) fn set_group_id_of(path: &std::path::Path) -> io::Result<u32> {
    // S_ISGID, the same on every Unix (libc's type for it is not).
    const SET_GROUP_ID: u32 = 0o2000;
    Ok(std::fs::metadata(path)?.mode() & SET_GROUP_ID)
}

/// How many names a file has. More than one means another file shares its data: writing
/// to it would write to that file too.
pub(crate) fn hard_links(metadata: &Metadata) -> u64 {
    metadata.nlink()
}

/// Whether an open failed because the last component is a symbolic link (what
/// `O_NOFOLLOW` answers with).
pub(crate) fn is_symlink_refusal(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::ELOOP)
}

/// Clears the `O_NONBLOCK` that [`never_follow`] set, once the file is known to be a
/// regular file: some file systems (FUSE, NFS) would otherwise answer writes with EAGAIN.
pub(crate) fn make_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes sure the first `len` bytes of `file` exist and, where the file system can
/// promise it, have disk blocks behind them.
///
/// A mapped page over a hole would need a block at the first store, and on a full disk
/// the kernel answers that with SIGBUS instead of an error: allocate now, while an error
/// can still be returned. Never writes data: another process may have set the page up
/// since this one looked at the length.
pub(crate) fn allocate(file: &File, len: u64) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        let allocated = retry_interrupted(|| {
            // SAFETY: a valid descriptor; the range is ours.
            let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(rc))
            }
        });
        match allocated {
            // Copy-on-write file systems (ZFS on FreeBSD) and musl answer EINVAL or
            // EOPNOTSUPP: they cannot reserve blocks, so extending is all there is to do.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                extend(file, len)
            }
            other => other,
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // No posix_fallocate (macOS, the other BSDs); APFS is copy-on-write anyway.
        extend(file, len)
    }
}

/// Grows `file` to `len` bytes if it is shorter. Racing processes all end with the same
/// file, and a page another process already wrote is left alone.
fn extend(file: &File, len: u64) -> io::Result<()> {
    if metadata(file)?.len() < len {
        retry_interrupted(|| interruptible(|| file.set_len(len)))?;
    }
    Ok(())
}

/// The length of `file` as the kernel has it now, without the `struct stat` that
/// `fstat(2)` fills: this runs on every write.
pub(crate) fn end_of_file(file: &File) -> io::Result<u64> {
    // SAFETY: a valid descriptor; moving the offset of an append-only handle is harmless.
    let end = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
    if end < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(end as u64)
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    super::common::read_fully_at(buf, offset, |part, at| {
        retry_interrupted(|| file.read_at(part, at))
    })
}

/// Writes `bytes` at the end of `file`, which is open in append mode (`O_APPEND`).
pub(crate) fn append(file: &File, bytes: &[u8]) -> io::Result<usize> {
    io::Write::write(&mut &*file, bytes)
}

/// Writes `bytes` to stderr with `write(2)` directly. `std`'s stderr takes a lock that a
/// thread of the parent may have held at a fork, which would hang a child forever.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: a valid buffer for its length; fd 2 may be closed, which only fails.
        let written = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if written <= 0 {
            if written < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[written as usize..];
    }
}

/// A plain `fstat(2)`: cheaper than the `statx` behind `File::metadata`, and this runs on
/// every write.
pub(crate) fn links_and_len(file: &File) -> io::Result<LinksAndLen> {
    // SAFETY: `fstat` writes only into the zeroed struct we own.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    retry_interrupted(|| {
        interruptible(|| {
            // SAFETY: a valid descriptor and a valid pointer.
            if unsafe { libc::fstat(file.as_raw_fd(), &mut stat) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    })?;
    Ok(LinksAndLen {
        links: stat.st_nlink as u64,
        len: stat.st_size as u64,
    })
}

/// A monotonic clock cheap enough for every write, with a resolution of a few
/// milliseconds where the system has a coarse clock (Linux), as time since boot.
pub(crate) fn coarse_now() -> std::time::Duration {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    // SAFETY: `clock_gettime` writes only into the struct we own.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a valid pointer; it cannot fail with those.
    unsafe { libc::clock_gettime(CLOCK, &mut now) };
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// This process's id, without a system call (glibc no longer caches `getpid`); the fork
/// child handler refreshes it through [`refresh_pid`].
pub(crate) fn pid() -> u32 {
    match PID.load(Relaxed) {
        0 => refresh_pid(),
        pid => pid,
    }
}

/// Re-reads the process id; async-signal-safe, for the fork child handler.
pub(crate) fn refresh_pid() -> u32 {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() } as u32;
    PID.store(pid, Relaxed);
    pid
}

static PID: AtomicU32 = AtomicU32::new(0);

/// Registers process-wide fork handlers (`pthread_atfork`): `prepare` runs in the forking
/// thread before the fork, `parent` and `child` after it on each side.
pub(crate) fn register_fork_handlers(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) -> io::Result<()> {
    // SAFETY: the handlers are plain functions that live for the whole program.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Registers `hook` to run when the process exits normally (`exit`, or a return from
/// `main`); not on `_exit`, an abort or a signal.
#[cfg(feature = "compress")]
pub(crate) fn at_exit(hook: extern "C" fn()) -> io::Result<()> {
    // SAFETY: the hook is a plain function that lives for the whole program.
    if unsafe { libc::atexit(hook) } == 0 {
        Ok(())
    } else {
        Err(io::Error::other("atexit: no room for another exit handler"))
    }
}

/// The calling thread, as a number that no other live thread of the process has; needs no
/// thread-local storage, so it works in an exit handler too.
#[cfg(feature = "compress")]
pub(crate) fn thread_id() -> u64 {
    // SAFETY: pthread_self cannot fail.
    unsafe { libc::pthread_self() as usize as u64 }
}

/// Whether an error says the descriptor was not open for writing.
pub(crate) fn is_not_writable(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EBADF)
}

/// Whether a process with this pid exists (it may be a zombie, or a recycled pid).
pub(crate) fn is_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe {
        libc::kill(pid, 0) == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

/// Makes `target` refer to `source`'s open file description (closing what `target`
/// referred to), close-on-exec, then closes `source`. Async-signal-safe.
pub(crate) fn replace_descriptor(source: RawFd, target: RawFd) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    // SAFETY: both are descriptors of this process; dup3 closes `target` atomically.
    let ok = unsafe { libc::dup3(source, target, libc::O_CLOEXEC) } == target;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: as above; no other thread runs in a freshly forked child, so the
    // descriptor cannot leak through an exec between the two calls.
    let ok = unsafe {
        libc::dup2(source, target) == target
            && libc::fcntl(target, libc::F_SETFD, libc::FD_CLOEXEC) == 0
    };
    close(source);
    ok
}

/// Makes `target` refer to `source`'s open file description as well (closing what
/// `target` referred to), close-on-exec; `source` stays open. Async-signal-safe.
pub(crate) fn point_at(source: RawFd, target: RawFd) {
    // SAFETY: both are descriptors of this process; in a freshly forked child no other
    // thread runs, so the descriptor cannot leak through an exec between the two calls.
    unsafe {
        libc::dup2(source, target);
        libc::fcntl(target, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// Closes a raw descriptor. Async-signal-safe.
pub(crate) fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd`; an error (EINTR included) leaves it closed on Linux.
    unsafe { libc::close(fd) };
}

impl SharedPage {
    /// Maps the first page of `file`, which must be open for reading and writing.
    pub(crate) fn map(file: &File) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of a file we hold open; checked for failure below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(SharedPage { ptr })
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), Self::LEN);
        }
    }
}

impl AnonymousMemory {
    pub(crate) fn map(size: usize) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        #[cfg(not(target_os = "linux"))]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh private anonymous mapping, not aliasing anything.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap returned 0"))?;
        Ok(AnonymousMemory { base, size })
    }
}

impl Drop for AnonymousMemory {
    fn drop(&mut self) {
        // SAFETY: our own mapping, with no borrow of it left.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.size);
        }
    }
}

/// Asks the scheduler not to let the calling thread preempt a running thread when it
/// wakes (`SCHED_BATCH`, Linux); it still gets its fair share of the processor. Best
/// effort: nothing else to do where refused or unknown.
pub(crate) fn prefer_not_to_preempt() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system call on the calling thread (pid 0), with a valid param.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback where blocks cannot be reserved: it must never write over a page that
    /// another process set up after this one read the length.
    #[test]
    fn extending_keeps_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("page");
        std::fs::write(&path, b"tsf-lock").unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        extend(&file, 4096).unwrap();
        let content = std::fs::read(&path).unwrap();
        assert_eq!(content.len(), 4096);
        assert_eq!(&content[..8], b"tsf-lock");
        assert!(content[8..].iter().all(|&b| b == 0));

        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        extend(&file, 4096).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 4096]);
        allocate(&file, 4096).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 4096]);
    }
}
