//! Listing a [`Dir`]: the one read of a whole directory, which takes as long as the
//! directory is large, so no caller does it while holding a log's lock.

use std::ffi::OsString;
use std::io;

use super::super::super::common::Kind;
use super::Dir;

impl Dir {
    /// The names in this directory that start with `prefix` (compared as std's encoding
    /// of the name, which is UTF-8 for any valid Unicode name), with what sits at each.
    pub(crate) fn list(&self, prefix: &[u8]) -> io::Result<Vec<(OsString, Kind)>> {
        #[cfg(test)]
        super::super::super::common::listings::listed();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name();
            if !name.as_encoded_bytes().starts_with(prefix) {
                continue;
            }
            // From the listing itself: no further look-up.
            let file_type = entry.file_type()?;
            let kind = if file_type.is_symlink() {
                Kind::Symlink
            } else if file_type.is_dir() {
                Kind::Directory
            } else if file_type.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            names.push((name, kind));
        }
        Ok(names)
    }
}
