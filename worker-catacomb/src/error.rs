//! The catacomb's own errors: one type per way of going wrong, each naming
//! the catacomb it is about.
//!
//! Two of them, [`Dying`] and [`ForeignDying`], are the "dying-error
//! algebra" of Go's catacomb made typed: a catacomb's [`Dying`] error is how
//! its work says "I stopped because I was told to", and it must never be
//! mistaken for a failure, by this catacomb or by any other.

use std::fmt;

/// "This catacomb is dying": what [`Catacomb::err_dying`] returns once the
/// catacomb has been killed, and what [`Catacomb::add`] reports when it
/// refuses a worker for that reason.
///
/// Return it from the catacomb's work when its [`dying`] signal fires: the
/// catacomb recognises its own `Dying` (anywhere in an error's source
/// chain) and keeps the reason it was killed with, so the work's return
/// never masks it. Handing it to *another* catacomb is a bug, which that
/// catacomb records as [`ForeignDying`].
///
/// Only a catacomb can make one. Two `Dying` errors are equal when they
/// come from the same catacomb.
///
/// [`Catacomb::err_dying`]: crate::Catacomb::err_dying
/// [`Catacomb::add`]: crate::Catacomb::add
/// [`dying`]: crate::Catacomb::dying
#[derive(Debug, Clone, thiserror::Error)]
#[error("catacomb {name:?} is dying")]
pub struct Dying {
    pub(crate) name: String,
    /// The catacomb's id: never reused in this process, and a `Dying`
    /// keeps no reference to the catacomb.
    pub(crate) id: u64,
}

impl Dying {
    /// The name of the catacomb that is dying.
    pub fn catacomb(&self) -> &str {
        &self.name
    }
}

impl PartialEq for Dying {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Dying {}

/// A catacomb was killed with (or one of its workers ended with) the
/// [`Dying`] error of a *different* catacomb.
///
/// That is always a bug in the caller (juju/juju#16187): the other
/// catacomb's shutdown leaked into this one. It is recorded as an ordinary
/// error so that it is seen rather than silently swallowed. It does not
/// carry the foreign [`Dying`] in its source chain, so that the owner of
/// that `Dying` does not swallow it in turn when the error travels back up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad catacomb kill: catacomb {receiver:?} was given the dying error of catacomb {owner:?}")]
pub struct ForeignDying {
    /// The catacomb that was killed with the foreign error.
    pub receiver: String,
    /// The catacomb the dying error belongs to.
    pub owner: String,
}

/// [`Catacomb::err_dying`] was called while the catacomb was still alive,
/// so there is no "dying" to report.
///
/// Killing a catacomb with it records it as an ordinary error, as in Go:
/// a loop that returns `err_dying()` without having seen its [`dying`]
/// signal has a bug worth seeing.
///
/// [`Catacomb::err_dying`]: crate::Catacomb::err_dying
/// [`dying`]: crate::Catacomb::dying
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad catacomb err_dying: catacomb {catacomb:?} is still alive")]
pub struct StillAlive {
    /// The catacomb that was asked.
    pub catacomb: String,
}

/// Why [`Catacomb::add`] refused a worker.
///
/// [`Catacomb::add`]: crate::Catacomb::add
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// The catacomb is dying or dead. The worker was killed at once (not
    /// waited for: the caller still holds it and may wait). The source is
    /// the catacomb's own [`Dying`] error, so work that propagates this
    /// error with `?` does not mask the catacomb's kill reason.
    #[error("worker killed instead of added")]
    Dying(#[source] Dying),

    /// The worker is the catacomb itself, or a wrapper that forwards its
    /// completion to it. Binding it would make the catacomb's shutdown wait
    /// for itself (Go deadlocks here). Nothing was added and nothing was
    /// killed.
    #[error("cannot add catacomb {catacomb:?} to itself: its shutdown would wait for itself")]
    ItSelf {
        /// The catacomb's name.
        catacomb: String,
    },

    /// The worker cannot report its completion and no thread could be
    /// started to wait for it. The worker was killed, and the catacomb was
    /// killed with this error, since it can no longer account for it.
    #[error("cannot start a thread to watch a worker added to catacomb {catacomb:?}")]
    NoWatcher {
        /// The catacomb's name.
        catacomb: String,
        /// Why the thread could not be started.
        #[source]
        source: IoError,
    },
}

/// Why [`Catacomb::invoke`] failed. Whatever the reason, every worker of the
/// plan's `init` has been stopped (killed and waited for) when it returns.
///
/// [`Catacomb::invoke`]: crate::Catacomb::invoke
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The plan's name is empty (or only whitespace). The name is what the
    /// catacomb's thread, its logs and its errors are known by.
    #[error("invalid catacomb plan: the name is empty")]
    EmptyName,

    /// The thread that runs the plan's work could not be started.
    #[error("cannot start the work thread of catacomb {catacomb:?}")]
    Spawn {
        /// The catacomb's name.
        catacomb: String,
        /// Why the system refused.
        #[source]
        source: IoError,
    },
}

/// Why [`Catacomb::wait`] answered without waiting.
///
/// `wait` returns the catacomb's result, which is any error; this is the
/// one it adds. Match it with `err.downcast_ref::<WaitError>()`.
///
/// [`Catacomb::wait`]: crate::Catacomb::wait
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// `wait` was called, while the catacomb was not yet dead, on a thread
    /// that the catacomb runs and must see return before it can be dead:
    /// its work thread (from the work itself, or from code the finishing
    /// catacomb runs there) or one of the threads on which it kills,
    /// waits for or watches its workers (from a bound worker's `kill`,
    /// `wait`, `Drop` or completion callback). Waiting there would wait
    /// for itself forever (Go deadlocks). Nothing is recorded: the
    /// catacomb carries on, and a later `wait` from elsewhere returns its
    /// result.
    #[error(
        "cannot wait for catacomb {catacomb:?} on its own thread {thread:?}: it would wait for itself"
    )]
    OwnThread {
        /// The catacomb's name.
        catacomb: String,
        /// The name of the thread that called `wait`.
        thread: String,
    },
}

/// A clonable `std::io::Error` (errors of this crate are `Clone`, so they
/// can be handed to every caller of `wait`).
#[derive(Debug, Clone)]
pub struct IoError {
    kind: std::io::ErrorKind,
    message: String,
}

impl IoError {
    /// The kind of the original I/O error.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.kind
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> Self {
        IoError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}

#[cfg(test)]
mod tests {
    use super::*;
    use worker_core::Error;

    #[test]
    fn add_dying_keeps_the_dying_error_in_its_chain() {
        let dying = Dying {
            name: "c".into(),
            id: 7,
        };
        let err = Error::new(AddError::Dying(dying.clone()));
        assert_eq!(
            err.to_string(),
            "worker killed instead of added: catacomb \"c\" is dying"
        );
        assert_eq!(err.downcast_ref::<Dying>(), Some(&dying));
    }

    #[test]
    fn dying_errors_compare_by_catacomb() {
        let a = Dying {
            name: "same name".into(),
            id: 1,
        };
        let b = Dying {
            name: "same name".into(),
            id: 2,
        };
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
        assert_eq!(a.catacomb(), "same name");
    }

    /// Issue 10: every operation's error converts into the core error
    /// with `?`, and stays reachable by its type.
    #[test]
    fn each_operations_error_converts_into_the_core_error() {
        fn pass_on<E>(e: E) -> Result<(), Error>
        where
            E: std::error::Error + Send + Sync + 'static,
        {
            Err(e)?
        }
        let add = pass_on(AddError::ItSelf {
            catacomb: "c".into(),
        })
        .unwrap_err();
        assert!(matches!(
            add.downcast_ref::<AddError>(),
            Some(AddError::ItSelf { .. })
        ));
        let invoke = pass_on(InvokeError::EmptyName).unwrap_err();
        assert!(matches!(
            invoke.downcast_ref::<InvokeError>(),
            Some(InvokeError::EmptyName)
        ));
        let wait = pass_on(WaitError::OwnThread {
            catacomb: "c".into(),
            thread: "t".into(),
        })
        .unwrap_err();
        assert_eq!(
            wait.to_string(),
            "cannot wait for catacomb \"c\" on its own thread \"t\": it would wait for itself"
        );
        assert!(wait.is::<WaitError>());
    }

    #[test]
    fn foreign_dying_hides_the_foreign_error() {
        let err = Error::new(ForeignDying {
            receiver: "r".into(),
            owner: "o".into(),
        });
        assert!(!err.is::<Dying>());
        assert_eq!(
            err.to_string(),
            "bad catacomb kill: catacomb \"r\" was given the dying error of catacomb \"o\""
        );
    }
}
