//! Runnable programs for the worker family: the demo agent (`agent`), the
//! benchmark scenarios (`bench`), and a TCP echo server of blocking
//! threads that all stop on one kill (`echo`). See the README for the
//! commands.

#![forbid(unsafe_code)]

pub mod agent;
pub mod bench;
pub mod echo;

/// The README's examples, compiled and run as doctests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
