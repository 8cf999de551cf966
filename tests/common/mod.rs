//! Code shared by the integration tests: the record workload, the child-process writer,
//! child processes waited for with a deadline, the files of a rotated log, and the
//! verifier. Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod children;
pub mod immutable;
pub mod log_files;
pub mod verifier;
pub mod workload;

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
