//! `Error` with the other error types a service uses: boxed standard errors
//! and (feature `anyhow`) `anyhow::Error`, in both directions, with `?`
//! where the compiler allows it; chains, `is` and `downcast_ref` survive.

use std::error::Error as StdError;
use std::io;

use worker_core::{Error, NotFound};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A library error with a source, as `thiserror` users write them.
#[derive(Debug, thiserror::Error)]
#[error("dialing the controller")]
struct Dial {
    #[source]
    cause: io::Error,
}

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused")
}

/// A standard error's chain, outermost first.
fn links<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
}

/// The texts of a standard error's chain, outermost first.
fn texts(error: &(dyn StdError + 'static)) -> Vec<String> {
    links(error).map(|e| e.to_string()).collect()
}

/// The first `E` in a standard error's chain.
fn find<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    links(error).find_map(|e| e.downcast_ref::<E>())
}

fn fails_with(error: Error) -> Result<(), Error> {
    Err(error)
}

#[test]
fn question_mark_boxes_a_sole_error_as_itself() {
    fn legacy() -> Result<(), BoxError> {
        fails_with(Error::new(NotFound::new("db")))?;
        Ok(())
    }
    let boxed = legacy().unwrap_err();
    assert_eq!(boxed.downcast_ref::<NotFound>().unwrap().id, "db");
    assert_eq!(boxed.to_string(), "worker \"db\" not found");
}

#[test]
fn a_boxed_error_keeps_its_source_chain() {
    let boxed: BoxError = Error::new(Dial { cause: refused() }).into();
    assert!(boxed.is::<Dial>());
    assert_eq!(
        texts(&*boxed),
        ["dialing the controller", "connection refused"]
    );
    assert!(find::<io::Error>(&*boxed).is_some());
}

#[test]
fn a_shared_error_is_boxed_as_a_wrapper_with_the_original_one_step_down() {
    let kept = Error::new(NotFound::new("db"));
    let boxed: BoxError = kept.clone().into();
    assert!(
        boxed.downcast_ref::<NotFound>().is_none(),
        "it could not be moved"
    );
    assert_eq!(find::<NotFound>(&*boxed).unwrap().id, "db");
    assert_eq!(boxed.to_string(), "worker \"db\" not found");
    assert_eq!(
        format!("{boxed:?}"),
        "Error(\"worker \\\"db\\\" not found\")"
    );
    // Back again: the very same error.
    assert!(Error::from_boxed(boxed).same(&kept));
}

#[test]
fn context_layers_box_as_a_chain_whether_shared_or_not() {
    let make = || {
        Error::new(Dial { cause: refused() })
            .context("starting \"api\"")
            .context("agent")
    };
    let want = [
        "agent",
        "starting \"api\"",
        "dialing the controller",
        "connection refused",
    ];
    let sole: BoxError = make().into();
    assert_eq!(texts(&*sole), want);
    assert!(find::<Dial>(&*sole).is_some());
    // A shared context layer is copied, not wrapped: the same chain.
    let kept = make();
    let shared: BoxError = kept.clone().into();
    assert_eq!(texts(&*shared), want);
    assert!(find::<io::Error>(&*shared).is_some());
    assert_eq!(kept.to_string(), want.join(": "));
}

#[test]
fn messages_box_as_their_text() {
    let sole: BoxError = Error::msg("lease lost").into();
    assert_eq!(texts(&*sole), ["lease lost"]);
    let kept = Error::msg("lease lost");
    let shared: BoxError = kept.clone().into();
    assert_eq!(texts(&*shared), ["lease lost"]);
}

#[test]
fn the_send_only_and_plain_boxes_convert_too() {
    fn send_only() -> Result<(), Box<dyn StdError + Send>> {
        fails_with(Error::new(NotFound::new("a")))?;
        Ok(())
    }
    fn plain() -> Result<(), Box<dyn StdError>> {
        fails_with(Error::new(NotFound::new("b")))?;
        Ok(())
    }
    assert_eq!(
        send_only()
            .unwrap_err()
            .downcast_ref::<NotFound>()
            .unwrap()
            .id,
        "a"
    );
    assert_eq!(
        plain().unwrap_err().downcast_ref::<NotFound>().unwrap().id,
        "b"
    );
}

#[test]
fn apis_that_take_a_box_take_an_error() {
    let io = io::Error::other(Error::new(NotFound::new("db")).context("lookup"));
    let inner = io.get_ref().unwrap();
    assert_eq!(inner.to_string(), "lookup");
    assert_eq!(find::<NotFound>(inner).unwrap().id, "db");
}

#[test]
fn a_box_comes_back_with_its_error_first() {
    let boxed: BoxError = Box::new(Dial { cause: refused() });
    let err = Error::from_boxed(boxed).context("agent");
    assert_eq!(
        err.to_string(),
        "agent: dialing the controller: connection refused"
    );
    assert!(err.is::<Dial>());
    assert!(err.is::<io::Error>());
    assert_eq!(err.chain().count(), 3);
}

#[test]
fn a_sole_box_round_trips_as_the_same_box() {
    let boxed: BoxError = Box::new(NotFound::new("db"));
    let address = boxed.downcast_ref::<NotFound>().unwrap() as *const NotFound;
    let err = Error::from_boxed(boxed);
    assert_eq!(
        err.downcast_ref::<NotFound>().unwrap() as *const NotFound,
        address
    );
    let back: BoxError = err.into();
    assert_eq!(
        back.downcast_ref::<NotFound>().unwrap() as *const NotFound,
        address
    );
}

#[test]
fn question_mark_still_takes_every_standard_error() {
    fn open() -> Result<(), Error> {
        Err(refused())?;
        Ok(())
    }
    /// Generic code bound only by the standard traits still converts,
    /// whichever features are on.
    fn wrap<E: StdError + Send + Sync + 'static>(error: E) -> Error {
        error.into()
    }
    assert!(open().unwrap_err().is::<io::Error>());
    let err = wrap(Dial { cause: refused() });
    assert!(err.is::<Dial>() && err.is::<io::Error>());
    assert_eq!(err.chain().count(), 2);
}

#[cfg(feature = "anyhow")]
mod with_anyhow {
    use super::*;

    fn fails_with_anyhow(error: anyhow::Error) -> anyhow::Result<()> {
        Err(error)
    }

    #[test]
    fn question_mark_into_anyhow_moves_a_sole_error_out() {
        fn app() -> anyhow::Result<()> {
            fails_with(Error::new(NotFound::new("db")))?;
            Ok(())
        }
        let err = app().unwrap_err();
        assert_eq!(err.downcast_ref::<NotFound>().unwrap().id, "db");
        assert!(err.is::<NotFound>());
        assert_eq!(err.to_string(), "worker \"db\" not found");
    }

    #[test]
    fn context_layers_become_anyhows_own() {
        let err: anyhow::Error = Error::new(Dial { cause: refused() })
            .context("agent")
            .into();
        assert_eq!(err.to_string(), "agent");
        assert_eq!(
            format!("{err:#}"),
            "agent: dialing the controller: connection refused"
        );
        // anyhow's downcast sees through its own context layers.
        assert!(err.downcast_ref::<Dial>().is_some());
        assert!(err.is::<Dial>());
        assert!(err.chain().any(|e| e.is::<io::Error>()));
    }

    #[test]
    fn a_shared_error_goes_into_anyhow_wrapped_and_comes_back_the_same() {
        let kept = Error::new(NotFound::new("db"));
        fn app(kept: &Error) -> anyhow::Result<()> {
            fails_with(kept.clone())?;
            Ok(())
        }
        let err = app(&kept).unwrap_err();
        assert!(
            err.downcast_ref::<NotFound>().is_none(),
            "it could not be moved"
        );
        let found = err.chain().find_map(|e| e.downcast_ref::<NotFound>());
        assert_eq!(found.unwrap().id, "db");
        assert_eq!(err.to_string(), "worker \"db\" not found");
        fn ours(err: anyhow::Error) -> Result<(), Error> {
            fails_with_anyhow(err)?;
            Ok(())
        }
        assert!(ours(err).unwrap_err().same(&kept));
    }

    #[test]
    fn question_mark_from_anyhow_keeps_the_chain() {
        fn start() -> Result<(), Error> {
            fails_with_anyhow(anyhow::Error::new(Dial { cause: refused() }).context("agent"))?;
            Ok(())
        }
        let err = start().unwrap_err();
        assert_eq!(
            err.to_string(),
            "agent: dialing the controller: connection refused"
        );
        assert!(err.is::<Dial>());
        assert!(err.is::<io::Error>());
        assert_eq!(
            err.downcast_ref::<Dial>().unwrap().cause.kind(),
            io::ErrorKind::ConnectionRefused
        );
        let err = Error::from_anyhow(anyhow::anyhow!("plain {}", 1)).context("outer");
        assert_eq!(err.to_string(), "outer: plain 1");
    }

    #[test]
    fn a_sole_anyhow_error_round_trips_as_itself() {
        let err = anyhow::Error::new(NotFound::new("db"));
        let address = err.downcast_ref::<NotFound>().unwrap() as *const NotFound;
        let ours = Error::from(err);
        assert_eq!(
            ours.downcast_ref::<NotFound>().unwrap() as *const NotFound,
            address
        );
        let back = anyhow::Error::from(ours);
        assert_eq!(
            back.downcast_ref::<NotFound>().unwrap() as *const NotFound,
            address
        );
    }

    #[test]
    fn an_error_from_anyhow_boxes_as_its_original() {
        let ours = Error::from(anyhow::Error::new(NotFound::new("db")));
        let boxed: BoxError = ours.into();
        assert_eq!(boxed.downcast_ref::<NotFound>().unwrap().id, "db");
    }

    #[test]
    fn messages_and_boxes_go_into_anyhow_readably() {
        let err: anyhow::Error = Error::msg("lease lost").into();
        assert_eq!(format!("{err:#}"), "lease lost");
        let boxed: BoxError = Box::new(NotFound::new("db"));
        let err: anyhow::Error = Error::from_boxed(boxed).into();
        let found = err.chain().find_map(|e| e.downcast_ref::<NotFound>());
        assert_eq!(found.unwrap().id, "db");
    }
}
