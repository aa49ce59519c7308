//! Behaviour tests of the runner, one module per topic. Each test gives
//! its runner a unique name, which prefixes every thread the test starts,
//! and ends by checking that no such thread is left.

mod adversarial;
mod common;
mod events;
mod fatal;
mod lookup;
mod policies;
mod ready;
mod remove;
mod report;
mod restart;
mod shutdown;
mod significant;
mod start_stop;
mod starts;
mod stop_within;
mod stopping;
mod strategies;
mod tasks;
