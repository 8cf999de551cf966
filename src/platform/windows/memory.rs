//! Memory: the lock file's page, mapped shared through a file mapping (the file must be
//! a page long first, as on Unix: a mapping of a shorter file would grow it), and the
//! private memory of the non-blocking queue's buffers, committed at once (Windows gives
//! a committed page physical memory only when it is first touched).

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use super::super::common::{AnonymousMemory, SharedPage};

use windows_sys::Win32::Foundation::CloseHandle;
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_ALL_ACCESS, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE,
    MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile, PAGE_READWRITE, UnmapViewOfFile, VirtualAlloc,
    VirtualFree,
};

impl SharedPage {
    /// Maps the first page of `file`, which must be open for reading and writing.
    pub(crate) fn map(file: &File) -> io::Result<Self> {
        // SAFETY: a mapping object of a file handle we hold open, checked below.
        let mapping = unsafe {
            CreateFileMappingW(
                file.as_raw_handle(),
                std::ptr::null(),
                PAGE_READWRITE,
                0,
                Self::LEN as u32,
                std::ptr::null(),
            )
        };
        if mapping.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a view of the whole mapping; checked for failure below.
        let view = unsafe { MapViewOfFile(mapping, FILE_MAP_ALL_ACCESS, 0, 0, Self::LEN) };
        let error = io::Error::last_os_error();
        // The view keeps the mapping object alive: its handle is no longer needed.
        // SAFETY: a handle we own, closed once.
        unsafe { CloseHandle(mapping) };
        let ptr = NonNull::new(view.Value.cast::<AtomicU64>()).ok_or(error)?;
        Ok(SharedPage { ptr })
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        let view = MEMORY_MAPPED_VIEW_ADDRESS {
            Value: self.ptr.as_ptr().cast(),
        };
        // SAFETY: unmaps exactly the view made in `map`; no reference outlives `self`.
        unsafe { UnmapViewOfFile(view) };
    }
}

impl AnonymousMemory {
    pub(crate) fn map(size: usize) -> io::Result<Self> {
        // SAFETY: a fresh private allocation, not aliasing anything.
        let base = unsafe {
            VirtualAlloc(
                std::ptr::null(),
                size,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE,
            )
        };
        let base = NonNull::new(base.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(AnonymousMemory { base, size })
    }
}

impl Drop for AnonymousMemory {
    fn drop(&mut self) {
        // SAFETY: our own allocation, with no borrow of it left.
        unsafe { VirtualFree(self.base.as_ptr().cast(), 0, MEM_RELEASE) };
    }
}
