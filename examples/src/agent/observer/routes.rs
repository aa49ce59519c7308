//! What each path serves: a pure function of the request's method and
//! path, and the engine's state now. No HTTP here, so tests call it
//! directly; `server` turns a [`Reply`] into a response.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use worker_core::{Error, catch_panic};
use worker_dependency::Engine;

use super::metrics::{Collect, Exposition, report_metrics};
use super::{assets, graph, tree};

/// Every path served, with what it holds (the 404 page lists them).
pub(crate) const ENDPOINTS: [(&str, &str); 9] = [
    ("/", "the live page"),
    ("/observer.js", "the page's script"),
    ("/observer.css", "the page's style"),
    ("/tree.json", "the supervision tree, as the page draws it"),
    ("/report.json", "the engine's full report"),
    ("/graph.json", "the dependency graph, as JSON"),
    ("/graph.dot", "the dependency graph, in Graphviz DOT"),
    ("/graph.svg", "the dependency graph, laid out as SVG"),
    ("/metrics", "metrics, in the Prometheus text format"),
];

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// A response, before HTTP.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type,
            body: body.into(),
        }
    }

    fn text(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            content_type: TEXT,
            body: body.into_bytes(),
        }
    }

    fn failed(what: &str, error: impl std::fmt::Display) -> Reply {
        tracing::warn!(error = %error, "observer: {what} failed");
        Reply::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} failed: {error}\n"),
        )
    }
}

/// What the observer reads, and the extra metric sources it was given.
pub(crate) struct Routes {
    engine: Engine,
    metrics: Vec<Arc<dyn Collect>>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("engine", &self.engine)
            .field("metrics", &self.metrics.len())
            .finish()
    }
}

impl Routes {
    pub(crate) fn new(engine: Engine, metrics: Vec<Arc<dyn Collect>>) -> Routes {
        Routes { engine, metrics }
    }

    /// The reply to `method path` (`path` without its query), asked of
    /// `host` (the `Host` header). Only `GET` and `HEAD` are served (the
    /// server leaves the body out for `HEAD`), and only to a loopback
    /// `Host`: see [`loopback_host`].
    pub(crate) fn respond(&self, method: &Method, host: Option<&str>, path: &str) -> Reply {
        if !host.is_some_and(loopback_host) {
            return Reply::text(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "the observer answers requests for the loopback only, not for host {:?}\n",
                    host.unwrap_or("")
                ),
            );
        }
        if method != Method::GET && method != Method::HEAD {
            return Reply::text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not served here: only GET and HEAD\n"),
            );
        }
        match path {
            "/" | "/index.html" => Reply::ok("text/html; charset=utf-8", assets::INDEX_HTML),
            "/observer.js" => Reply::ok("text/javascript; charset=utf-8", assets::SCRIPT),
            "/observer.css" => Reply::ok("text/css; charset=utf-8", assets::STYLE),
            "/tree.json" => json(&tree::tree(&self.engine.report())),
            "/report.json" => json(&self.engine.report()),
            "/graph.json" => json(&self.engine.graph_json()),
            "/graph.dot" => Reply::ok("text/vnd.graphviz; charset=utf-8", self.engine.dot()),
            "/graph.svg" => match graph::svg(&self.engine.dot()) {
                Ok(svg) => Reply::ok("image/svg+xml", svg),
                Err(e) => Reply::failed("drawing the graph", e),
            },
            "/metrics" => match self.metrics() {
                Ok(text) => Reply::ok("text/plain; version=0.0.4; charset=utf-8", text),
                Err(e) => Reply::failed("collecting metrics", e),
            },
            _ => {
                let mut body = format!("not found: {path}\n\nserved here:\n");
                for (path, what) in ENDPOINTS {
                    body.push_str(&format!("  {path:<14} {what}\n"));
                }
                Reply::text(StatusCode::NOT_FOUND, body)
            }
        }
    }

    /// The report's families, then every extra source's; a source that
    /// panics or fails fails the scrape, with its reason.
    fn metrics(&self) -> Result<String, Error> {
        let mut out = Exposition::new();
        report_metrics(&tree::tree(&self.engine.report()), &mut out).map_err(Error::new)?;
        for source in &self.metrics {
            catch_panic(
                || "a metrics source".into(),
                || source.collect(&mut out).map_err(Error::new),
            )?;
        }
        Ok(out.into_text())
    }
}

/// Whether a `Host` header names the loopback: `localhost`, `127.x.x.x` or
/// `[::1]`, with or without a port.
///
/// A loopback socket is not enough on its own: a web page from elsewhere
/// can point its own host name at 127.0.0.1 (DNS rebinding) and so have
/// the browser fetch the observer's pages as its own. Such a request names
/// that host in `Host`, and is refused.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1] or [::1]:port
        Some(rest) => rest.split_once(']').map_or(rest, |(name, _)| name),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn json(value: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Reply::ok(JSON, body),
        Err(e) => Reply::failed("writing JSON", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_answered() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "localhost",
            "LocalHost:99",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(host), "{host} is the loopback");
        }
        for host in [
            "",
            "example.com",
            "evil.example:8080",
            "10.0.0.1:80",
            "[::2]:80",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
        ] {
            assert!(!loopback_host(host), "{host} is not the loopback");
        }
    }
}
