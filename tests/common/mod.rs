//! Code shared by the integration tests: the record workload, the child-process writer,
//! and the verifier. Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod verifier;
pub mod workload;
