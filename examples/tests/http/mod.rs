//! Fetching from the observer in tests, with ureq: a real HTTP client, and
//! not the server's own library, so the two check each other.

// Each test file that includes this module uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

/// The families of the supervisors' `MetricsFacade` hooks that a run with
/// a start, a failure and a stop has.
pub(crate) const HOOK_FAMILIES: [&str; 4] = [
    "worker_starts_total",
    "worker_failures_total",
    "worker_stop_seconds",
    "worker_live",
];

/// The series `/metrics` documents, spelt out here so that dropping one
/// fails a test.
pub(crate) const FAMILIES: [&str; 12] = [
    "worker_engine_up",
    "worker_engine_dying",
    "worker_manifold_state",
    "worker_manifold_starts_total",
    "worker_manifold_start_attempts",
    "worker_manifold_failed",
    "worker_manifold_stuck",
    "worker_runner_worker_state",
    "worker_runner_worker_restarts",
    "worker_runner_worker_stuck",
    "worker_catacomb_state",
    "worker_catacomb_workers",
];

/// What a request got back.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) allow: Option<String>,
    pub(crate) body: String,
}

/// A client that returns 4xx and 5xx as answers (not errors), ignores any
/// proxy in the environment, and fails a request after 10 s.
pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Fetched {
    let mut response = response.expect("the observer answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    Fetched {
        status: response.status().as_u16(),
        content_type,
        allow,
        body: response.body_mut().read_to_string().unwrap(),
    }
}

/// `GET http://{address}{path}`.
pub(crate) fn get(client: &ureq::Agent, address: SocketAddr, path: &str) -> Fetched {
    answer(client.get(format!("http://{address}{path}")).call())
}

/// `GET`, expecting 200 with `content_type`; returns the body.
pub(crate) fn get_ok(
    client: &ureq::Agent,
    address: SocketAddr,
    path: &str,
    content_type: &str,
) -> String {
    let fetched = get(client, address, path);
    assert_eq!(fetched.status, 200, "GET {path}: {fetched:?}");
    assert!(
        fetched.content_type.starts_with(content_type),
        "GET {path}: content type {:?}, not {content_type}",
        fetched.content_type
    );
    fetched.body
}

/// `GET` with another `Host` header.
pub(crate) fn get_as(client: &ureq::Agent, address: SocketAddr, host: &str, path: &str) -> Fetched {
    answer(
        client
            .get(format!("http://{address}{path}"))
            .header("Host", host)
            .call(),
    )
}

/// `HEAD` or another method without a body.
pub(crate) fn request(
    client: &ureq::Agent,
    method: &str,
    address: SocketAddr,
    path: &str,
) -> Fetched {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{address}{path}"))
        .body(())
        .unwrap();
    answer(client.run(request))
}

/// The family names that the observer's `/metrics` documents, each checked
/// to be listed with its `TYPE` line.
pub(crate) fn assert_families(metrics: &str, families: impl IntoIterator<Item = &'static str>) {
    for family in families {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "{family} missing from /metrics:\n{metrics}"
        );
    }
}
