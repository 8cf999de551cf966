//! Every bad configuration gets a clear `Error` from `build()`, naming the path and cause.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tracing_shared_file::{Error, ErrorKind, SharedFile};

fn build(path: impl AsRef<Path>) -> Result<SharedFile, Error> {
    SharedFile::builder(path).build()
}

#[track_caller]
fn assert_message_names(err: &Error, path: &Path, cause: &str) {
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "message {message:?} does not name {}",
        path.display()
    );
    assert!(
        message.contains(cause),
        "message {message:?} does not give the cause {cause:?}"
    );
}

#[test]
fn zero_max_bytes_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let err = SharedFile::builder(&path).max_bytes(0).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ZeroMaxBytes);
    assert_message_names(&err, &path, "max_bytes must be greater than 0");
    assert!(!path.exists(), "nothing is created for a bad configuration");
}

#[test]
fn zero_max_files_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let err = SharedFile::builder(&path).max_files(0).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ZeroMaxFiles);
    assert_message_names(&err, &path, "max_files must be greater than 0");
}

#[test]
fn a_directory_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = build(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IsDirectory);
    assert_message_names(&err, dir.path(), "is a directory");
}

#[test]
fn a_path_without_a_file_name_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let trailing_slash = format!("{}/app.log/", dir.path().display());
    let trailing_dot = format!("{}/app.log/.", dir.path().display());
    let dot_dot = dir.path().join("logs/..");
    for path in [
        PathBuf::from(""),
        PathBuf::from("/"),
        dot_dot,
        PathBuf::from(trailing_slash),
        PathBuf::from(trailing_dot),
    ] {
        let err = build(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoFileName, "for {path:?}");
        let cause = if path.as_os_str().is_empty() {
            "the log path is empty: give the path of a file"
        } else {
            "has no file name: give the path of a file"
        };
        assert_message_names(&err, &path, cause);
    }
}

#[test]
fn missing_parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/app.log");
    let log = build(&path).unwrap();
    assert!(path.is_file());
    assert!(dir.path().join("a/b/c/app.log.lock").is_file());
    assert_eq!(log.path(), path);
}

#[test]
fn a_parent_that_cannot_be_created_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let err = build(file.join("logs/app.log")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CreateDirectory);
    assert_message_names(&err, &file.join("logs"), "for the log cannot be created");
    // The path first, then the cause, then what would fix it.
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("directory `{}`", file.join("logs").display()))
            && message.ends_with(
                "something that is not a directory is in the way: move it, or choose another path"
            ),
        "{message}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "carries the io::Error"
    );
}

#[test]
fn a_directory_at_the_lock_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::create_dir(dir.path().join("app.log.lock")).unwrap();
    let err = build(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ForeignLockFile);
    assert_message_names(&err, &dir.path().join("app.log.lock"), "is a directory");
}

#[test]
fn a_relative_path_is_made_absolute() {
    let dir = tempfile::tempdir_in(".").unwrap();
    let name = dir.path().file_name().unwrap();
    let relative = Path::new(name).join("app.log");
    let log = build(&relative).unwrap();
    assert!(log.path().is_absolute());
    assert_eq!(
        log.path(),
        std::fs::canonicalize(dir.path()).unwrap().join("app.log")
    );
}

// ---- Permission errors: run as an unprivileged user, since root bypasses permissions.

const CHILD_ENV: &str = "TSF_BUILD_AS_UNPRIVILEGED";
const NOBODY: u32 = 65534;

/// Child side: build at the given path and print the outcome for the parent.
#[test]
fn unprivileged_build_entry() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        match build(PathBuf::from(path)) {
            Ok(_) => println!("\nRESULT ok"),
            Err(err) => println!("\nRESULT {:?} | {err}", err.kind()),
        }
    }
}

fn running_as_root() -> bool {
    let probe = tempfile::tempfile().unwrap();
    probe.metadata().unwrap().uid() == 0
}

/// A world-readable scratch directory, so that the unprivileged user can reach into it.
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs `build(path)` without the privilege to bypass permissions, and returns
/// `(kind, message)`. As root this is a child process running as `nobody`; otherwise
/// the test itself is unprivileged.
fn build_unprivileged(path: &Path, scratch: &Path) -> Option<(String, String)> {
    if !running_as_root() {
        return build(path)
            .err()
            .map(|e| (format!("{:?}", e.kind()), e.to_string()));
    }
    use std::os::unix::process::CommandExt;
    // `nobody` may not be able to reach the test binary where it was built; a copy in the
    // world-readable scratch directory always works.
    let exe = scratch.join("test-binary");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = common::spawn_retrying(
        common::entry_command_of(&exe, &common::entry!(unprivileged_build_entry))
            .env(CHILD_ENV, path)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .and_then(|child| child.wait_with_output())
    .expect("run the test binary as nobody");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("child printed no result:\n{stdout}"));
    let (kind, message) = result.split_once(" | ")?;
    Some((kind.to_string(), message.to_string()))
}

#[test]
fn a_lock_file_without_permission_is_reported() {
    let scratch = shared_tempdir();
    let logs = scratch.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // Only the owner may create files here, and the test (or its child) is not root.
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (kind, message) =
        build_unprivileged(&logs.join("app.log"), scratch.path()).expect("build must fail");
    assert_eq!(kind, "OpenLockFile");
    assert!(
        message.contains(&logs.join("app.log.lock").display().to_string()),
        "{message}"
    );
    assert!(message.contains("Permission denied"), "{message}");
}

#[test]
fn a_log_file_without_permission_is_reported() {
    let scratch = shared_tempdir();
    let logs = scratch.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let lock = logs.join("app.log.lock");
    let log = logs.join("app.log");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(&log, "earlier lines\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o444)).unwrap();
    let (kind, message) = build_unprivileged(&log, scratch.path()).expect("build must fail");
    assert_eq!(kind, "OpenLogFile");
    assert!(message.contains(&log.display().to_string()), "{message}");
    assert!(message.contains("Permission denied"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "earlier lines\n",
        "nothing already written is lost"
    );
}

#[test]
fn a_parent_without_permission_is_reported() {
    let scratch = shared_tempdir();
    let locked = scratch.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (kind, message) =
        build_unprivileged(&locked.join("logs/app.log"), scratch.path()).expect("build must fail");
    assert_eq!(kind, "CreateDirectory");
    assert!(
        message.contains(&locked.join("logs").display().to_string()),
        "{message}"
    );
    assert!(message.contains("Permission denied"), "{message}");
}
