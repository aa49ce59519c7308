//! The HTTP side: hyper's HTTP/1 server on a current-thread tokio runtime
//! that the observer's one thread owns and drives.
//!
//! The runtime is the thread's own, so the observer costs that one thread
//! and, when the thread ends, the runtime is dropped with every connection
//! task: nothing outlives the observer. [`serve`] is the async part alone,
//! to move onto a runtime the agent shares once it has one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use worker_core::{Error, Tomb};

use super::routes::Routes;

/// How long open connections get to finish once the observer is asked to
/// stop; past it, they are dropped with the runtime.
const GRACE: Duration = Duration::from_secs(1);

/// The observer's thread: serves `listener` until `tomb` is dying.
pub(crate) fn run(
    listener: std::net::TcpListener,
    routes: Arc<Routes>,
    tomb: &Tomb,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::new(e).context("starting the observer's runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::new(e).context("registering the observer's socket"))?;
        serve(listener, routes, tomb).await
    })
}

/// Accepts connections and serves each on a task of its own until `tomb`
/// is dying; then stops accepting, lets open connections finish their
/// request (for at most [`GRACE`]) and returns.
///
/// An accept that fails for one connection only (reset or aborted by the
/// client, interrupted) is skipped; any other accept error ends the
/// observer with that error.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    routes: Arc<Routes>,
    tomb: &Tomb,
) -> Result<(), Error> {
    let graceful = GracefulShutdown::new();
    let dying = tomb.until_dying();
    tokio::pin!(dying);
    loop {
        tokio::select! {
            () = &mut dying => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let routes = routes.clone();
                    let service = service_fn(move |request| {
                        let reply = respond(&routes, &request);
                        async move { Ok::<_, Infallible>(reply) }
                    });
                    let connection = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(%peer, error = %e, "observer: connection ended");
                        }
                    });
                }
                Err(e) if per_connection(&e) => {
                    tracing::debug!(error = %e, "observer: a connection failed before it was accepted");
                }
                Err(e) => return Err(Error::new(e).context("observer: accepting connections")),
            },
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE) => {
            tracing::debug!("observer: dropping connections still open after the grace period");
        }
    }
    Ok(())
}

/// Accept errors that concern one connection, not the listener.
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

fn respond(routes: &Routes, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let reply = routes.respond(request.method(), host, request.uri().path());
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    // Everything here is live: never serve it from a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if reply.status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}
