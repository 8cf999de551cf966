//! The longest name a log creates in its directory, checked against the directory's
//! limit (`NAME_MAX`) at `build()`: a name found too long only at a rotation would stop
//! every rotation, or every write, from then on.
//!
//! Every name counts, at its widest: the lock file, the archives (with a counter of every
//! digit it can have, and `.gz`), every temporary file (with a pid and a counter of
//! every digit they can have), and a compressor's claim on an archive.

use std::ffi::{OsStr, OsString};

use crate::platform::{LONGEST_TEMPORARY, TEMPORARY_PREFIX};
use crate::rotation::Naming;
use crate::settings::Settings;

/// A timestamped archive's suffix at its widest: the stamp and a counter of `u32::MAX`.
const WIDEST_STAMP: &str = ".2026-11-27T14-00-00Z.4294967295";
/// What a compressor adds after an archive's name for its claim, `.<archive>.gz.tmp` (a
/// leading `.` too), as `rotation::compression::claim` names it. Earlier versions named
/// it `.<archive>.gz.<pid>.<n>.tmp`; nothing creates that name any more.
const COMPRESSION_TEMPORARY: &str = ".gz.tmp";

/// The longest name that a log named `name` with `settings` will ever create.
pub(super) fn longest_name(name: &OsStr, settings: &Settings) -> OsString {
    let with = |suffix: &str| {
        let mut longer = name.to_os_string();
        longer.push(suffix);
        longer
    };
    let mut candidates = vec![with(".lock"), widest_temporary()];
    match settings.naming {
        Naming::Numbered => candidates.push(with(&format!(".{}", settings.max_files))),
        Naming::Timestamped if settings.compress => {
            let mut temporary = OsString::from(".");
            temporary.push(with(WIDEST_STAMP));
            temporary.push(COMPRESSION_TEMPORARY);
            candidates.push(temporary);
        }
        Naming::Timestamped => candidates.push(with(WIDEST_STAMP)),
    }
    candidates
        .into_iter()
        .max_by_key(|candidate| candidate.len())
        .unwrap_or_default()
}

/// A temporary file's name at its widest.
fn widest_temporary() -> OsString {
    let name = format!("{TEMPORARY_PREFIX}4294967295.18446744073709551615.tmp");
    debug_assert_eq!(name.len(), LONGEST_TEMPORARY);
    OsString::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn longest(name_len: usize, settings: Settings) -> usize {
        longest_name(OsStr::new(&"a".repeat(name_len)), &settings).len()
    }

    #[test]
    fn every_name_counts_at_its_widest() {
        let numbered = Settings::default();
        assert_eq!(longest(200, numbered.clone()), 205, "the lock file");
        let many = Settings {
            max_files: 1_000_000,
            ..numbered.clone()
        };
        assert_eq!(longest(200, many), 208, "app.log.1000000");
        let timestamped = Settings {
            naming: Naming::Timestamped,
            ..numbered.clone()
        };
        assert_eq!(longest(200, timestamped.clone()), 232);
        let compressed = Settings {
            compress: true,
            ..timestamped
        };
        assert_eq!(longest(200, compressed.clone()), 1 + 232 + 7);
        assert_eq!(longest(1, numbered), LONGEST_TEMPORARY);
        #[cfg(feature = "compress")]
        {
            let archive = format!("{}{WIDEST_STAMP}", "a".repeat(200));
            let claim = crate::rotation::compression::claim_name(OsStr::new(&archive));
            assert_eq!(longest(200, compressed), claim.len(), "{claim:?}");
        }
    }
}
