//! The cases of the `Builder::build` property test (`config_fuzz`): random options, hostile
//! path shapes under a case directory of a temp dir (`..` never climbs above it), and the
//! existing state each case starts from. Deterministic from the seed.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// splitmix64: tiny, deterministic, and good enough to pick test inputs.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), up to a negligible bias.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, low: u64, high_inclusive: u64) -> u64 {
        low + self.below(high_inclusive - low + 1)
    }

    /// True with probability `1 / n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Something put in place before building, to meet the library with existing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    Nothing,
    /// The log path is an existing directory.
    LogIsDirectory,
    /// The lock path is an existing directory.
    LockIsDirectory,
    /// The log file exists, ending in a partial line.
    LogExists,
    /// The lock file exists but is shorter than the page the library maps.
    ShortLockFile,
    /// The log file's parent directory is a regular file.
    ParentIsFile,
    /// `<log>.1` is a directory, so rotation cannot proceed.
    ArchiveIsDirectory,
    /// `<log>.1` to `<log>.3` exist already.
    ArchivesExist,
    /// The log path is a symbolic link to a sibling that does not exist yet.
    DanglingSymlink,
    /// The log path is a symbolic link in a loop.
    SymlinkLoop,
}

const SETUPS: &[Setup] = &[
    Setup::LogIsDirectory,
    Setup::LockIsDirectory,
    Setup::LogExists,
    Setup::ShortLockFile,
    Setup::ParentIsFile,
    Setup::ArchiveIsDirectory,
    Setup::ArchivesExist,
    Setup::DanglingSymlink,
    Setup::SymlinkLoop,
];

#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) index: u64,
    pub(crate) path: PathBuf,
    /// The directory of this case, which everything the case creates must stay under;
    /// `None` for the shapes outside the temp dir that have no file name.
    pub(crate) root: Option<PathBuf>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) max_files: Option<usize>,
    pub(crate) path_check_interval: Option<Duration>,
    pub(crate) setup: Setup,
    pub(crate) writes: u64,
    pub(crate) hook: bool,
    pub(crate) lock_timeout: Option<Duration>,
    /// Whether the first write meets the lock held by another open file description.
    pub(crate) contended: bool,
}

/// Shapes outside the temp dir: each names no file (or ends in a separator), so the
/// library rejects it before creating anything.
const OUTSIDE: &[&[u8]] = &[
    b"",
    b"/",
    b"//",
    b"///",
    b"/.",
    b"/..",
    b"/../..",
    b"/./",
    b".",
    b"..",
    b"./",
    b"../",
    b"./..",
    b"/nonexistent-tsf-fuzz/app.log/",
    b"nonexistent-tsf-fuzz/app.log/",
    b"/nonexistent-tsf-fuzz/\xff\xfe/",
];

fn random_u64_option(rng: &mut Rng) -> u64 {
    match rng.below(12) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => rng.range(3, 200),
        4 => rng.range(200, 1 << 20),
        5 => 1 << 32,
        6 => 1 << 63,
        7 => u64::MAX - 1,
        8 => u64::MAX,
        9 => rng.next(),
        10 => rng.range(1, 64),
        _ => tracing_shared_file::DEFAULT_MAX_BYTES,
    }
}

fn random_usize_option(rng: &mut Rng) -> usize {
    match rng.below(11) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => rng.range(3, 20) as usize,
        4 => rng.range(20, 1 << 20) as usize,
        5 => 1 << 32,
        6 => usize::MAX / 2 + 1,
        7 => usize::MAX - 1,
        8 => usize::MAX,
        9 => rng.next() as usize,
        _ => tracing_shared_file::DEFAULT_MAX_FILES,
    }
}

/// A name of `low..=high` harmless characters.
fn plain_name(rng: &mut Rng, low: u64, high: u64) -> Vec<u8> {
    const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-.";
    let len = rng.range(low, high);
    (0..len).map(|_| *rng.pick(PLAIN)).collect()
}

/// One path component; never `..` (the caller decides where that is safe).
fn random_component(rng: &mut Rng) -> Vec<u8> {
    match rng.below(20) {
        0 => b".".to_vec(),
        1 => Vec::new(), // an empty component: `a//b`
        2 => {
            // Non-UTF-8 bytes, never a slash or NUL.
            (0..rng.range(1, 12))
                .map(|_| rng.range(0x80, 0xFF) as u8)
                .collect()
        }
        3 => {
            let mut name = plain_name(rng, 0, 6);
            name.push(0);
            name.extend(plain_name(rng, 0, 6));
            name
        }
        4 => plain_name(rng, 256, 400),
        5 => {
            let len = *rng.pick(&[250, 251, 253, 255]);
            plain_name(rng, len, len)
        }
        6 => {
            let mut name = plain_name(rng, 1, 8);
            const SUFFIXES: &[&[u8]] = &[b".lock", b".1", b".log.1", b".log.lock"];
            let suffix = *rng.pick::<&[u8]>(SUFFIXES);
            name.extend_from_slice(suffix);
            name
        }
        7 => "é ünïcødé ✓".as_bytes().to_vec(),
        8 => b" spaced \n newline\t".to_vec(),
        9 => b"...".to_vec(),
        _ => plain_name(rng, 1, 12),
    }
}

/// A path relative to the case directory, as raw bytes. `..` only ever steps back out
/// of a component this path went into, so the path cannot leave the case directory.
fn random_relative_path(rng: &mut Rng) -> Vec<u8> {
    let components = match rng.below(16) {
        0 => rng.range(10, 40), // many components
        1 => rng.range(15, 30), // with long names below: longer than PATH_MAX
        _ => rng.range(1, 4),
    };
    let long_path = components >= 17 && rng.one_in(2);
    let mut depth = 0u64;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for _ in 0..components {
        if depth > 0 && rng.one_in(6) {
            parts.push(b"..".to_vec());
            depth -= 1;
            continue;
        }
        let part = if long_path {
            vec![b'p'; 250]
        } else {
            random_component(rng)
        };
        // `.` and empty components do not go anywhere.
        if !(part.is_empty() || part == b".") {
            depth += 1;
        }
        parts.push(part);
    }
    let mut path = parts.join(&b'/');
    match rng.below(12) {
        0 => path.push(b'/'),
        1 => path.extend_from_slice(b"/."),
        2 if depth > 0 => path.extend_from_slice(b"/.."),
        3 => path.extend_from_slice(b"/app.log.1"),
        4 => path.extend_from_slice(b"/app.log.lock"),
        _ => path.extend_from_slice(b"/app.log"),
    }
    path
}

pub(crate) fn random_case(rng: &mut Rng, index: u64, scratch: &Path) -> Case {
    let (path, root) = if rng.one_in(30) {
        let shape = *rng.pick(OUTSIDE);
        (PathBuf::from(OsString::from_vec(shape.to_vec())), None)
    } else {
        let root = scratch.join(format!("case{index}"));
        let relative = random_relative_path(rng);
        let mut path = root.clone().into_os_string().into_vec();
        path.push(b'/');
        path.extend(relative);
        (PathBuf::from(OsString::from_vec(path)), Some(root))
    };
    let setup = if root.is_some() && rng.one_in(3) {
        *rng.pick(SETUPS)
    } else {
        Setup::Nothing
    };
    Case {
        index,
        path,
        root,
        max_bytes: (!rng.one_in(5)).then(|| random_u64_option(rng)),
        max_files: (!rng.one_in(5)).then(|| random_usize_option(rng)),
        path_check_interval: rng.one_in(2).then(|| {
            *rng.pick(&[
                Duration::ZERO,
                Duration::from_nanos(1),
                Duration::from_millis(10),
                Duration::from_secs(3600),
                Duration::from_secs(u64::MAX),
                Duration::MAX,
            ])
        }),
        setup,
        writes: rng.range(0, 3),
        // Mostly a hook, so that thousands of expected failures do not flood stderr; the
        // default stderr report is exercised too.
        hook: !rng.one_in(16),
        lock_timeout: None,
        contended: false,
    }
}

/// Picks the case's `lock_timeout` (none most of the time) and whether its first write
/// meets a held lock.
pub(crate) fn random_lock_wait(rng: &mut Rng, case: &mut Case) {
    case.lock_timeout = rng.one_in(3).then(|| {
        *rng.pick(&[
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(1),
            Duration::MAX,
        ])
    });
    // Only with a hook: the timeouts this causes are expected, and not for stderr.
    case.contended = case.lock_timeout.is_some() && case.hook && rng.one_in(2);
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Puts the case's existing state in place. Failures are ignored: a shape may make the
/// setup impossible, and then the case simply runs without it.
pub(crate) fn apply_setup(case: &Case) {
    let Some(root) = &case.root else { return };
    let _ = std::fs::create_dir_all(root);
    let path = &case.path;
    let parent = path.parent().unwrap_or(root);
    let sibling = |name: &str| path.with_file_name(name);
    let _ = match case.setup {
        Setup::Nothing => Ok(()),
        Setup::LogIsDirectory => std::fs::create_dir_all(path),
        Setup::LockIsDirectory => std::fs::create_dir_all(with_suffix(path, ".lock")),
        Setup::LogExists => std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(path, b"an earlier line\na partial li")),
        Setup::ShortLockFile => std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(with_suffix(path, ".lock"), b"0123456789")),
        Setup::ParentIsFile => parent
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(parent, b"not a directory")),
        Setup::ArchiveIsDirectory => std::fs::create_dir_all(with_suffix(path, ".1")),
        Setup::ArchivesExist => std::fs::create_dir_all(parent).and_then(|()| {
            (1..=3).try_for_each(|i| std::fs::write(with_suffix(path, &format!(".{i}")), b"old\n"))
        }),
        Setup::DanglingSymlink => std::fs::create_dir_all(parent)
            .and_then(|()| std::os::unix::fs::symlink("target-not-yet.log", path)),
        Setup::SymlinkLoop => std::fs::create_dir_all(parent).and_then(|()| {
            std::os::unix::fs::symlink("loop-b", path)?;
            std::os::unix::fs::symlink(path.file_name().unwrap_or_default(), sibling("loop-b"))
        }),
    };
}
