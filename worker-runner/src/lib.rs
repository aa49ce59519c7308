//! The restarting runner of named workers (documentation being written).

#![forbid(unsafe_code)]

mod error;
mod machine;
mod params;
mod policy;
mod report;
mod runner;
mod shell;
mod status;

pub use error::{CalledFromLoop, Dying, EmptyId, InvalidParams, RestartIntensityExceeded};
pub use params::{DEFAULT_START_THREADS, RunnerParams};
pub use policy::{
    Backoff, ErrorPredicate, ErrorRanking, Intensity, JitterSource, RestartPolicy, RestartType,
    SplitMix64, WorkerOptions,
};
pub use report::{KEY_REASON, KEY_STUCK, KEY_WORKERS};
pub use runner::Runner;
pub use status::{Stage, WaitingFor};
