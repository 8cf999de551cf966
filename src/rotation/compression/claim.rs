//! Claims: one compressor per archive, across processes.
//!
//! The compressor writes an archive's gzip into `.<archive>.gz.tmp`, a hidden name of
//! which there is only one per archive, created without replacing anything and held
//! under an exclusive `flock` for as long as the process compresses into it. So the
//! temporary file is also the claim: a second process finds the name taken and the lock
//! held, and leaves that archive to the first.
//!
//! Invariants:
//! - A claim is created, and an abandoned one removed, only under the log's lock, so the
//!   moment between creating a claim and locking it is never seen by another process.
//! - A claim whose lock nobody holds is abandoned: the kernel releases a killed process's
//!   lock, whatever its pid means by then (a pid namespace, a recycled pid).
//! - Only the process holding a claim's lock removes it or renames it to the `.gz`, and it
//!   does so before letting go of the lock; a claim found unlocked is removed only after
//!   checking, under the log's lock, that its name still names the file found.
//! - Anything at a claim's name that is not a regular file (a link, a directory) is not
//!   ours: it is left alone, and the archive stays plain (which is reported).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;

use crate::platform::{self, Access, Dir, FileId};

/// What a claim's name ends with, after the archive's name.
const SUFFIX: &str = ".gz.tmp";

/// `.<archive>.gz.tmp`.
pub(crate) fn name_of(archive: &OsStr) -> OsString {
    let mut name = OsString::from(".");
    name.push(archive);
    name.push(SUFFIX);
    name
}

/// Whether `name` (in the log's directory, starting with `.<log name>.`) is a claim.
pub(super) fn is_claim(name: &OsStr) -> bool {
    name.as_encoded_bytes().ends_with(SUFFIX.as_bytes())
}

/// A claim this process holds: the temporary file, locked, and its name.
#[derive(Debug)]
pub(super) struct Claim {
    pub(super) file: File,
    pub(super) name: OsString,
}

/// Takes the claim on `archive`, created with `file_mode`; `None` if a live process
/// holds it, an error if something not ours sits at its name. Run under the log's lock.
pub(super) fn take(
    dir: &Dir,
    archive: &OsStr,
    file_mode: Option<u32>,
) -> io::Result<Option<Claim>> {
    let name = name_of(archive);
    let file = match dir.create_new(&name, file_mode) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            match remove_if_abandoned(dir, &name)? {
                Found::Free => dir.create_new(&name, file_mode)?,
                Found::Held => return Ok(None),
                Found::Foreign => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "`{}` is not a temporary file of ours: `{}` stays uncompressed while it is there",
                            name.display(),
                            archive.display()
                        ),
                    ));
                }
            }
        }
        Err(e) => return Err(e),
    };
    // Nobody else can have it open: claims are looked at only under the log's lock.
    match lock(&file) {
        Ok(true) => Ok(Some(Claim { file, name })),
        Ok(false) => Ok(None),
        Err(error) => {
            let _ = dir.remove(&name);
            Err(error)
        }
    }
}

/// What [`remove_if_abandoned`] found at a claim's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing, or an abandoned claim, now removed.
    Free,
    /// A claim that a live process holds.
    Held,
    /// Something that is not a claim: a link, a directory, a FIFO.
    Foreign,
}

/// Removes the claim `name` unless a live process holds it. Run under the log's lock.
pub(super) fn remove_if_abandoned(dir: &Dir, name: &OsStr) -> io::Result<Found> {
    let file = match dir.open_file(name, Access::existing(false), 0) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Free),
        Err(e) if platform::is_symlink_refusal(&e) => return Ok(Found::Foreign),
        Err(e) => return Err(e),
    };
    let metadata = platform::metadata(&file)?;
    if !metadata.is_file() {
        return Ok(Found::Foreign);
    }
    if !lock(&file)? {
        return Ok(Found::Held);
    }
    // Its compressor is gone. The name is checked again: a claim made since is another
    // file, and stays.
    match dir.entry(name)? {
        Some(entry) if entry.id == FileId::of(&metadata) => {
            dir.remove_if_there(name)?;
            Ok(Found::Free)
        }
        Some(_) => Ok(Found::Held),
        None => Ok(Found::Free),
    }
}

/// Takes `file`'s lock if nobody holds it.
fn lock(file: &File) -> io::Result<bool> {
    platform::try_lock(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_hidden_and_names_its_archive() {
        let name = name_of(OsStr::new("app.log.2026-11-27T14-00-00Z.3"));
        assert_eq!(name, ".app.log.2026-11-27T14-00-00Z.3.gz.tmp");
        assert!(is_claim(&name));
        // Not mistaken for the pid-named temporaries, whose writer is judged by its pid.
        assert_eq!(crate::log_dir::writer_of_temporary(&name), None);
    }
}
