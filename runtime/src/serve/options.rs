//! What a server is given and tells: the apps, the options, and the events it reports.

use std::time::Duration;

use qyvol_common::Route;

use super::{BodyPace, RequestFailure};
use crate::engine;
use crate::request::{RunRequest, Wasm};

/// One handler to serve: its module, where it is mounted, and what each request gets.
#[derive(Debug)]
pub struct App {
    pub name: String,
    pub route: Route,
    pub wasm: Wasm,
    /// Environment, mounts, network grants and the per-request limits.
    pub request: RunRequest,
    /// The engine its code is for: `EngineConfig::decide(Purpose::Serving, …)`, as `launch`
    /// decided it when it judged the app's precompiled code.
    pub engine: engine::EngineConfig,
    /// The largest request body accepted (413 beyond).
    pub max_body: u64,
    /// Requests of this app in progress at once, from the moment their head is read (503
    /// beyond); `None` takes the server's [`ServeOptions::app_share`].
    pub concurrency: Option<u32>,
    /// How many requests one instance takes, for a WASI 0.3 handler (0.2 handlers and CGI
    /// modules get a fresh instance per request).
    pub reuse: super::Reuse,
}

/// One access-log line's worth: what was asked, what was answered, how long it took (to the
/// response's headers), and why it failed if it did.
#[derive(Debug)]
pub struct AccessEntry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration: Duration,
    /// The app that handled it (`None` when no route matched).
    pub app: Option<&'a str>,
    pub failure: Option<&'a RequestFailure>,
}

/// What the server tells its embedder: one call per request, and shutdown progress.
pub trait Events: Send + Sync {
    fn request(&self, entry: &AccessEntry<'_>);
    /// A stop signal arrived; `in_flight` requests are being drained.
    fn draining(&self, in_flight: usize);
}

/// How the server behaves around its handlers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Requests handled at once; more wait for a slot (and the pool is sized to match).
    pub max_concurrency: u32,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: u32,
    /// How fast a request's body must arrive (408 otherwise), before it waits for a slot.
    pub body: BodyPace,
    /// How long in-flight requests may take to finish after a stop signal.
    pub drain: Duration,
    /// Cookies of the host's own, taken out of every request before a guest sees it: the
    /// node's dashboard session (a browser sends a host's cookies to all its ports).
    pub hidden_cookies: Vec<String>,
    /// Requests in progress at once for an app that sets no `concurrency` (503 beyond), so
    /// that one app's slow clients cannot take every connection; `None`: no bound per app.
    pub app_share: Option<u32>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_concurrency: 1000,
            max_connections: 1024,
            body: BodyPace::default(),
            drain: Duration::from_secs(30),
            hidden_cookies: Vec::new(),
            app_share: None,
        }
    }
}
