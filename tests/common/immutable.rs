//! An archive that cannot be deleted or renamed: `chattr +i` for a guard's life, undone
//! when the guard drops, even when the test panics. Needs root and a filesystem that
//! supports it (ext4, xfs, btrfs); elsewhere `set` says so and the test skips itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `chattr +i` on a file; `chattr -i` when dropped.
pub struct Immutable(PathBuf);

impl Immutable {
    /// `None`, after printing a `skipped:` line, where `chattr +i` is refused.
    pub fn set(path: &Path) -> Option<Self> {
        match Command::new("chattr").arg("+i").arg(path).status() {
            Ok(status) if status.success() => Some(Immutable(path.to_path_buf())),
            other => {
                println!("skipped: chattr +i {} failed ({other:?})", path.display());
                None
            }
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}
