//! Tools for testing code built on the worker family: a fake clock, test
//! workers, check helpers and mocks.

#![forbid(unsafe_code)]

mod clock;
pub mod dependency;

pub use clock::TestClock;
