//! Compression of timestamped archives, on one background thread per process, never
//! under the lock.
//!
//! - [`worker`]: the thread, shared by every log of the process; the wait at exit.
//! - [`claim`]: one compressor per archive across processes.
//!
//! An archive is compressed into its claim, `.<archive>.gz.tmp`, synced, renamed to its
//! `.gz` name, and only then removed; so whatever moment a process is killed at, the
//! archive, its complete `.gz`, or both are there, and never a truncated `.gz` under its
//! final name. The next pass (after the next rotation, in any process) finishes what a
//! killed one left: it removes an archive whose `.gz` is there, abandoned claims, and the
//! temporaries of processes that are gone.
//!
//! A pass compresses every plain archive but the newest (logrotate's `delaycompress`);
//! one that a live process has claimed is left to it. The newest archive waits for the
//! next rotation, since a follower may still be reading it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::LogName;
use super::timestamped;
use crate::platform::{self, Access, Dir};

mod claim;
mod worker;

pub(crate) use worker::{request, wait_for};

/// What the compressor needs of the log it works for, and nothing more: it sits below
/// the write path, which implements this.
pub(crate) trait Host: Send + Sync {
    /// Runs `step` under the log's locks, as a write would, so that it never interleaves
    /// with a rotation's retention or another process's claim: the step's result, or why
    /// the locks could not be had.
    fn under_locks(&self, step: &mut dyn FnMut() -> io::Result<bool>) -> io::Result<bool>;

    /// Reports a failed compression as the log reports its other failures.
    fn report(&self, error: &io::Error);

    /// Counts an archive this process compressed.
    fn compressed(&self);
}

/// What to compress: the log's directory and name, and the mode for new files.
pub(crate) struct Job {
    /// Where failures are reported, and whose locks the claims and the last step take;
    /// kept alive until the pass has run.
    pub(crate) host: Arc<dyn Host>,
    pub(crate) dir: Arc<Dir>,
    pub(crate) name: OsString,
    pub(crate) path: std::path::PathBuf,
    pub(crate) file_mode: Option<u32>,
    /// How long this process's exit may wait for the pass.
    pub(crate) exit_timeout: Duration,
}

impl Job {
    /// Which log the job is for: the log's address, the same for every job of one log.
    fn key(&self) -> usize {
        key_of(Arc::as_ptr(&self.host))
    }
}

/// The key of the log at `host`, as [`wait_for`] takes it.
pub(crate) fn key_of<T: ?Sized>(host: *const T) -> usize {
    host.cast::<()>() as usize
}

/// Runs a step under the locks; `Ok(false)` when it could not run at all.
type UnderLocks<'a> = dyn Fn(&mut dyn FnMut() -> io::Result<bool>) -> io::Result<bool> + 'a;

/// The error a pass stops with when the process exits before it is done.
fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the process is exiting")
}

/// One pass for `job`'s log: cleans what killed compressors left, then compresses every
/// plain archive but the newest. An archive that fails does not hold up the others; the
/// first failure is returned once all were tried. Stops early once `stopping` is set.
fn pass(job: &Job, stopping: &AtomicBool) -> io::Result<()> {
    let log = LogName {
        dir: &job.dir,
        name: &job.name,
        path: &job.path,
    };
    let under_locks = |step: &mut dyn FnMut() -> io::Result<bool>| job.host.under_locks(step);
    let mut first_error = clean(log.dir, log.name, &under_locks).err();
    let archives = timestamped::list(log)?;
    let newest = archives
        .last()
        .map(|archive| (archive.time, archive.counter));
    for archive in &archives {
        if stopping.load(Ordering::Acquire) {
            return Err(stopped());
        }
        if archive.compressed || Some((archive.time, archive.counter)) == newest {
            continue;
        }
        let mut gz = archive.name.clone();
        gz.push(".gz");
        let done = if archives.iter().any(|other| other.name == gz) {
            finish(log.dir, &archive.name, &gz)
        } else {
            let target = Target {
                dir: log.dir,
                archive: &archive.name,
                gz: &gz,
                file_mode: job.file_mode,
            };
            compress(&target, &under_locks, stopping).map(|compressed| {
                if compressed {
                    job.host.compressed()
                }
            })
        };
        if let Err(error) = done {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes the hidden files of the log `log_name` that their writers left: claims no
/// live process holds (each under the locks), and the pid-named temporaries of processes
/// that are gone (those of earlier versions, and of files being created with their mode).
fn clean(dir: &Dir, log_name: &OsStr, under_locks: &UnderLocks<'_>) -> io::Result<()> {
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(log_name.as_encoded_bytes());
    prefix.push(b'.');
    let mut first_error = None;
    for (name, _) in dir.list(&prefix)? {
        let removed = if claim::is_claim(&name) {
            under_locks(&mut || claim::remove_if_abandoned(dir, &name).map(|_| true)).map(drop)
        } else if crate::log_dir::writer_of_temporary(&name)
            .is_some_and(|pid| !platform::is_alive(pid))
        {
            dir.remove_if_there(&name)
        } else {
            Ok(())
        };
        if let Err(error) = removed {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// An archive whose `.gz` is there: a compressor was killed after placing its copy and
/// before removing the archive. The archive goes only if the `.gz` is a regular file
/// holding exactly the archive's content; anything else there (a link, an empty or
/// truncated file, another file) is not ours, and both are left as they are.
fn finish(dir: &Dir, archive: &OsStr, gz: &OsStr) -> io::Result<()> {
    let open = |name: &OsStr| match dir.open_file(name, Access::existing(false), 0) {
        Ok(file) if platform::metadata(&file)?.is_file() => Ok(Some(file)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound || platform::is_symlink_refusal(&e) => {
            Ok(None)
        }
        Err(e) => Err(e),
    };
    let (Some(plain), Some(compressed)) = (open(archive)?, open(gz)?) else {
        return Ok(());
    };
    if same_content(plain, flate2::read::GzDecoder::new(compressed)) {
        dir.remove_if_there(archive)?;
    }
    Ok(())
}

/// Whether `decoded` yields exactly the bytes of `plain`: a `.gz` that is truncated,
/// corrupt or of something else does not, and reading stops at the first difference.
fn same_content(mut plain: File, mut decoded: impl Read) -> bool {
    let mut expected = vec![0; 64 * 1024];
    let mut found = vec![0; 64 * 1024];
    loop {
        let Ok(read) = platform::retry_interrupted(|| plain.read(&mut expected)) else {
            return false;
        };
        if read == 0 {
            // The `.gz` must end here too.
            return matches!(decoded.read(&mut found[..1]), Ok(0));
        }
        if decoded.read_exact(&mut found[..read]).is_err() || found[..read] != expected[..read] {
            return false;
        }
    }
}

/// One archive to compress, and where.
struct Target<'a> {
    dir: &'a Dir,
    archive: &'a OsStr,
    gz: &'a OsStr,
    file_mode: Option<u32>,
}

/// Compresses one archive, unless another process has claimed it or it is gone; whether
/// this process placed its `.gz`.
fn compress(
    target: &Target<'_>,
    under_locks: &UnderLocks<'_>,
    stopping: &AtomicBool,
) -> io::Result<bool> {
    let Target {
        dir,
        archive,
        gz,
        file_mode,
    } = *target;
    let mut source = match dir.open_file(archive, Access::existing(false), 0) {
        Ok(file) => file,
        // Deleted by retention meanwhile, or a link, which is never followed.
        Err(e) if e.kind() == io::ErrorKind::NotFound || platform::is_symlink_refusal(&e) => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let metadata = platform::metadata(&source)?;
    if !metadata.is_file() {
        return Ok(false);
    }
    let source_id = platform::FileId::of(&metadata);
    // Retention, under the locks, deletes an archive and its `.gz`: so the checks that the
    // archive is still there, before the claim and before the rename, happen under them
    // too, or a copy could come back for an archive deleted in between.
    let still_there = || -> io::Result<bool> {
        Ok(dir
            .entry(archive)?
            .is_some_and(|entry| entry.id == source_id)
            && dir.entry(gz)?.is_none())
    };
    let mut claimed = None;
    under_locks(&mut || {
        if still_there()? {
            claimed = claim::take(dir, archive, file_mode)?;
        }
        Ok(true)
    })?;
    let Some(claim::Claim { file, name }) = claimed else {
        return Ok(false);
    };
    let written = write_gzip(&mut source, &file, metadata.modified().ok(), stopping);
    let placed = written.and_then(|()| {
        under_locks(&mut || {
            if !still_there()? {
                return Ok(false);
            }
            match dir.rename_exclusive(&name, gz) {
                Ok(()) => Ok(true),
                // A `.gz` placed by an earlier version, which claims nothing.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })
    });
    // The claim goes while its lock is still held (the file is still open).
    let result = match placed {
        Ok(true) => dir.remove_if_there(archive).map(|()| true),
        Ok(false) => dir.remove_if_there(&name).map(|()| false),
        Err(e) => {
            let _ = dir.remove(&name);
            Err(e)
        }
    };
    drop(file);
    result
}

/// Writes the gzip of `source` to `target`, dated `modified` (the archive's time, as
/// gzip keeps it), and syncs it; stops once `stopping` is set.
fn write_gzip(
    source: &mut File,
    target: &File,
    modified: Option<std::time::SystemTime>,
    stopping: &AtomicBool,
) -> io::Result<()> {
    let mut encoder = GzEncoder::new(target, Compression::default());
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if stopping.load(Ordering::Acquire) {
            return Err(stopped());
        }
        let read = platform::retry_interrupted(|| source.read(&mut buffer))?;
        if read == 0 {
            break;
        }
        encoder.write_all(&buffer[..read])?;
    }
    let target = encoder.finish()?;
    if let Some(modified) = modified {
        target.set_modified(modified)?;
    }
    // On disk before its name says it is complete.
    platform::retry_interrupted(|| target.sync_all())
}

/// A claim's name, for the name-length check's test.
#[cfg(test)]
pub(crate) use claim::name_of as claim_name;
