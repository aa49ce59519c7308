//! Behaviour tests of the runner, one module per topic. Each test gives
//! its runner a unique name, which prefixes every thread the test starts,
//! and ends by checking that no such thread is left.

mod common;
mod fatal;
mod lookup;
mod remove;
mod restart;
mod start_stop;
