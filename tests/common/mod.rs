//! Code shared by the integration tests: the record workload, the child-process writer,
//! child processes waited for with a deadline, the files of a rotated log, and the
//! verifier. Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod children;
pub mod immutable;
pub mod log_files;
pub mod verifier;
pub mod workload;

/// A command that runs only the test `entry` of the test binary at `exe` (this one, or a
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

/// Spawns `command`, waiting out ETXTBSY: a test binary copied for an unprivileged child
/// may still be open for writing in a child that another test thread forked while the
/// copy was being written, until that child execs.
pub fn spawn_retrying(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}
