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

/// What to compress: the log's directory and name, and the mode for new files.
pub(crate) struct Job {
    /// Where failures are reported, and whose locks the last step takes.
    pub(crate) inner: std::sync::Weak<crate::critical_section::Inner>,
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
        let generation = crate::fork::generation();
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
        if let Err(error) = compress_pending(log, job.file_mode)
            && let Some(inner) = job.inner.upgrade()
        {
            inner.report_failure(&crate::IoFailure::archives(&job.path, &error));
        }
    }
}

/// One pass: cleans what killed compressors left, then compresses every plain archive
/// but the newest, which a follower may still be reading.
pub(crate) fn compress_pending(log: LogName<'_>, file_mode: Option<u32>) -> io::Result<()> {
    crate::log_dir::remove_abandoned_temporaries(log.dir, log.name)?;
    let archives = timestamped::list(log)?;
    let mut plain: Vec<&timestamped::Archive> = Vec::new();
    for archive in &archives {
        if archive.compressed {
            continue;
        }
        let mut gz = archive.name.clone();
        gz.push(".gz");
        if archives.iter().any(|other| other.name == gz) {
            // Compressed before a kill stopped the removal: finish it.
            remove_if_there(log.dir, &archive.name)?;
        } else {
            plain.push(archive);
        }
    }
    // The newest archive waits for the next rotation (logrotate's `delaycompress`).
    let newest = archives
        .last()
        .map(|archive| (archive.time, archive.counter));
    for archive in plain {
        if Some((archive.time, archive.counter)) == newest {
            continue;
        }
        compress(log.dir, &archive.name, file_mode)?;
    }
    Ok(())
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

fn compress(dir: &Dir, archive: &OsStr, file_mode: Option<u32>) -> io::Result<()> {
    let mut source = match dir.open_file(archive, Access::existing(false), 0) {
        Ok(file) => file,
        // Deleted by retention meanwhile, or a link, which is never followed.
        Err(e) if e.kind() == io::ErrorKind::NotFound || platform::is_symlink_refusal(&e) => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let temporary = temporary_name(archive);
    let written = dir
        .create_new(&temporary, file_mode)
        .and_then(|file| write_gzip(&mut source, file));
    let mut gz = archive.to_os_string();
    gz.push(".gz");
    // Retention may have deleted the archive meanwhile: then its copy must not come back
    // (retention also removes a copy that got its name first). Checked before the rename,
    // not after: once the copy is in place, another pass may rightly remove the archive.
    let still_there = written.and_then(|()| {
        let source_id = crate::platform::FileId::of(&source.metadata()?);
        Ok(dir
            .entry(archive)?
            .is_some_and(|entry| entry.id == source_id))
    });
    let placed = match still_there {
        Ok(false) => return remove_if_there(dir, &temporary),
        Ok(true) => dir.rename_exclusive(&temporary, &gz),
        Err(e) => Err(e),
    };
    match placed {
        Ok(()) => {}
        // Another process finished first: its copy is complete, and removing the archive
        // is its job (it gives its copy up if it finds the archive gone).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return remove_if_there(dir, &temporary);
        }
        Err(e) => {
            let _ = dir.remove(&temporary);
            return Err(e);
        }
    }
    remove_if_there(dir, archive)
}

fn write_gzip(source: &mut File, target: File) -> io::Result<()> {
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
    // On disk before its name says it is complete.
    platform::retry_interrupted(|| target.sync_all())
}

fn remove_if_there(dir: &Dir, name: &OsStr) -> io::Result<()> {
    match dir.remove(name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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
