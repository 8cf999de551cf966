//! Finding and reading the rotation chain: the live file and its archives, named by
//! number (`app.log.N`) or by stamp (`app.log.2026-11-27T14-00-00Z[.K]`), each archive
//! plain, gzipped (`.gz`), or both for the moment a compressor needs to finish.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Report;
use super::period::parse_civil;

/// An archive's place in age order, oldest first, as its name gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Age {
    /// `app.log.N`: the higher `N`, the older.
    Numbered(Reverse<u64>),
    /// `app.log.<stamp>[.K]`: by stamp (seconds since the epoch), then by counter, the
    /// absent counter first.
    Stamped(i64, Option<u64>),
}

/// One file of the chain: the live file (no age), or an archive in one or both forms.
#[derive(Debug, Clone)]
pub(super) struct ChainFile {
    pub age: Option<Age>,
    pub plain: Option<PathBuf>,
    pub gz: Option<PathBuf>,
}

impl ChainFile {
    /// The name to report it by: the plain file if there is one.
    pub(super) fn path(&self) -> &Path {
        let path = self.plain.as_deref().or(self.gz.as_deref());
        path.expect("a chain file has at least one form")
    }

    /// The stamp of a timestamped archive, in seconds since the epoch.
    pub(super) fn stamp(&self) -> Option<i64> {
        match self.age {
            Some(Age::Stamped(stamp, _)) => Some(stamp),
            _ => None,
        }
    }

    /// The uncompressed content. Both forms are read when both exist: they must agree,
    /// and the plain one is returned. Problems go to `report`.
    pub(super) fn read(&self, report: &mut Report) -> Option<Vec<u8>> {
        let plain = self.plain.as_ref().and_then(|path| {
            fs::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .map_err(|problem| report.problems.push(problem))
                .ok()
        });
        let unzipped = self.gz.as_ref().and_then(|path| {
            gunzip(path)
                .map_err(|problem| report.problems.push(problem))
                .ok()
        });
        if let (Some(plain), Some(unzipped), Some(plain_path), Some(gz_path)) =
            (&plain, &unzipped, &self.plain, &self.gz)
            && plain != unzipped
        {
            report.problems.push(format!(
                "{} and {} differ: {} bytes plain, {} bytes decompressed",
                plain_path.display(),
                gz_path.display(),
                plain.len(),
                unzipped.len()
            ));
        }
        plain.or(unzipped)
    }
}

/// A gzip file's content, or why it has none. A `.gz` under its final name must be
/// complete: truncated or garbled is corrupt.
fn gunzip(path: &Path) -> Result<Vec<u8>, String> {
    let compressed = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let corrupt = |why: &dyn std::fmt::Display| format!("{} is corrupt: {why}", path.display());
    // The decoder may take an empty or non-gzip file for an empty stream.
    if !compressed.starts_with(&[0x1f, 0x8b]) {
        return Err(corrupt(&"no gzip header"));
    }
    let mut content = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed.as_slice())
        .read_to_end(&mut content)
        .map_err(|e| corrupt(&e))?;
    Ok(content)
}

/// The archives of `log`, oldest first, then the live file if it exists. Only names of
/// the chosen naming count: look-alikes (`app.log.bak`, `app.log.1x`, `app.log.01`, a
/// temporary file, the other naming) are ignored.
pub(super) fn find(log: &Path, timestamped: bool) -> Vec<ChainFile> {
    let dir = log.parent().expect("log path has a parent");
    let base = log.file_name().expect("log path has a file name");
    let prefix = format!("{}.", base.to_string_lossy());
    let mut archives: BTreeMap<Age, ChainFile> = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("cannot list log directory") {
        let name = entry.expect("cannot list log directory").file_name();
        let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(&prefix)) else {
            continue;
        };
        let (core, gz) = match rest.strip_suffix(".gz") {
            Some(core) => (core, true),
            None => (rest, false),
        };
        let age = if timestamped {
            parse_stamped(core)
        } else {
            parse_number(core).map(|n| Age::Numbered(Reverse(n)))
        };
        let Some(age) = age else { continue };
        let file = archives.entry(age).or_insert(ChainFile {
            age: Some(age),
            plain: None,
            gz: None,
        });
        let form = if gz { &mut file.gz } else { &mut file.plain };
        *form = Some(dir.join(&name));
    }
    let mut chain: Vec<ChainFile> = archives.into_values().collect();
    if log.exists() {
        chain.push(ChainFile {
            age: None,
            plain: Some(log.to_path_buf()),
            gz: None,
        });
    }
    chain
}

/// Flags archives beyond `max_files` and, for numbered names, gaps in the numbering;
/// counts the archives (a plain and gzipped pair is one) in `report`.
pub(super) fn check_names(
    chain: &[ChainFile],
    max_files: usize,
    allow_gaps: bool,
    report: &mut Report,
) {
    let archives: Vec<&ChainFile> = chain.iter().filter(|file| file.age.is_some()).collect();
    report.archives = archives.len();
    report.compressed = archives.iter().filter(|file| file.gz.is_some()).count();
    let mut numbers: Vec<(u64, &ChainFile)> = archives
        .iter()
        .filter_map(|&file| match file.age {
            Some(Age::Numbered(Reverse(n))) => Some((n, file)),
            _ => None,
        })
        .collect();
    if numbers.is_empty() {
        if archives.len() > max_files {
            report.problems.push(format!(
                "{} archives exist, {} beyond max_files = {max_files}",
                archives.len(),
                archives.len() - max_files
            ));
        }
        return;
    }
    numbers.reverse();
    if !allow_gaps
        && numbers
            .iter()
            .zip(1..)
            .any(|(&(n, _), expected)| n != expected)
    {
        let found: Vec<u64> = numbers.iter().map(|&(n, _)| n).collect();
        report.problems.push(format!(
            "rotated files are not numbered 1..: found {found:?}"
        ));
    }
    if let Some((_, beyond)) = numbers.iter().find(|&&(n, _)| n > max_files as u64) {
        let name = beyond
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        report
            .problems
            .push(format!("{name} exists beyond max_files = {max_files}"));
    }
}

/// `N` for N ≥ 1, without leading zeros.
fn parse_number(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| text.parse().ok()).flatten()
}

/// `YYYY-MM-DDTHH-MM-SSZ`, then optionally `.K` (a counter, as `parse_number`).
fn parse_stamped(text: &str) -> Option<Age> {
    let stamp = parse_civil(text.get(..19)?, b'-')?;
    let counter = match text.get(19..)?.strip_prefix('Z')? {
        "" => None,
        rest => Some(parse_number(rest.strip_prefix('.')?)?),
    };
    Some(Age::Stamped(stamp, counter))
}
