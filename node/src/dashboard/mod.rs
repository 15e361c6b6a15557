//! The web dashboard, served by the node on its TCP listener beside the API: pages rendered
//! here (maud), refreshed in place by htmx, live logs by server-sent events, charts drawn as
//! SVG on the server. Its assets are compiled into the binary.
//!
//! As safe as the API: a one-time link from `qyvol dashboard` (never the token, which the
//! browser is never asked for) opens a session that rides in the path (`/s/<session>/...`),
//! never in a cookie: a browser sends a host's cookies to every port of it, so any local server
//! the owner visits would receive a cookie. Every request that changes state must also carry
//! the session's CSRF token in a header (htmx sends it); the API's guards (Host allow-list,
//! cross-site refusal, body limits) run first; every page has a Content-Security-Policy that
//! allows only the node's own scripts and styles, and guest text is escaped before it reaches
//! the page.
//!
//! Here: the routes and the state every handler shares. `session` lets requests in, `page`
//! is how handlers answer, and the rest are the views' handlers: `apps`, `logs`, `pulls`
//! (images), `upload` (deploys) and `assets`.

mod apps;
mod assets;
mod logs;
mod page;
mod pulls;
mod session;
mod text;
mod upload;
mod views;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};

use crate::Node;
use apps::{
    act, app_page, apps_page, apps_part, charts_part, overview_page, overview_part, status_part,
};
use assets::asset;
use logs::{STREAMS_AT_ONCE, log_stream};
use pulls::{PULLS_AT_ONCE, Pull, images_page, images_part, pull, pull_part, remove_image};
use session::{Session, gate, login, login_page, logout};
use upload::{MAX_UPLOAD, deploy, deploy_page};

struct Dashboard {
    node: Node,
    streams: Arc<tokio::sync::Semaphore>,
    pulling: Arc<tokio::sync::Semaphore>,
    sessions: Mutex<HashMap<String, Session>>,
    pulls: Mutex<BTreeMap<u64, Arc<Pull>>>,
    next_pull: AtomicU64,
}

type Dash = Arc<Dashboard>;

/// The session a request was let in with.
#[derive(Clone)]
struct Sess {
    id: String,
    csrf: String,
}

impl Sess {
    /// Where the session's pages are.
    fn base(&self) -> String {
        format!("/s/{}", self.id)
    }
}

/// The dashboard, for the node's TCP listener: every path the API does not own. The gate
/// wraps the router, so it can take the session out of the path before the routes are matched.
pub(crate) fn routes(node: Node) -> axum::Router {
    let dash = Arc::new(Dashboard {
        node,
        streams: Arc::new(tokio::sync::Semaphore::new(STREAMS_AT_ONCE)),
        pulling: Arc::new(tokio::sync::Semaphore::new(PULLS_AT_ONCE)),
        sessions: Mutex::default(),
        pulls: Mutex::default(),
        next_pull: AtomicU64::new(1),
    });
    let router = axum::Router::new()
        .route("/", get(overview_page))
        .route("/login", get(login_page))
        .route("/login/{code}", get(login))
        .route("/logout", post(logout))
        .route("/apps", get(apps_page))
        .route("/apps/{name}", get(app_page))
        .route("/images", get(images_page))
        .route("/deploy", get(deploy_page))
        .route("/assets/{file}", get(asset))
        .route("/ui/overview", get(overview_part))
        .route("/ui/apps", get(apps_part))
        .route("/ui/apps/{name}/status", get(status_part))
        .route("/ui/apps/{name}/charts", get(charts_part))
        .route("/ui/apps/{name}/logs", get(log_stream))
        .route("/ui/apps/{name}/{action}", post(act))
        .route("/ui/images", get(images_part))
        .route("/ui/images/pull", post(pull))
        .route("/ui/images/remove", post(remove_image))
        .route("/ui/pulls/{id}", get(pull_part))
        .route(
            "/ui/deploy",
            post(deploy).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .with_state(dash.clone());
    let gated = axum::middleware::from_fn_with_state(dash, gate);
    axum::Router::new().fallback_service(tower_layer::Layer::layer(&gated, router))
}

/// Whether `path` is the dashboard's (the API keeps `/api/`, `/metrics` and `/healthz`).
pub(crate) fn owns(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/metrics" || path == "/healthz")
}

/// The dashboard's cookies, which the app port hides from guests.
pub(crate) const COOKIES: [&str; 2] = ["qyvol_session", "qyvol_lang"];

/// The first value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}
