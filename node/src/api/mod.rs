//! The node's API: JSON over HTTP (`/api/v1/...`), on a Unix socket only its user can open
//! and, when asked, on TCP. On TCP every call but `/healthz` needs the node's token
//! (`Authorization: Bearer`, compared in constant time), and the `Host` must be one the node
//! answers to (loopback, the bound address, `--api-host`), so a web page cannot reach it
//! through DNS rebinding. On both, a call that changes state must say `Content-Type:
//! application/json` and must not come from another site (`Origin`, `Sec-Fetch-Site`), so a
//! page's form or `fetch` cannot deploy or stop anything.
//!
//! Here: the routes and what every call shares; `guards` checks each request first,
//! `calls` and `streams` answer them, `listen` binds the listeners and `serve` serves
//! them until the node stops.

mod calls;
mod guards;
mod listen;
mod serve;
mod sign;
mod state;
mod streams;

use std::time::Duration;

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::answer::status_of;
use crate::{Node, NodeError};
use calls::{
    deploy, info, inspect, list, login_link, metrics, proof, remove, restart, rollback, shutdown,
    start, stop,
};
use guards::guard;
use streams::{events, logs};

pub use listen::{Listeners, bind};
pub use serve::serve;

/// The most a request body may be (a deploy request is a few KiB).
const MAX_BODY: usize = 1024 * 1024;
/// How long a call may take to be answered (a deploy may pull and compile).
const CALL_TIME: Duration = Duration::from_secs(30);
const DEPLOY_TIME: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Api {
    node: Node,
    /// `Some` on TCP: the host names (lowercase, without port) the node answers to.
    tcp_hosts: Option<Vec<String>>,
}

impl IntoResponse for NodeError {
    fn into_response(self) -> Response {
        let (status, code) = status_of(&self);
        refuse(status, code, &self.to_string())
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": message, "code": code })),
    )
        .into_response()
}

/// The API's routes, with its guards; `tcp_hosts` is `Some` for a TCP listener, which serves
/// the dashboard too.
fn routes(node: Node, tcp_hosts: Option<Vec<String>>) -> axum::Router {
    let dashboard = tcp_hosts
        .is_some()
        .then(|| crate::dashboard::routes(node.clone()));
    let api = Api { node, tcp_hosts };
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/apps", get(list).post(deploy))
        .route("/api/v1/apps/{name}", get(inspect).delete(remove))
        .route("/api/v1/apps/{name}/stop", post(stop))
        .route("/api/v1/apps/{name}/start", post(start))
        .route("/api/v1/apps/{name}/restart", post(restart))
        .route("/api/v1/apps/{name}/rollback", post(rollback))
        .route("/api/v1/apps/{name}/logs", get(logs))
        .route("/api/v1/apps/{name}/kv", get(state::buckets))
        .route("/api/v1/apps/{name}/kv/{bucket}", get(state::keys))
        .route(
            "/api/v1/apps/{name}/kv/{bucket}/{key}",
            get(state::get)
                .put(state::put)
                .delete(state::delete)
                // A value of up to 1 MiB (the default quota) sent as hex, with its JSON.
                .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_BODY + 4096)),
        )
        .route(
            "/api/v1/volumes",
            get(state::volumes).post(state::create_volume),
        )
        .route(
            "/api/v1/volumes/{name}",
            get(state::volume).delete(state::remove_volume),
        )
        .route("/api/v1/events", get(events))
        .route("/api/v1/node", get(info))
        .route("/api/v1/node/stop", post(shutdown))
        .route(crate::access::PROOF_PATH, get(proof))
        .route("/api/v1/dashboard/login", post(login_link))
        .with_state(api.clone());
    let router = match dashboard {
        Some(d) => router.merge(d),
        None => router,
    };
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(api, guard))
}

/// How long a call may take to be answered: a deploy may pull and compile.
pub(crate) fn call_time(method: &Method, path: &str) -> Duration {
    if (path == "/api/v1/apps" || path == "/ui/deploy") && method == Method::POST {
        DEPLOY_TIME
    } else {
        CALL_TIME
    }
}
