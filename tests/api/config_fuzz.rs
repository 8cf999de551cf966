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

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::config_fuzz_cases::{
    Case, Rng, Setup, apply_setup, random_case, random_lock_wait, with_suffix,
};
use tracing_shared_file::{Builder, ErrorKind, SharedFile};

const DEFAULT_SEED: u64 = 0x7473_665F_6675_7A7A; // "tsf_fuzz"
const DEFAULT_CASES: u64 = 3000;
/// Mixed into the seed for the stream that picks the lock options.
const LOCK_STREAM: u64 = 0x6C6F_636B_5F77_6169; // "lock_wai"
/// How long the lock is held against a write with a bound of 1 s or more.
const BRIEF_HOLD: Duration = Duration::from_millis(2);

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
    let config_error = expected_config_error(case);
    let entries_before = case.root.as_ref().map(|root| count_entries(root));
    match builder_for(case).build() {
        Ok(log) => {
            check_built(case, &log, config_error)?;
            write_and_check(case, &log)
        }
        Err(error) => check_refused(case, &error, config_error, entries_before),
    }
}

/// The builder with the case's options.
fn builder_for(case: &Case) -> Builder {
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
    builder
}

/// The configuration error the case must be refused with, if any.
fn expected_config_error(case: &Case) -> Option<ErrorKind> {
    if has_no_file_name(&case.path) {
        Some(ErrorKind::NoFileName)
    } else if case.max_bytes == Some(0) {
        Some(ErrorKind::ZeroMaxBytes)
    } else if case.max_files == Some(0) {
        Some(ErrorKind::ZeroMaxFiles)
    } else {
        None
    }
}

/// A case that built: none was expected to be refused, and `path()` is the path made
/// absolute, inside the case directory.
fn check_built(
    case: &Case,
    log: &SharedFile,
    config_error: Option<ErrorKind>,
) -> Result<(), String> {
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
    if !through_link && std::path::absolute(&case.path).ok().as_deref() != Some(log.path()) {
        return Err(format!(
            "path() {:?} is not the path made absolute",
            log.path()
        ));
    }
    Ok(())
}

/// Writes the case's lines (the first against a held lock, if the case says so): each
/// succeeds or fails cleanly, the stats count exactly that, and the last line written
/// ends the file.
fn write_and_check(case: &Case, log: &SharedFile) -> Result<String, String> {
    let mut written = 0;
    let mut failed = 0;
    let mut last = Vec::new();
    for i in 0..case.writes {
        last = format!("fuzz case {} line {i}\n", case.index).into_bytes();
        let contention = case
            .lock_timeout
            .filter(|_| case.contended && i == 0)
            .and_then(|timeout| Some((timeout, HeldLock::take(log.path(), timeout)?)));
        let result = (&*log).write_all(&last);
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

/// A case that was refused: the error names a path of the case, the expected kind for a
/// configuration error, and then nothing was created.
fn check_refused(
    case: &Case,
    error: &tracing_shared_file::Error,
    config_error: Option<ErrorKind>,
    entries_before: Option<usize>,
) -> Result<String, String> {
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
