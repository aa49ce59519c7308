//! The dependency engine (crate docs are written in a later step).

#![forbid(unsafe_code)]

mod backoff;
mod config;
mod context;
mod engine;
mod error;
mod graph;
mod machine;
mod manifold;
mod report;
mod shell;

pub use backoff::{Jitter, NoJitter, SeededJitter, UNCAPPED_LIMIT};
pub use config::{EngineConfig, IsFatalFn, Metrics, NoMetrics, WorstErrorFn};
pub use context::{Context, ContextBuilder};
pub use engine::{Engine, EngineHandle, self_manifold};
pub use error::{
    Bounce, ConfigError, GetError, InstallError, Internal, Missing, ShuttingDown, Uninstall,
    UninstallError,
};
pub use manifold::{FilterFn, Manifold, Outputs};
pub use report::{
    KEY_ERROR, KEY_INPUTS, KEY_MANIFOLDS, KEY_NAME, KEY_START_ATTEMPTS, KEY_START_COUNT,
    KEY_STARTS_IN, KEY_STOPPING_FOR, KEY_STUCK, KEY_WHY,
};
