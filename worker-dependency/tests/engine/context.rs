//! What start functions see of their inputs (Go's `Context`: `Get` works
//! only inside the start function, and only for declared inputs).

use std::sync::Arc;

use worker_core::{Error, Passive};
use worker_dependency::{Context, GetError, Manifold, Missing, Outputs};

use crate::common::*;

#[derive(Clone, Debug, PartialEq)]
struct Db(&'static str);

#[test]
fn outputs_are_read_by_name_and_type() {
    let h = Harness::new("dep-context-typed");
    let db = Manifold::new(|_| Ok(Passive::new())).output(|_: &Passive, out| {
        out.put(Db("primary"));
        out.put(5432_u16);
    });
    let (tx, rx) = crossbeam_channel::unbounded();
    let user = Manifold::new(move |ctx| {
        let db: Db = ctx.get("db")?;
        let port: u16 = ctx.get("db")?;
        tx.send((db, port)).unwrap();
        Ok(Passive::new())
    })
    .inputs(["db"]);
    h.engine.install("db", db).unwrap();
    h.expect_started(&["db"]);
    h.engine.install("user", user).unwrap();
    h.expect_started(&["user"]);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), (Db("primary"), 5432));
    h.stop().unwrap();
}

#[test]
fn each_way_of_failing_has_its_own_error() {
    let h = Harness::new("dep-context-errors");
    h.engine
        .install("quiet", Manifold::new(|_| Ok(Passive::new())))
        .unwrap();
    h.engine.install("typed", Manifold::constant(1_u8)).unwrap();
    h.expect_started(&["quiet", "typed"]);
    let (tx, rx) = crossbeam_channel::unbounded();
    let probe = Manifold::new(move |ctx| {
        tx.send(vec![
            ctx.get::<u8>("undeclared").map_err(Error::from),
            ctx.get::<u8>("absent").map_err(Error::from),
            ctx.get::<u8>("quiet").map_err(Error::from),
            ctx.get::<u16>("typed")
                .map(|v| v as u8)
                .map_err(Error::from),
            ctx.require("quiet").map(|_| 0).map_err(Error::from),
        ])
        .unwrap();
        Ok(Passive::new())
    })
    .inputs(["absent", "quiet", "typed"]);
    h.engine.install("probe", probe).unwrap();
    let results = rx.recv_timeout(LONG).unwrap();
    let texts: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(v) => format!("ok {v}"),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            "\"undeclared\" not declared: dependency not available",
            "\"absent\" not running: dependency not available",
            "\"quiet\" not exposed: dependency not available",
            "\"typed\" offers no output of type u16 (it offers: u8)",
            "ok 0",
        ]
    );
    assert!(results[0].as_ref().unwrap_err().is::<Missing>());
    assert!(results[1].as_ref().unwrap_err().is::<Missing>());
    assert!(results[2].as_ref().unwrap_err().is::<Missing>());
    assert!(!results[3].as_ref().unwrap_err().is::<Missing>());
    h.stop().unwrap();
}

#[test]
fn a_wrong_type_is_a_failure_that_is_retried_not_a_missing_input() {
    let h = Harness::new("dep-context-wrong-type");
    h.engine.install("n", Manifold::constant(1_u8)).unwrap();
    h.expect_started(&["n"]);
    let m = Manifold::new(|ctx| {
        let _: String = ctx.get("n")?;
        Ok(Passive::new())
    })
    .inputs(["n"]);
    h.engine.install("m", m).unwrap();
    h.expect_stopped(&["m"]);
    assert_eq!(h.state("m"), "starting");
    h.advance(ERROR_DELAY, 1);
    h.expect_stopped(&["m"]);
    h.stop().unwrap();
}

#[test]
fn a_context_kept_past_its_start_function_has_expired() {
    let h = Harness::new("dep-context-expired");
    h.engine.install("n", Manifold::constant(1_u8)).unwrap();
    h.expect_started(&["n"]);
    let (tx, rx) = crossbeam_channel::unbounded();
    let m = Manifold::new(move |ctx: &Context| {
        tx.send(ctx.clone()).unwrap();
        Ok(Passive::new())
    })
    .inputs(["n"]);
    h.engine.install("m", m).unwrap();
    h.expect_started(&["m"]);
    let kept = rx.recv_timeout(LONG).unwrap();
    assert!(matches!(kept.get::<u8>("n"), Err(GetError::Expired)));
    assert!(matches!(kept.require("n"), Err(GetError::Expired)));
    h.stop().unwrap();
}

#[test]
fn the_abort_signal_fires_when_the_engine_stops() {
    let h = Harness::new("dep-context-abort");
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let m = Manifold::new(move |ctx| {
        entered_tx.send(()).unwrap();
        let _ = ctx.abort().receiver().recv();
        assert!(ctx.is_aborted());
        Err::<Passive, _>(Error::msg("gave up"))
    });
    h.engine.install("m", m).unwrap();
    entered.recv_timeout(LONG).unwrap();
    h.stop().unwrap();
    let _ = Arc::new(());
}

#[test]
fn a_start_function_can_return_what_it_offers() {
    let h = Harness::new("dep-context-offering");
    let (tx, rx) = crossbeam_channel::unbounded();
    h.engine
        .install_all([
            (
                "db",
                Manifold::offering(|_| Ok((Passive::new(), Outputs::new().with(Db("pooled"))))),
            ),
            (
                "user",
                Manifold::new(move |ctx| {
                    tx.send(ctx.get::<Db>("db")?).unwrap();
                    Ok(Passive::new())
                })
                .inputs(["db"]),
            ),
        ])
        .unwrap();
    h.expect_started(&["db"]);
    h.advance(BOUNCE_DELAY, 1);
    h.expect_started(&["user"]);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Db("pooled"));
    h.stop().unwrap();
}
