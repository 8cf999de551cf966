//! Windows: the same interface as `unix/`, over Win32 (through `windows-sys`) where std
//! does not reach. There is no fork, so nothing here hands descriptors to a child; there
//! are no permission bits, so `file_mode` is refused by `build()` before anything here
//! would need them.

use std::fs::File;
use std::io;
use std::os::windows::fs::FileExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_CANT_RESOLVE_FILENAME, STILL_ACTIVE,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, FILE_STANDARD_INFO, FileStandardInfo, GetFileInformationByHandle,
    GetFileInformationByHandleEx, GetFileSizeEx, WriteFile,
};
use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE};
use windows_sys::Win32::System::IO::OVERLAPPED;
use windows_sys::Win32::System::SystemInformation::GetTickCount64;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::common::{FileId, LinksAndLen};

mod dir;
mod lock;
mod memory;
pub(crate) use dir::Dir;
pub(crate) use lock::HandleLock;
#[cfg(feature = "compress")]
pub(crate) use lock::try_lock;

impl FileId {
    pub(crate) fn of(metadata: &Metadata) -> Self {
        metadata.id
    }
}

/// std's metadata of an open file, with what std keeps unstable on Windows: its identity
/// and its number of names.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    std: std::fs::Metadata,
    id: FileId,
    links: u64,
}

impl std::ops::Deref for Metadata {
    type Target = std::fs::Metadata;

    fn deref(&self) -> &std::fs::Metadata {
        &self.std
    }
}

/// What Windows says of the open file `file`'s handle.
fn by_handle(file: &File) -> io::Result<BY_HANDLE_FILE_INFORMATION> {
    // SAFETY: plain data, filled by the call below.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a handle we hold open and a valid pointer.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

fn id_of(info: &BY_HANDLE_FILE_INFORMATION) -> FileId {
    FileId {
        dev: u64::from(info.dwVolumeSerialNumber),
        ino: u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
    }
}

/// What Windows says of the open file `file`.
pub(crate) fn metadata(file: &File) -> io::Result<Metadata> {
    let info = by_handle(file)?;
    Ok(Metadata {
        std: file.metadata()?,
        id: id_of(&info),
        links: u64::from(info.nNumberOfLinks),
    })
}

/// What sits at `path`, not following a symbolic link (or any reparse point) there.
pub(crate) fn symlink_metadata(path: &Path) -> io::Result<Metadata> {
    metadata(&dir::open_attributes(path)?)
}

/// Permission bits: none on Windows; `build()` refuses `file_mode` there.
pub(crate) fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "file modes are Unix-only",
    ))
}

/// No set-group-ID bit on Windows.
pub(crate) fn set_group_id_of(_path: &Path) -> io::Result<u32> {
    Ok(0)
}

/// How many names a file has (NTFS has hard links too).
pub(crate) fn hard_links(metadata: &Metadata) -> u64 {
    metadata.links
}

/// Whether an open was refused because the name is a symbolic link or another reparse
/// point (see `dir::open_file`, which refuses them with this error).
pub(crate) fn is_symlink_refusal(error: &io::Error) -> bool {
    error.raw_os_error() == Some(ERROR_CANT_RESOLVE_FILENAME as i32)
}

/// Nothing to do: Windows never opens a file non-blocking.
pub(crate) fn make_blocking(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Makes sure the first `len` bytes of `file` exist (Windows allocates them as it
/// extends the file). Never writes data: another process may have set the page up since
/// this one looked at the length.
pub(crate) fn allocate(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// The length of `file` as the system has it now.
pub(crate) fn end_of_file(file: &File) -> io::Result<u64> {
    let mut len = 0i64;
    // SAFETY: a handle we hold open and a valid pointer.
    if unsafe { GetFileSizeEx(file.as_raw_handle(), &mut len) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len as u64)
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    super::common::read_fully_at(buf, offset, |part, at| file.seek_read(part, at))
}

/// Writes `bytes` at the end of `file`, wherever its file pointer is. A log handle has
/// write access, not append-only access (that would leave a killed writer's partial line
/// uncuttable), so each write says "at the end" itself.
pub(crate) fn append(file: &File, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: OVERLAPPED is plain data; offset all ones is FILE_WRITE_TO_END_OF_FILE.
    let mut at_end: OVERLAPPED = unsafe { std::mem::zeroed() };
    at_end.Anonymous.Anonymous.Offset = u32::MAX;
    at_end.Anonymous.Anonymous.OffsetHigh = u32::MAX;
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let mut written = 0u32;
    // SAFETY: a handle we hold open for synchronous writes, a buffer valid for `len`.
    let ok = unsafe {
        WriteFile(
            file.as_raw_handle(),
            bytes.as_ptr(),
            len,
            &mut written,
            &mut at_end,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(written as usize)
}

/// Writes `bytes` to the standard error handle directly, without std's lock on stderr.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    // SAFETY: returns a handle or null/invalid, which WriteFile then only fails on.
    let handle = unsafe { GetStdHandle(STD_ERROR_HANDLE) };
    while !bytes.is_empty() {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let mut written = 0u32;
        // SAFETY: a buffer valid for `len` bytes; a bad handle only fails.
        let ok = unsafe {
            WriteFile(
                handle,
                bytes.as_ptr(),
                len,
                &mut written,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || written == 0 {
            return;
        }
        bytes = &bytes[written as usize..];
    }
}

/// One query for both; a file deleted while open is "delete pending" until its last
/// handle closes, which counts as no name.
pub(crate) fn links_and_len(file: &File) -> io::Result<LinksAndLen> {
    // SAFETY: plain data, filled by the call below.
    let mut info: FILE_STANDARD_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a handle we hold open and a buffer of the size given.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            file.as_raw_handle(),
            FileStandardInfo,
            (&raw mut info).cast(),
            size_of::<FILE_STANDARD_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(LinksAndLen {
        links: if info.DeletePending {
            0
        } else {
            u64::from(info.NumberOfLinks)
        },
        len: info.EndOfFile as u64,
    })
}

/// A monotonic clock cheap enough for every write: milliseconds since boot.
pub(crate) fn coarse_now() -> std::time::Duration {
    // SAFETY: cannot fail.
    std::time::Duration::from_millis(unsafe { GetTickCount64() })
}

/// This process's id (read from the thread's environment block: no system call).
pub(crate) fn pid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { GetCurrentProcessId() }
}

#[cfg(feature = "compress")]
unsafe extern "C" {
    /// The C runtime's `atexit`: its handlers run when `main` returns or `exit` is called.
    fn atexit(hook: extern "C" fn()) -> std::ffi::c_int;
}

/// Registers `hook` to run when the process exits normally (a return from `main`, or
/// the C runtime's `exit`); not on `TerminateProcess`.
#[cfg(feature = "compress")]
pub(crate) fn at_exit(hook: extern "C" fn()) -> io::Result<()> {
    // SAFETY: the hook is a plain function that lives for the whole program.
    if unsafe { atexit(hook) } == 0 {
        Ok(())
    } else {
        Err(io::Error::other("atexit: no room for another exit handler"))
    }
}

/// The calling thread, as a number that no other live thread of the process has.
#[cfg(feature = "compress")]
pub(crate) fn thread_id() -> u64 {
    // SAFETY: cannot fail.
    u64::from(unsafe { windows_sys::Win32::System::Threading::GetCurrentThreadId() })
}

/// Whether an error says the handle was not open for writing.
pub(crate) fn is_not_writable(error: &io::Error) -> bool {
    error.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32)
}

/// Whether a process with this id is running (ids are recycled, as on Unix).
pub(crate) fn is_alive(pid: u64) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    // SAFETY: asks for a handle with the least right; checked below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        // One we may not look at exists all the same.
        return io::Error::last_os_error().raw_os_error() == Some(ERROR_ACCESS_DENIED as i32);
    }
    let mut code = 0u32;
    // SAFETY: a process handle we own, and a valid pointer.
    let known = unsafe { GetExitCodeProcess(process, &mut code) } != 0;
    // SAFETY: closed once.
    unsafe { CloseHandle(process) };
    // A process that exited with the code STILL_ACTIVE (259) passes for alive: its
    // temporary files wait for the next look.
    !known || code == STILL_ACTIVE as u32
}

/// Nothing to ask of the Windows scheduler.
pub(crate) fn prefer_not_to_preempt() {}
