use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// What makes a file the same file: its device and inode, not its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileId {
    pub(crate) fn of(metadata: &Metadata) -> Self {
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// Makes opening a FIFO fail at once instead of blocking until a reader appears (a
/// regular file ignores the flag).
pub(crate) fn never_block_on_open(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NONBLOCK)
}

/// Makes sure the first `len` bytes of `file` exist and have disk blocks behind them.
///
/// A mapped page over a hole would need a block at the first store, and on a full disk
/// the kernel answers that with SIGBUS instead of an error: allocate now, while an error
/// can still be returned. (glibc falls back to writing zeros where the file system cannot
/// allocate.)
pub(crate) fn allocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: a valid descriptor; the range is ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
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

/// How many names an open file has (0 once it was deleted or renamed over) and its length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinksAndLen {
    pub(crate) links: u64,
    pub(crate) len: u64,
}

/// A plain `fstat(2)`: cheaper than the `statx` behind `File::metadata`, and this runs on
/// every write.
pub(crate) fn links_and_len(file: &File) -> io::Result<LinksAndLen> {
    // SAFETY: `fstat` writes only into the zeroed struct we own.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a valid pointer.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
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

/// A page of a file mapped shared into memory, so that every process that maps the same
/// file sees the same words without a syscall per access.
///
/// Accessing a mapping past the end of its file raises SIGBUS, so the owner must make sure
/// the file is at least [`SharedPage::LEN`] long before it reads or writes the page.
#[derive(Debug)]
pub(crate) struct SharedPage {
    ptr: NonNull<AtomicU64>,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for SharedPage {}
// SAFETY: as above.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    pub(crate) const LEN: usize = 4096;
    /// How many 64-bit words the page holds.
    pub(crate) const WORDS: usize = Self::LEN / 8;

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

    /// The `index`-th 64-bit word of the page.
    pub(crate) fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < Self::WORDS, "word index out of the page");
        // SAFETY: in bounds (checked above), page-aligned, and mapped while `self` lives.
        unsafe { &*self.ptr.as_ptr().add(index) }
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
