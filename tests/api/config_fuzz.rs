//! Property test of `Builder::build` over random options and hostile path shapes.
//!
//! Every case must either build (and then each write succeeds or returns an `io::Error`,
//! never panics) or return an `Error` whose message names the path it concerns. No case
//! may panic. Relative shapes are always placed under a fresh directory of a temp dir, and
//! `..` never climbs above it, so nothing is created outside; the only paths outside are
//! shapes without a file name, which are rejected before anything is created.
//!
//! Some cases also set a `lock_timeout` (0, 1 ms, 1 s, or `Duration::MAX`, a bound too
//! far off to add to the clock, which means none), and some of those meet the lock held
//! through another open file description at their first write: a bound of 0 or 1 ms must
//! then time out, and `Duration::MAX` must wait until the lock is let go, never time out.
//! These choices come from a stream of their own, so the other options of every case are
//! what they were without them.
//!
//! Deterministic: the seed is fixed (override with `TSF_FUZZ_SEED`, and the number of
//! cases with `TSF_FUZZ_CASES`) and printed with every failure.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing_shared_file::{ErrorKind, SharedFile};

const DEFAULT_SEED: u64 = 0x7473_665F_6675_7A7A; // "tsf_fuzz"
const DEFAULT_CASES: u64 = 3000;
/// Mixed into the seed for the stream that picks the lock options.
const LOCK_STREAM: u64 = 0x6C6F_636B_5F77_6169; // "lock_wai"
/// How long the lock is held against a write with a bound of 1 s or more.
const BRIEF_HOLD: Duration = Duration::from_millis(2);

/// splitmix64: tiny, deterministic, and good enough to pick test inputs.
struct Rng(u64);

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
enum Setup {
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
struct Case {
    index: u64,
    path: PathBuf,
    /// The directory of this case, which everything the case creates must stay under;
    /// `None` for the shapes outside the temp dir that have no file name.
    root: Option<PathBuf>,
    max_bytes: Option<u64>,
    max_files: Option<usize>,
    path_check_interval: Option<Duration>,
    setup: Setup,
    writes: u64,
    hook: bool,
    lock_timeout: Option<Duration>,
    /// Whether the first write meets the lock held by another open file description.
    contended: bool,
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

fn random_case(rng: &mut Rng, index: u64, scratch: &Path) -> Case {
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
fn random_lock_wait(rng: &mut Rng, case: &mut Case) {
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

/// Contended first writes that timed out under a short bound, and that waited under
/// `Duration::MAX`: the generator must produce both.
static TIMED_OUT: AtomicU64 = AtomicU64::new(0);
static WAITED_WITHOUT_BOUND: AtomicU64 = AtomicU64::new(0);

/// The flock on a case's lock file, taken through an open file description of its own,
/// as another process would, and let go by a helper thread: the library's write cannot
/// take it until then.
struct HeldLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

/// How long the lock is held at most against a short bound, which the write must give up
/// at long before: a write that ignored its bound fails the case instead of hanging.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

impl HeldLock {
    /// Takes the lock of `log` for a write bounded by `timeout`: until the write returns
    /// if the bound is short, else for `BRIEF_HOLD`. `None` if the lock file cannot be
    /// opened or locked here (then the case runs uncontended).
    fn take(log: &Path, timeout: Duration) -> Option<Self> {
        let lock = std::fs::File::open(with_suffix(log, ".lock")).ok()?;
        lock.try_lock().ok()?;
        let hold = if timeout < BRIEF_HOLD {
            HOLD_LIMIT
        } else {
            BRIEF_HOLD
        };
        let (release, released) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _ = released.recv_timeout(hold);
            drop(lock);
        });
        Some(HeldLock { release, holder })
    }

    /// Lets go now, if the helper has not already.
    fn release(self) {
        let _ = self.release.send(());
        self.holder.join().unwrap();
    }
}

/// What a write that met a held lock must have done under `timeout`.
fn check_contended_write(timeout: Duration, result: &std::io::Result<()>) -> Result<(), String> {
    let timed_out = matches!(result, Err(e) if e.kind() == std::io::ErrorKind::TimedOut);
    if timeout < BRIEF_HOLD {
        if !timed_out {
            return Err(format!(
                "with lock_timeout({timeout:?}) and the lock held, the write returned {result:?}"
            ));
        }
        TIMED_OUT.fetch_add(1, Ordering::Relaxed);
    } else if timeout == Duration::MAX {
        if timed_out {
            return Err(format!(
                "lock_timeout(Duration::MAX) means no bound, but the write timed out: {result:?}"
            ));
        }
        WAITED_WITHOUT_BOUND.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Puts the case's existing state in place. Failures are ignored: a shape may make the
/// setup impossible, and then the case simply runs without it.
fn apply_setup(case: &Case) {
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

/// `Path::file_name` is `None`, or the path ends in a separator or `/.` (both name a
/// directory to the OS, though `Path` drops them).
fn has_no_file_name(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    path.file_name().is_none() || bytes.ends_with(b"/") || bytes.ends_with(b"/.")
}

/// Whether `named` (the path an error reports) belongs to the case: the path itself,
/// made absolute, its lock file, one of its ancestors (the directory that could not be
/// created), or anything under the case directory (where a symbolic link led).
fn is_related(case: &Case, named: &Path) -> bool {
    if named == case.path {
        return true;
    }
    let Ok(absolute) = std::path::absolute(&case.path) else {
        return false;
    };
    named == absolute
        || named == with_suffix(&absolute, ".lock")
        || (absolute.starts_with(named) && named != Path::new("/"))
        || case
            .root
            .as_ref()
            .is_some_and(|root| named.starts_with(root))
}

/// Runs one case; `Err` describes a broken property.
fn run_case(case: &Case) -> Result<String, String> {
    if case.root.is_none() {
        // Never build a path outside the temp dir that the library might accept.
        assert!(
            has_no_file_name(&case.path),
            "unsafe outside shape {case:?}"
        );
    }
    apply_setup(case);
    let mut builder = SharedFile::builder(&case.path);
    if let Some(max_bytes) = case.max_bytes {
        builder = builder.max_bytes(max_bytes);
    }
    if let Some(max_files) = case.max_files {
        builder = builder.max_files(max_files);
    }
    if let Some(interval) = case.path_check_interval {
        builder = builder.path_check_interval(interval);
    }
    if let Some(timeout) = case.lock_timeout {
        builder = builder.lock_timeout(timeout);
    }
    if case.hook {
        builder = builder.on_error(|failure| {
            // Touch everything the hook is given.
            let _ = (
                failure.path(),
                failure.error().kind(),
                failure.event_dropped(),
            );
            let _ = failure.to_string();
        });
    }
    let config_error = if has_no_file_name(&case.path) {
        Some(ErrorKind::NoFileName)
    } else if case.max_bytes == Some(0) {
        Some(ErrorKind::ZeroMaxBytes)
    } else if case.max_files == Some(0) {
        Some(ErrorKind::ZeroMaxFiles)
    } else {
        None
    };
    let entries_before = case.root.as_ref().map(|root| count_entries(root));

    match builder.build() {
        Ok(log) => {
            if let Some(kind) = config_error {
                return Err(format!("built although {kind:?} was expected"));
            }
            if !log.path().is_absolute() {
                return Err(format!("path() {:?} is not absolute", log.path()));
            }
            if let Some(root) = &case.root
                && !log.path().starts_with(root)
            {
                return Err(format!("built {:?} outside {root:?}", log.path()));
            }
            let through_link = matches!(case.setup, Setup::DanglingSymlink | Setup::SymlinkLoop);
            if !through_link && std::path::absolute(&case.path).ok().as_deref() != Some(log.path())
            {
                return Err(format!(
                    "path() {:?} is not the path made absolute",
                    log.path()
                ));
            }
            let mut written = 0;
            let mut failed = 0;
            let mut last = Vec::new();
            for i in 0..case.writes {
                last = format!("fuzz case {} line {i}\n", case.index).into_bytes();
                let contention = case
                    .lock_timeout
                    .filter(|_| case.contended && i == 0)
                    .and_then(|timeout| Some((timeout, HeldLock::take(log.path(), timeout)?)));
                let result = (&log).write_all(&last);
                if let Some((timeout, held)) = contention {
                    held.release();
                    check_contended_write(timeout, &result)?;
                }
                match result {
                    Ok(()) => written += 1,
                    Err(error) => {
                        failed += 1;
                        let _ = error.to_string();
                    }
                }
            }
            let stats = log.stats();
            if (
                stats.events_written,
                stats.write_errors,
                stats.events_dropped,
            ) != (written, failed, failed)
            {
                return Err(format!(
                    "stats {stats:?} after {written} writes and {failed} failures"
                ));
            }
            if written > 0 && failed == 0 {
                let content = std::fs::read(log.path())
                    .map_err(|e| format!("cannot read back {:?}: {e}", log.path()))?;
                if !content.ends_with(&last) {
                    return Err(format!(
                        "the last line written is not at the end of {:?}",
                        log.path()
                    ));
                }
            }
            Ok(format!("built, {written} written, {failed} failed"))
        }
        Err(error) => {
            let message = error.to_string();
            let named = error.path();
            if !message.contains(&named.display().to_string()) {
                return Err(format!("message {message:?} does not name {named:?}"));
            }
            if named.as_os_str().is_empty() != case.path.as_os_str().is_empty() {
                return Err(format!("error names {named:?}: {message}"));
            }
            if !is_related(case, named) {
                return Err(format!(
                    "error names an unrelated path {named:?}: {message}"
                ));
            }
            if let Some(kind) = config_error {
                if error.kind() != kind {
                    return Err(format!(
                        "expected {kind:?}, got {:?}: {message}",
                        error.kind()
                    ));
                }
                if named != case.path {
                    return Err(format!("a {kind:?} error must name the path as given"));
                }
                if let (Some(root), Some(before)) = (&case.root, entries_before)
                    && count_entries(root) != before
                {
                    return Err(format!("rejected as {kind:?} but created files"));
                }
            }
            Ok(format!("{:?}", error.kind()))
        }
    }
}

/// How many files and directories are under `dir` (0 if it does not exist).
fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                1 + if is_dir {
                    count_entries(&entry.path())
                } else {
                    0
                }
            })
            .sum()
    })
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |value| {
        let value = value.trim();
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => value.parse(),
        }
        .unwrap_or_else(|_| panic!("{name} is not a number: {value:?}"))
    })
}

#[test]
fn random_options_and_paths_build_or_fail_cleanly() {
    let seed = env_number("TSF_FUZZ_SEED", DEFAULT_SEED);
    let cases = env_number("TSF_FUZZ_CASES", DEFAULT_CASES);
    let scratch = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let mut lock_rng = Rng(seed ^ LOCK_STREAM);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();

    for index in 0..cases {
        let mut case = random_case(&mut rng, index, scratch.path());
        random_lock_wait(&mut lock_rng, &mut case);
        match catch_unwind(AssertUnwindSafe(|| run_case(&case))) {
            Ok(Ok(outcome)) => {
                let key = outcome.split(',').next().unwrap_or_default().to_string();
                *outcomes.entry(key).or_default() += 1;
                if outcome.ends_with("failed") && !outcome.ends_with(" 0 failed") {
                    *outcomes.entry("write failed".to_string()).or_default() += 1;
                }
            }
            Ok(Err(broken)) => failures.push(format!("case {index}: {broken}\n    {case:?}")),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("case {index} PANICKED: {message}\n    {case:?}"));
            }
        }
        // Each case is independent: clean up as we go so the temp dir stays small.
        if let Some(root) = &case.root {
            let _ = std::fs::remove_dir_all(root);
        }
    }

    eprintln!(
        "{cases} cases (seed {seed:#x}) in {:?}: {outcomes:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed (seed {seed:#x}; rerun with TSF_FUZZ_SEED={seed:#x}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator must reach every outcome, or the test proves little.
    for kind in [
        "built",
        "NoFileName",
        "ZeroMaxBytes",
        "ZeroMaxFiles",
        "IsDirectory",
        "CreateDirectory",
        "ForeignLockFile",
        "OpenLogFile",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "no case ended in {kind}: {outcomes:?}"
        );
    }
    let (timed_out, waited) = (
        TIMED_OUT.load(Ordering::Relaxed),
        WAITED_WITHOUT_BOUND.load(Ordering::Relaxed),
    );
    assert!(
        timed_out > 0 && waited > 0,
        "contended first writes: {timed_out} timed out under a short bound, {waited} waited \
         under Duration::MAX; the generator must produce both"
    );
}
