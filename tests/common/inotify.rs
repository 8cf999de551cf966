//! A watch on a directory through inotify: every rename, creation and deletion in it
//! shows, even a name that existed for a moment or a rename undone at once.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// An inotify watch on a directory, so that even a rename that was undone at once, or
/// a name that existed for a moment, shows.
pub struct DirWatch(OwnedFd);

impl DirWatch {
    pub fn new(dir: &Path, mask: u32) -> Self {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls; the descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid descriptor and NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_dir.as_ptr(), mask) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        DirWatch(fd)
    }

    /// The events since the watch began (or the last call): their mask and name.
    pub fn events(&self) -> Vec<(u32, String)> {
        let mut buf = vec![0u8; 256 * 1024];
        // SAFETY: reads into a buffer we own, of its length.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let header = std::mem::size_of::<libc::inotify_event>();
        let (mut at, mut events) = (0, Vec::new());
        while n > 0 && at + header <= n as usize {
            // SAFETY: the kernel wrote whole events; read_unaligned copes with alignment.
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
            let name = &buf[at + header..at + header + event.len as usize];
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_string();
            events.push((event.mask, name));
            at += header + event.len as usize;
        }
        events
    }
}
