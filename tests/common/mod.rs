//! Code shared by the integration tests: the record workload, the child-process writer,
//! child processes waited for with a deadline, forked children, the files of a rotated
//! log, and the verifier. Each test binary uses a different part of it; tests/README.md
//! says which part is for what.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod backoff;
pub mod children;
pub mod fleet;
#[cfg(unix)]
pub mod forked;
pub mod immutable;
#[cfg(unix)]
pub mod inotify;
pub mod log_files;
pub mod verifier;
pub mod workload;

/// The full test name of `entry`, a test function of the module whose `module_path!()`
/// is `module_path`: the path without the crate's name. So a child selects the same test
/// whether the module is a test binary of its own or one module of an area's binary.
pub fn entry_name(module_path: &str, entry: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{entry}"),
        None => entry.to_string(),
    }
}

/// `entry!(name)`: the full test name of the test function `name` of the calling module
/// (checked to exist at compile time), for [`entry_command`] and the child spawners.
macro_rules! entry {
    ($entry:ident) => {{
        let _: fn() = $entry;
        $crate::common::entry_name(module_path!(), stringify!($entry))
    }};
}
pub(crate) use entry;

/// A command that runs only the test `entry` (a full test name) of the test binary at `exe` (this one, or a
/// copy of it), as the child processes of the multi-process tests do.
pub fn entry_command_of(exe: &std::path::Path, entry: &str) -> std::process::Command {
    let mut command = std::process::Command::new(exe);
    command.args(["--exact", entry, "--nocapture", "--test-threads=1"]);
    command
}

/// [`entry_command_of`] this test binary.
pub fn entry_command(entry: &str) -> std::process::Command {
    entry_command_of(&std::env::current_exe().expect("current_exe"), entry)
}

/// Whether a spawn failed because the executable is open for writing (Unix's ETXTBSY).
fn is_text_busy(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    return error.raw_os_error() == Some(libc::ETXTBSY);
    #[cfg(not(unix))]
    return {
        let _ = error;
        false
    };
}

/// Spawns `command`, waiting out ETXTBSY: a test binary copied for an unprivileged child
/// may still be open for writing in a child that another test thread forked while the
/// copy was being written, until that child execs.
pub fn spawn_retrying(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if is_text_busy(&e) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}
