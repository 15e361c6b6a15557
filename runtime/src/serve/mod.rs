//! `qyvol serve`: HTTP handlers instantiated per request.
//!
//! Each app (a `wasi:http/proxy` component, or a WASI preview 1 module served CGI-style) is
//! compiled and linked once into a pre-instantiated template; every request gets a fresh store
//! and instance from it, on the pooling allocator when the address space allows (copy-on-write
//! memory images make that a few microseconds), with its own memory, time and fuel limits.
//! A failing request (trap, limit, bad output) becomes a 5xx for that request only.
//!
//! In front of the handlers: the number of open connections is bounded (one more is answered
//! 503 and closed), and a request's body is read whole, at a pace, before the request waits for
//! one of the `max_concurrency` handler slots, so slow clients hold connections, never slots.

mod body;
mod cgi;
mod component;

pub use body::BodyPace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use qyvol_common::Route;
use wasmtime::{Engine, Store};

use crate::engine::{self, EpochTicker};
pub(crate) use crate::host::Host;
use crate::inspect::WasmKind;
use crate::net::NetworkAccess;
use crate::run::{Compilation, RunRequest, Wasm};
use crate::{Outcome, Resource, RuntimeError, wasi};

/// The response body type of every handler.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

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
}

/// Why a request did not get the handler's own response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFailure {
    /// No app's route matches the path (404).
    NoRoute,
    /// The request body is larger than the app accepts (413).
    BodyTooLarge { limit: u64 },
    /// The request body had not arrived when its time ran out (408).
    BodyTimeout { limit: Duration, received: u64 },
    /// The request body arrived slower than the minimum rate, in bytes per second (408).
    BodyTooSlow {
        rate: u64,
        received: u64,
        elapsed: Duration,
    },
    /// The request is malformed for the handler, e.g. no `Host` (400).
    BadRequest(String),
    /// The handler ended badly: a trap, a limit, an exit code, output that is not a response.
    Handler(Outcome),
    /// The handler broke the protocol (no response, malformed CGI output) (500).
    Protocol(String),
    /// The server is stopping (503).
    ShuttingDown,
    /// Every connection the server keeps open is taken (503, and the connection is closed).
    TooManyConnections { limit: u32 },
    /// The app has as many requests in progress as it may (503).
    AppBusy { limit: u32 },
}

impl RequestFailure {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Handler(Outcome::TimedOut(_) | Outcome::FuelExhausted(_)) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Handler(Outcome::LimitExceeded {
                resource: Resource::AppMemory | Resource::NodeMemory,
                ..
            }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Handler(_) | Self::Protocol(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ShuttingDown | Self::TooManyConnections { .. } | Self::AppBusy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// Whether the connection ends with this answer: the client is too slow or one too many.
    fn closes(&self) -> bool {
        matches!(
            self,
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } | Self::TooManyConnections { .. }
        )
    }

    /// The short body sent to the client: nothing about the handler's insides.
    fn body(&self) -> String {
        match self {
            Self::NoRoute => "Not Found: no route matches this path\n".into(),
            Self::BodyTooLarge { limit } => format!(
                "Payload Too Large: the body may be at most {} bytes\n",
                limit
            ),
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } => {
                "Request Timeout: the body did not arrive in time\n".into()
            }
            Self::BadRequest(why) => format!("Bad Request: {why}\n"),
            Self::Handler(Outcome::TimedOut(_) | Outcome::FuelExhausted(_)) => {
                "Gateway Timeout: the handler ran past its time limit\n".into()
            }
            Self::Handler(Outcome::LimitExceeded {
                resource: Resource::AppMemory | Resource::NodeMemory,
                ..
            }) => "Service Unavailable: the requests in progress use all the memory allowed, try again later\n".into(),
            Self::Handler(_) | Self::Protocol(_) => {
                "Internal Server Error: the handler failed\n".into()
            }
            Self::ShuttingDown => "Service Unavailable: the server is stopping\n".into(),
            Self::TooManyConnections { .. } => {
                "Service Unavailable: too many open connections, try again later\n".into()
            }
            Self::AppBusy { .. } => {
                "Service Unavailable: this app is answering all the requests it may at once, try again later\n".into()
            }
        }
    }
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

/// How long a client may take to send the request that gets its 503 when it is one connection
/// too many, and how many such clients are answered at once (past that they are just closed).
const REFUSAL_TIME: Duration = Duration::from_secs(2);
const REFUSALS_AT_ONCE: usize = 64;

/// Apps, compiled and linked, and the route table that picks one per request. `qyvol serve`
/// builds a fixed set through [`Server`]; the node keeps one for its life and adds and removes
/// apps as they are deployed and removed. Every engine is made by `engine::pooled`.
pub struct Router {
    /// The engines apps are linked on, one per setting.
    engines: std::sync::Mutex<Vec<Arc<Runtime>>>,
    largest_memory: Option<u64>,
    apps: std::sync::RwLock<Arc<[Arc<Loaded>]>>,
    options: ServeOptions,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

/// An app with its template and the grants every request gets.
pub(crate) struct Loaded {
    name: String,
    route: Route,
    request: RunRequest,
    /// Opened once when the app is loaded; every request's guest gets these folders.
    mounts: wasi::Mounts,
    network: NetworkAccess,
    max_body: u64,
    /// Turns for requests in progress, and how many there are (`None`: unbounded).
    turns: Option<(tokio::sync::Semaphore, u32)>,
    handler: Handler,
    rt: Arc<Runtime>,
}

enum Handler {
    Component(component::Template),
    Cgi(cgi::Template),
}

/// An app compiled and linked on the router's engine, not yet taking requests.
pub struct LoadedApp(Arc<Loaded>);

impl std::fmt::Debug for LoadedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LoadedApp").field(&self.0.name).finish()
    }
}

impl Router {
    /// A router whose engines always time-slice (epoch interruption on, so any request can be
    /// stopped and a busy handler yields), with fuel metering only for apps that set fuel.
    pub fn new(options: ServeOptions) -> Self {
        Self {
            engines: Default::default(),
            largest_memory: None,
            apps: std::sync::RwLock::new(Arc::from(Vec::new())),
            options,
        }
    }

    fn runtime(&self, config: engine::EngineConfig) -> Result<Arc<Runtime>, RuntimeError> {
        if !config.epoch {
            return Err(RuntimeError::Engine(
                "a served app needs an engine with epoch interruption (Purpose::Serving)".into(),
            ));
        }
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = engines.iter().find(|rt| rt.config == config) {
            return Ok(rt.clone());
        }
        let pool = engine::PoolSize {
            instances: self.options.max_concurrency,
            largest_memory: self.largest_memory,
        };
        let (engine, pooling) = engine::pooled(config, pool)?;
        let rt = Arc::new(Runtime {
            ticker: config.epoch.then(|| EpochTicker::start(&engine)),
            engine,
            config,
            pooling,
        });
        engines.push(rt.clone());
        Ok(rt)
    }

    /// Compiles (or maps from the cache) and links `app`, and opens its mounts.
    pub fn load(&self, app: App, how: Compilation<'_>) -> Result<LoadedApp, RuntimeError> {
        let rt = self.runtime(app.engine)?;
        let mounts = wasi::Mounts::open(&app.request.mounts)?;
        let handler = match app.wasm.info.kind {
            WasmKind::Component => Handler::Component(component::Template::new(
                &rt.engine,
                &app.wasm,
                &app.request.limits,
                how,
            )?),
            WasmKind::CoreModule => Handler::Cgi(cgi::Template::new(
                &rt.engine,
                &app.wasm,
                &app.request.limits,
                how,
            )?),
        };
        crate::compile::finish_cache_writes();
        let turns = app
            .concurrency
            .or(self.options.app_share)
            .map(|n| (tokio::sync::Semaphore::new(n.max(1) as usize), n.max(1)));
        Ok(LoadedApp(Arc::new(Loaded {
            turns,
            mounts,
            network: NetworkAccess::of(&app.request),
            name: app.name,
            route: app.route,
            request: app.request,
            max_body: app.max_body,
            handler,
            rt,
        })))
    }

    /// The app whose route matches `path` most specifically.
    fn route(&self, path: &str) -> Option<Arc<Loaded>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.iter()
            .filter_map(|a| a.route.score(path).map(|s| (s, a)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, a)| a.clone())
    }

    /// Starts routing requests to `app`; refused when another app has its name or route.
    pub fn insert(&self, app: LoadedApp) -> Result<(), RuntimeError> {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = apps
            .iter()
            .find(|b| b.route == app.0.route || b.name == app.0.name)
        {
            return Err(RuntimeError::Serve(if b.name == app.0.name {
                format!("an app named `{}` is already served", b.name)
            } else {
                format!(
                    "`{}` and `{}` both ask for the route `{}`; give one of them another `http.route`",
                    b.name, app.0.name, app.0.route
                )
            }));
        }
        let mut next = apps.to_vec();
        next.push(app.0);
        *apps = Arc::from(next);
        Ok(())
    }

    /// Stops routing to the app named `name` (requests in flight finish); whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let before = apps.len();
        let next: Vec<_> = apps.iter().filter(|a| a.name != name).cloned().collect();
        *apps = Arc::from(next);
        apps.len() != before
    }

    /// Whether instances come from the pooling allocator (false: the address space could not
    /// be reserved and instances are allocated on demand).
    pub fn pooling(&self) -> bool {
        let engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        engines.iter().all(|rt| rt.pooling)
    }

    /// Serves on `listener` until `shutdown` first yields, then stops accepting and lets
    /// in-flight requests finish, up to `drain` or until `shutdown` yields again.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        events: Arc<dyn Events>,
        mut shutdown: tokio::sync::mpsc::Receiver<()>,
    ) -> Result<(), RuntimeError> {
        let shared = Arc::new(Shared {
            router: self.clone(),
            events: events.clone(),
            slots: tokio::sync::Semaphore::new(self.options.max_concurrency as usize),
            body: self.options.body,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
        });
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        // A client that never finishes its request headers does not hold a connection forever.
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        let mut refusing = http.clone();
        refusing.keep_alive(false).header_read_timeout(REFUSAL_TIME);
        let max_connections =
            crate::handles::connections_within_budget(self.options.max_connections);
        let mut accept_failures = crate::handles::Throttle::default();
        let connections = Arc::new(tokio::sync::Semaphore::new(max_connections as usize));
        let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_AT_ONCE));
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.recv() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving,
                        // and say so once in a while rather than at every retry.
                        if let Some(times) = accept_failures.due() {
                            tracing::warn!(error = %e, times, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let io = hyper_util::rt::TokioIo::new(stream);
            let shared = shared.clone();
            let Ok(open) = connections.clone().try_acquire_owned() else {
                // One too many: read its request, answer 503, close; if even the refusals are
                // all taken, close it at once.
                let Ok(refusal) = refusals.clone().try_acquire_owned() else {
                    continue;
                };
                let service = hyper::service::service_fn(move |req| {
                    let answer = shared.refuse(&req, max_connections);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let conn = refusing.serve_connection(io, service);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIME, conn).await;
                    drop(refusal);
                });
                continue;
            };
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(shared.handle(req, peer).await) }
            });
            let conn = graceful.watch(http.serve_connection(io, service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(open);
            });
        }
        drop(listener);
        shared.slots.close();
        events.draining(shared.in_flight.load(std::sync::atomic::Ordering::Relaxed));
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(self.options.drain) => {
                tracing::warn!("in-flight requests did not finish within the drain time");
            }
            _ = shutdown.recv() => {}
        }
        Ok(())
    }
}

/// A fixed set of apps on one engine, for `qyvol serve`.
pub struct Server {
    router: Arc<Router>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("pooling", &self.pooling())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Compiles (or maps from the cache) and links every app. Routes must differ.
    pub fn new(
        apps: Vec<App>,
        how: Compilation<'_>,
        options: ServeOptions,
    ) -> Result<Self, RuntimeError> {
        for (i, a) in apps.iter().enumerate() {
            if let Some(b) = apps[..i].iter().find(|b| b.route == a.route) {
                return Err(RuntimeError::Serve(format!(
                    "`{}` and `{}` both ask for the route `{}`; give one of them another `http.route`",
                    b.name, a.name, a.route
                )));
            }
        }
        let largest_memory = apps
            .iter()
            .map(|a| a.request.limits.memory)
            .try_fold(0u64, |m, l| l.map(|l| m.max(l)));
        let router = Router {
            largest_memory,
            ..Router::new(options)
        };
        // The engine is made even with no apps, so `pooling` tells the truth.
        router.runtime(engine::EngineConfig::decide(
            engine::Purpose::Serving,
            &crate::Limits::default(),
        ))?;
        for app in apps {
            let loaded = router.load(app, how)?;
            router.insert(loaded)?;
        }
        Ok(Self {
            router: Arc::new(router),
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.router.pooling()
    }

    /// Instantiates the app routed for `path` once, in a fresh store with its grants, and drops
    /// the instance without calling it: a check that it instantiates, and what instantiation
    /// alone costs a request (`benches/instantiate.rs`). `false` when no app has the route.
    pub async fn instantiate(&self, path: &str) -> Result<bool, RuntimeError> {
        let Some(app) = self.router.route(path) else {
            return Ok(false);
        };
        match &app.handler {
            Handler::Component(t) => t.instantiate(&app.rt, &app).await,
            Handler::Cgi(t) => t.instantiate(&app.rt, &app).await,
        }
        .map_err(RuntimeError::engine)?;
        Ok(true)
    }

    /// Answers one request in this process, as a connection would once it has read it: the
    /// app routed for its path, a fresh instance, the whole response. For embedders, and for
    /// `benches/instantiate.rs`, which measures what one request costs without sockets.
    pub async fn respond(&self, req: Request<Bytes>) -> Response<Bytes> {
        let path = req.uri().path().to_string();
        let app = self.router.route(&path);
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        let response = match &app {
            None => Err(RequestFailure::NoRoute),
            Some(app) => match &app.handler {
                Handler::Component(t) => t.handle(&app.rt, app, req).await,
                Handler::Cgi(t) => t.handle(&app.rt, app, req, peer).await,
            },
        }
        .unwrap_or_else(|f| error_response(&f));
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Response::from_parts(parts, body)
    }

    /// Serves on `listener` until SIGINT or SIGTERM, then stops accepting, lets in-flight
    /// requests finish (up to `drain`, or until a second signal) and returns.
    pub fn run(
        self,
        listener: std::net::TcpListener,
        events: Arc<dyn Events>,
    ) -> Result<(), RuntimeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("qyvol-serve")
            .build()
            .map_err(RuntimeError::engine)?;
        let result = rt.block_on(async {
            listener
                .set_nonblocking(true)
                .map_err(RuntimeError::engine)?;
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(RuntimeError::engine)?;
            let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::engine)?;
            let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::engine)?;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = sigint.recv() => {}
                        _ = sigterm.recv() => {}
                    }
                    if tx.send(()).await.is_err() {
                        break;
                    }
                }
            });
            self.router.serve(listener, events, rx).await
        });
        rt.shutdown_timeout(Duration::from_millis(100));
        result
    }
}

/// The engine a request's store is made on, the settings it was made with, and the clock
/// that drives its epochs.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) config: engine::EngineConfig,
    pooling: bool,
    #[allow(dead_code)] // kept for its Drop: the clock runs while the engine is used
    ticker: Option<EpochTicker>,
}

/// Whether the cookie of a `name=value` pair is one of `hidden` (names compared ignoring
/// ASCII case).
fn is_hidden(pair: &str, hidden: &[String]) -> bool {
    let name = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
    hidden.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Removes the cookies named in `hidden` from `Cookie` headers (dropping a header left empty).
fn hide_cookies(headers: &mut hyper::HeaderMap, hidden: &[String]) {
    if hidden.is_empty() || !headers.contains_key(hyper::header::COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            let pairs: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|kv| !kv.is_empty() && !is_hidden(kv, hidden))
                .collect();
            (!pairs.is_empty()).then(|| pairs.join("; "))
        })
        .collect();
    headers.remove(hyper::header::COOKIE);
    for k in kept {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&k) {
            headers.append(hyper::header::COOKIE, v);
        }
    }
}

/// The largest `Set-Cookie` a guest's answer passes on (what browsers keep of one cookie), and
/// the most of them together in one answer.
const MAX_SET_COOKIE: usize = 4096;
const MAX_SET_COOKIES: usize = 16 * 1024;

/// Removes a guest's `Set-Cookie` for the cookies named in `hidden` (a guest cannot log the
/// host's dashboard out, or plant a session, through the browser they share), and those past
/// [`MAX_SET_COOKIE`] or [`MAX_SET_COOKIES`]: an answer cannot load the browser with cookies
/// that every other server of the host is then sent.
fn filter_set_cookies(headers: &mut hyper::HeaderMap, hidden: &[String]) {
    if !headers.contains_key(hyper::header::SET_COOKIE) {
        return;
    }
    let mut total = 0;
    let kept: Vec<hyper::header::HeaderValue> = headers
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            if v.len() > MAX_SET_COOKIE
                || total + v.len() > MAX_SET_COOKIES
                || is_hidden(text.split(';').next().unwrap_or_default(), hidden)
            {
                return false;
            }
            total += v.len();
            true
        })
        .cloned()
        .collect();
    headers.remove(hyper::header::SET_COOKIE);
    for v in kept {
        headers.append(hyper::header::SET_COOKIE, v);
    }
}

struct Shared {
    router: Arc<Router>,
    events: Arc<dyn Events>,
    slots: tokio::sync::Semaphore,
    body: BodyPace,
    in_flight: std::sync::atomic::AtomicUsize,
}

impl Shared {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        use std::sync::atomic::Ordering;
        let start = Instant::now();
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let app = self.router.route(&path);
        /// Counts the request while it is handled, also if the client goes away mid-way.
        struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let counted = InFlight(&self.in_flight);
        let result = match &app {
            None => Err(RequestFailure::NoRoute),
            Some(app) => self.dispatch(app, req, peer).await,
        };
        drop(counted);
        let (response, failure) = match result {
            Ok(mut r) => {
                filter_set_cookies(r.headers_mut(), &self.router.options.hidden_cookies);
                (r, None)
            }
            Err(f) => (error_response(&f), Some(f)),
        };
        self.events.request(&AccessEntry {
            method: &method,
            path: &path,
            status: response.status().as_u16(),
            duration: start.elapsed(),
            app: app.as_deref().map(|a| a.name.as_str()),
            failure: failure.as_ref(),
        });
        response
    }

    /// The answer to a request on a connection over `limit`: 503, logged like any request.
    fn refuse<B>(&self, req: &Request<B>, limit: u32) -> Response<Body> {
        let failure = RequestFailure::TooManyConnections { limit };
        let response = error_response(&failure);
        self.events.request(&AccessEntry {
            method: req.method().as_str(),
            path: req.uri().path(),
            status: response.status().as_u16(),
            duration: Duration::ZERO,
            app: None,
            failure: Some(&failure),
        });
        response
    }

    async fn dispatch(
        &self,
        app: &Arc<Loaded>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, RequestFailure> {
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > app.max_body) {
            return Err(RequestFailure::BodyTooLarge {
                limit: app.max_body,
            });
        }
        // Taken before the body is read: a slow body holds one of the app's turns, not more.
        let _turn = match &app.turns {
            Some((turns, limit)) => Some(
                turns
                    .try_acquire()
                    .map_err(|_| RequestFailure::AppBusy { limit: *limit })?,
            ),
            None => None,
        };
        let (mut parts, body) = req.into_parts();
        hide_cookies(&mut parts.headers, &self.router.options.hidden_cookies);
        // The whole body first, so a slot is only ever taken by a complete request.
        let body = body::read(body, app.max_body, self.body).await?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| RequestFailure::ShuttingDown)?;
        let req = Request::from_parts(parts, body);
        match &app.handler {
            Handler::Component(t) => t.handle(&app.rt, app, req).await,
            Handler::Cgi(t) => t.handle(&app.rt, app, req, peer).await,
        }
    }
}

/// A fresh store for one request of `app`, with its limits applied.
pub(crate) fn new_store<W: Send + 'static>(
    rt: &Runtime,
    app: &Loaded,
    wasi: W,
) -> Result<Store<Host<W>>, RequestFailure> {
    let limits = &app.request.limits;
    let host = Host::new(wasi, app.network.clone(), limits.memory, limits.timeout)
        .observed(&app.request, None);
    let mut store = Store::new(&rt.engine, host);
    store.limiter(|h| &mut h.limiter);
    let internal = |e: wasmtime::Error| RequestFailure::Protocol(format!("{e:#}"));
    if rt.config.fuel {
        store
            .set_fuel(limits.fuel.unwrap_or(u64::MAX))
            .map_err(internal)?;
    }
    if rt.config.epoch {
        // At each tick: past the deadline, interrupt; otherwise yield, so one busy handler
        // cannot hold a worker thread other requests need.
        store.epoch_deadline_callback(|ctx| {
            Ok(if ctx.data().must_end() {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
    }
    Ok(store)
}

/// Why a handler's run, ended without (or before finishing) a response, failed the request.
pub(crate) fn failure_of(outcome: Outcome) -> RequestFailure {
    match outcome {
        Outcome::Exited(0) => {
            RequestFailure::Protocol("the handler returned without setting a response".into())
        }
        Outcome::Exited(code) => RequestFailure::Protocol(format!(
            "the handler exited with code {code} before sending a response"
        )),
        other => RequestFailure::Handler(other),
    }
}

fn error_response(f: &RequestFailure) -> Response<Body> {
    use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
    let mut r = Response::new(full(f.body()));
    *r.status_mut() = f.status();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if f.closes() {
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

pub(crate) fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
