//! The restarting runner of named workers (being built).

#![forbid(unsafe_code)]
// The shell that drives the state machine lands in the next commit;
// until then most of the machine is unused outside its tests.
#![allow(dead_code, unused_imports)]

mod error;
mod machine;
mod params;
mod policy;
mod status;

pub use error::{Dying, EmptyId, InvalidParams, RestartIntensityExceeded};
pub use params::{DEFAULT_START_THREADS, RunnerParams};
pub use policy::{
    Backoff, ErrorPredicate, ErrorRanking, Intensity, JitterSource, RestartPolicy, RestartType,
    SplitMix64, WorkerOptions,
};
pub use status::{Stage, WaitingFor};
