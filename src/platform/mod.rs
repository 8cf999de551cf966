//! Everything that differs between operating systems lives below this module.
//!
//! Only Unix is implemented today; a Windows port adds a sibling module with the same
//! functions (file identity from `GetFileInformationByHandle`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(not(unix))]
compile_error!("tracing-shared-file supports Unix only for now; Windows support is planned");
