//! Behaviour tests of the dependency engine, one module per topic. They
//! port the scenarios of Go's engine tests (juju/worker v3,
//! `dependency/engine_test.go` and friends) and pin every place where we
//! deliberately differ.
//!
//! Time only moves through the `TestClock`; real time appears only as the
//! 10 s failure timeout. Every test gives its engine a unique name and ends
//! by checking that none of its threads is left.

mod common;

mod adversarial;
mod bounce;
mod context;
mod errors;
mod install;
mod random;
mod ready;
mod report;
mod self_manifold;
mod shutdown;
mod tasks;
