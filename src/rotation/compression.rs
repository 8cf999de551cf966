//! Compression of timestamped archives, on a background thread, never under the lock.
//!
//! An archive is compressed to a hidden temporary file, synced, renamed to its `.gz`
//! name, and only then removed; so whatever moment a process is killed at, the archive,
//! its complete `.gz`, or both are there, and never a truncated `.gz` under its final
//! name. The next pass (after the next rotation, in any process) finishes what a killed
//! one left: it removes an archive whose `.gz` is there, and temporary files whose
//! process is gone.
//!
//! Several processes may compress at once: each writes its own temporary file, and the
//! `.gz` name is taken without replacing anything, so the first complete copy wins.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::LogName;
use super::timestamped;
use crate::platform::{self, Access, Dir};

/// What the compressor needs of the log it works for, and nothing more: it sits below
/// the write path, which implements this.
pub(crate) trait Host: Send + Sync {
    /// Runs `step` under the log's locks, as a write would, so that it never interleaves
    /// with a rotation's retention: the step's result, or why the locks could not be had.
    fn under_locks(&self, step: &mut dyn FnMut() -> io::Result<bool>) -> io::Result<bool>;

    /// Reports a failed compression as the log reports its other failures.
    fn report(&self, error: &io::Error);
}

/// What to compress: the log's directory and name, and the mode for new files.
pub(crate) struct Job {
    /// Where failures are reported, and whose locks the last step takes; once the log is
    /// gone, nothing is done.
    pub(crate) host: std::sync::Weak<dyn Host>,
    pub(crate) dir: Arc<Dir>,
    pub(crate) name: OsString,
    pub(crate) path: std::path::PathBuf,
    pub(crate) file_mode: Option<u32>,
}

/// The background thread of one [`SharedFile`](crate::SharedFile), started at its first
/// job (and again in a forked child, which has no threads of its parent).
#[derive(Debug, Default)]
pub(crate) struct Compressor {
    worker: Mutex<Option<(u64, Sender<Job>)>>,
}

impl Compressor {
    /// Hands `job` to the background thread; if it cannot (a fork left the mutex held, or
    /// no thread can be started), the next rotation tries again.
    pub(crate) fn request(&self, job: Job, failed: impl FnOnce(&io::Error)) {
        let Ok(mut worker) = self.worker.try_lock() else {
            return;
        };
        let generation = crate::platform::fork_generation();
        if let Some((started_in, sender)) = worker.as_ref()
            && *started_in == generation
        {
            if sender.send(job).is_ok() {
                return;
            }
            *worker = None;
            return;
        }
        let (sender, receiver) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("tracing-shared-file-gzip".into())
            .spawn(move || run(receiver));
        match started {
            Ok(_) => {
                let _ = sender.send(job);
                *worker = Some((generation, sender));
            }
            Err(error) => failed(&error),
        }
    }
}

fn run(jobs: Receiver<Job>) {
    while let Ok(mut job) = jobs.recv() {
        // Rotations that came meanwhile need one pass, not one each.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        let log = LogName {
            dir: &job.dir,
            name: &job.name,
            path: &job.path,
        };
        // The last step of each compression runs under the locks, like retention, so
        // that the two never interleave. Once the `SharedFile` is gone, nothing is done.
        let under_locks = |place: &mut dyn FnMut() -> io::Result<bool>| match job.host.upgrade() {
            Some(host) => host.under_locks(place),
            None => Ok(false),
        };
        if let Err(error) = compress_pending(log, job.file_mode, &under_locks)
            && let Some(host) = job.host.upgrade()
        {
            host.report(&error);
        }
    }
}

/// Runs a step under the locks; `Ok(false)` when it could not run at all.
type UnderLocks<'a> = dyn Fn(&mut dyn FnMut() -> io::Result<bool>) -> io::Result<bool> + 'a;

/// One pass: cleans what killed compressors left, then compresses every plain archive
/// but the newest, which a follower may still be reading. An archive that fails does
/// not hold up the others; the first failure is returned once all were tried.
fn compress_pending(
    log: LogName<'_>,
    file_mode: Option<u32>,
    under_locks: &UnderLocks<'_>,
) -> io::Result<()> {
    let mut first_error = crate::log_dir::remove_abandoned_temporaries(log.dir, log.name).err();
    let archives = timestamped::list(log)?;
    // The newest archive waits for the next rotation (logrotate's `delaycompress`).
    let newest = archives
        .last()
        .map(|archive| (archive.time, archive.counter));
    for archive in &archives {
        if archive.compressed || Some((archive.time, archive.counter)) == newest {
            continue;
        }
        let mut gz = archive.name.clone();
        gz.push(".gz");
        let done = if archives.iter().any(|other| other.name == gz) {
            finish(log.dir, &archive.name, &gz)
        } else {
            compress(log.dir, &archive.name, &gz, file_mode, under_locks)
        };
        if let Err(error) = done {
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
        Ok(file) if file.metadata()?.is_file() => Ok(Some(file)),
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

/// `.app.log.<stamp>.gz.<pid>.<n>.tmp`: hidden, and naming the process that writes it.
fn temporary_name(archive: &OsStr) -> OsString {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(archive);
    name.push(format!(".gz.{}.{count}.tmp", platform::pid()));
    name
}

fn compress(
    dir: &Dir,
    archive: &OsStr,
    gz: &OsStr,
    file_mode: Option<u32>,
    under_locks: &UnderLocks<'_>,
) -> io::Result<()> {
    let mut source = match dir.open_file(archive, Access::existing(false), 0) {
        Ok(file) => file,
        // Deleted by retention meanwhile, or a link, which is never followed.
        Err(e) if e.kind() == io::ErrorKind::NotFound || platform::is_symlink_refusal(&e) => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let metadata = source.metadata()?;
    if !metadata.is_file() {
        return Ok(());
    }
    let source_id = platform::FileId::of(&metadata);
    let temporary = temporary_name(archive);
    let written = dir
        .create_new(&temporary, file_mode)
        .and_then(|file| write_gzip(&mut source, file, metadata.modified().ok()));
    // Retention, under the locks, deletes an archive and its `.gz`: so the check that the
    // archive is still there and the rename happen under them too, or a copy could come
    // back for an archive deleted in between.
    let placed = written.and_then(|()| {
        under_locks(&mut || {
            if dir
                .entry(archive)?
                .is_none_or(|entry| entry.id != source_id)
            {
                return Ok(false);
            }
            match dir.rename_exclusive(&temporary, gz) {
                Ok(()) => Ok(true),
                // Another process placed its copy first: removing the archive is its job.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })
    });
    match placed {
        Ok(true) => dir.remove_if_there(archive),
        Ok(false) => dir.remove_if_there(&temporary),
        Err(e) => {
            let _ = dir.remove(&temporary);
            Err(e)
        }
    }
}

/// Writes the gzip of `source` to `target`, dated `modified` (the archive's time, as
/// gzip keeps it), and syncs it.
fn write_gzip(
    source: &mut File,
    target: File,
    modified: Option<std::time::SystemTime>,
) -> io::Result<()> {
    let mut encoder = GzEncoder::new(target, Compression::default());
    let mut buffer = vec![0; 64 * 1024];
    loop {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_name_their_writer() {
        let name = temporary_name(OsStr::new("app.log.2026-11-27T14-00-00Z"));
        assert_eq!(
            crate::log_dir::writer_of_temporary(&name),
            Some(u64::from(platform::pid()))
        );
    }
}
