//! The engine's typed errors: the control errors a start function or a
//! worker returns to steer the engine, and the errors the engine's own
//! methods return.

/// "Not now": an input this manifold needs is not available.
///
/// Return it (or any error whose chain contains it, such as the
/// [`GetError`] of a missing input) from a start function or a worker, and
/// the engine leaves the manifold stopped, without counting a failure,
/// until one of its inputs starts or stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dependency not available")]
pub struct Missing;

/// "Restart me": the worker wants a fresh start after the engine's bounce
/// delay (for example, because its configuration changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("restart immediately")]
pub struct Bounce;

/// "Remove me": the manifold is done for good; the engine uninstalls it
/// and restarts its dependents (which then find it missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("resource permanently unavailable")]
pub struct Uninstall;

/// Why [`Context::get`](crate::Context::get) could not hand out an input.
///
/// The variants that mean "not available right now" carry [`Missing`] in
/// their source chain, so a start function can simply propagate them with
/// `?`: the engine then waits for an input to change instead of retrying.
#[derive(Debug, Clone)]
pub enum GetError {
    /// The context was used after its start function returned.
    Expired,
    /// The name is not among the manifold's declared inputs ([`Missing`]).
    NotDeclared {
        /// The name asked for.
        name: String,
    },
    /// The input is declared but has no running worker ([`Missing`]).
    NotRunning {
        /// The name asked for.
        name: String,
    },
    /// The input is running but offers no outputs at all ([`Missing`]).
    NotExposed {
        /// The name asked for.
        name: String,
    },
    /// The input offers outputs, but none of the type asked for. This is a
    /// programming error, so it is not [`Missing`]: the engine treats it as
    /// a failed start and retries with backoff, logging it.
    WrongType {
        /// The name asked for.
        name: String,
        /// The type asked for.
        wanted: &'static str,
        /// The types the input offers.
        offered: Vec<&'static str>,
    },
    /// The input could not give its output: only test contexts built with
    /// [`ContextBuilder::failing`](crate::ContextBuilder::failing) return
    /// this, with the error they were given as the source.
    Failed {
        /// The name asked for.
        name: String,
        /// The error the input failed with.
        source: worker_core::Error,
    },
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Expired => {
                f.write_str("expired context: cannot be used outside the start function")
            }
            GetError::NotDeclared { name } => write!(f, "{name:?} not declared"),
            GetError::NotRunning { name } => write!(f, "{name:?} not running"),
            GetError::NotExposed { name } => write!(f, "{name:?} not exposed"),
            GetError::WrongType {
                name,
                wanted,
                offered,
            } => write!(
                f,
                "{name:?} offers no output of type {wanted} (it offers: {})",
                offered.join(", ")
            ),
            GetError::Failed { name, .. } => write!(f, "{name:?} failed"),
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::NotDeclared { .. }
            | GetError::NotRunning { .. }
            | GetError::NotExposed { .. } => Some(&Missing),
            GetError::Failed { source, .. } => Some(source.as_std()),
            GetError::Expired | GetError::WrongType { .. } => None,
        }
    }
}

impl GetError {
    pub(crate) fn not_declared(name: &str) -> Self {
        GetError::NotDeclared {
            name: name.to_owned(),
        }
    }

    pub(crate) fn not_running(name: &str) -> Self {
        GetError::NotRunning {
            name: name.to_owned(),
        }
    }

    pub(crate) fn not_exposed(name: &str) -> Self {
        GetError::NotExposed {
            name: name.to_owned(),
        }
    }
}

/// An [`EngineConfig`](crate::EngineConfig) the engine cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The engine needs a name: it names its threads and its log lines.
    #[error("invalid config: name is empty")]
    EmptyName,
    /// A backoff factor must be 0 (no backoff) or a finite number >= 1.
    #[error("invalid config: backoff_factor {0} must be 0 or a finite number >= 1")]
    BackoffFactor(f64),
}

/// Why a manifold (or a set of them) could not be installed. Nothing is
/// changed when installing fails. Turned into a
/// [`worker_core::Error`] (with `?`), it keeps [`ShuttingDown`] in its
/// source chain, so `err.is::<ShuttingDown>()` finds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// Manifold names must not be empty.
    #[error("cannot install a manifold with an empty name")]
    EmptyName,
    /// A manifold of this name is installed already.
    #[error("{0:?} manifold already installed")]
    AlreadyInstalled(String),
    /// The same name appears twice in one `install_all`.
    #[error("{0:?} appears twice in the manifolds to install")]
    DuplicateName(String),
    /// An input name is empty or listed twice.
    #[error("cannot install {name:?}: input {input:?} is empty or listed twice")]
    BadInput {
        /// The manifold being installed.
        name: String,
        /// The offending input.
        input: String,
    },
    /// Installing would close a dependency cycle. `path` starts and ends
    /// with the manifold being installed; each name needs the next one.
    #[error("cannot install {name:?}: dependency cycle {}", path.join(" -> "))]
    Cycle {
        /// The manifold being installed.
        name: String,
        /// The cycle, in "needs" order, e.g. `["a", "b", "a"]`.
        path: Vec<String>,
    },
    /// The engine is stopping or stopped.
    #[error("{0}")]
    ShuttingDown(#[from] ShuttingDown),
}

/// Why [`Engine::uninstall`](crate::Engine::uninstall) failed. Turned
/// into a [`worker_core::Error`] (with `?`), it keeps [`ShuttingDown`]
/// and [`WouldDeadlock`](worker_core::WouldDeadlock) in its source chain,
/// so `is` finds them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UninstallError {
    /// No manifold of that name is installed.
    #[error("{0:?} manifold not installed")]
    NotInstalled(String),
    /// The engine is stopping or stopped.
    #[error("{0}")]
    ShuttingDown(#[from] ShuttingDown),
    /// Called from the start (or output) function of the manifold to
    /// uninstall, which the uninstall would wait for forever.
    #[error("{0}")]
    WouldDeadlock(#[from] worker_core::WouldDeadlock),
}

/// The engine is stopping or has stopped, and takes no more requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("engine {0:?} is shutting down")]
pub struct ShuttingDown(pub String);

/// The engine found its own state inconsistent (a bug in this crate). It
/// stops, and `wait` returns this error in preference to any other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal engine error: {0}")]
pub struct Internal(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use worker_core::Error;

    #[test]
    fn control_error_texts_match_go() {
        assert_eq!(Missing.to_string(), "dependency not available");
        assert_eq!(Bounce.to_string(), "restart immediately");
        assert_eq!(Uninstall.to_string(), "resource permanently unavailable");
    }

    #[test]
    fn missing_inputs_read_like_go_and_are_missing() {
        let err = Error::from(GetError::not_running("db"));
        assert_eq!(
            err.to_string(),
            "\"db\" not running: dependency not available"
        );
        assert!(err.is::<Missing>());
        let err = Error::from(GetError::not_declared("x"));
        assert_eq!(
            err.to_string(),
            "\"x\" not declared: dependency not available"
        );
        assert!(err.is::<Missing>());
        let wrong = Error::from(GetError::WrongType {
            name: "db".into(),
            wanted: "u32",
            offered: vec!["String", "i64"],
        });
        assert!(!wrong.is::<Missing>());
        assert_eq!(
            wrong.to_string(),
            "\"db\" offers no output of type u32 (it offers: String, i64)"
        );
    }

    #[test]
    fn cycle_error_names_the_path() {
        let err = InstallError::Cycle {
            name: "a".into(),
            path: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(
            err.to_string(),
            "cannot install \"a\": dependency cycle a -> b -> a"
        );
    }
}
