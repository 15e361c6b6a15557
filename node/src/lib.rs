//! The Qyvol node: one process per machine that keeps deployed apps running.
//!
//! - [`Node::deploy`] opens what the operator named through `qyvol-launch` (the same call as
//!   `qyvol run` and `qyvol serve`, so the same trust boundary: a bundle's or image's manifest
//!   grants nothing, its precompiled code runs only when the deploy allows it), copies the module
//!   into the node's module store by digest, and commits the app's record before answering.
//! - Command apps (`runtime: wasi`) run as instances supervised under Docker's restart policies;
//!   HTTP apps (`runtime: wasi-http`) are routed on the app port by `qyvol serve`'s
//!   [`Router`], an instance per request, nothing held while idle.
//! - State lives in [`state::Db`]; at start the node reconciles it: what should run runs again.
//! - The API ([`api`]) is JSON over HTTP on a Unix socket (0600) and, when asked, on TCP with a
//!   token.

pub mod access;
mod answer;
pub mod api;
mod appstate;
pub mod client;
mod dashboard;
mod deploy;
mod health;
mod lifecycle;
mod logs;
mod metrics;
mod observe;
mod paths;
pub mod project;
mod run;
mod series;
mod spec;
pub mod state;
mod supervise;
mod update;
mod volumes;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use qyvol_common::Home;
use qyvol_launch::LaunchError;
use qyvol_runtime::serve::{Router, ServeOptions};
use qyvol_runtime::{Cache, MemoryGauge, Stop};

use paths::load_or_make_token;

pub use appstate::{KvKeys, KvValue};
pub use logs::LogLine;
pub use paths::{NodeLock, Paths};
pub use state::{AppKind, AppRecord, Desired, RestartPolicy, State};
pub use volumes::{VolumeView, is_volume_name};
pub use wire::{AppView, DeployRequest, Event, NodeInfo, SecretValue};

/// Why a node call failed; each maps to an HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No app by that name (404).
    #[error("no app is named `{0}`")]
    NotFound(String),
    /// Something else that does not exist: a key, a volume (404).
    #[error("{0}")]
    Missing(String),
    /// An app by that name exists (409).
    #[error(
        "an app named `{0}` already exists: remove it first (`qyvol rm {0}`) or deploy with another `--name`"
    )]
    Exists(String),
    /// The request cannot be done as asked (409), e.g. removing a running app without force.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed or names something unusable (400).
    #[error("{0}")]
    BadRequest(String),
    /// Opening or preparing the target failed (422).
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// Too many deploys at once (429).
    #[error("the node is busy with {0} deploys; try again shortly")]
    Busy(usize),
    /// The state database failed (500).
    #[error("the node's state: {0}")]
    State(String),
    /// Anything else of the node's own (500).
    #[error("{0}")]
    Internal(String),
}

impl NodeError {
    fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

/// How a node is started (`qyvol node` flags).
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Where deployed HTTP apps are served.
    pub http: SocketAddr,
    /// The API and the dashboard on TCP too (token required), when set.
    pub api: Option<SocketAddr>,
    /// Host names (besides loopback and the bound address) the TCP API answers to.
    pub api_hosts: Vec<String>,
    /// Each app's log is rotated past this many bytes (two files are kept).
    pub log_max: u64,
    /// Requests handled at once on the app port.
    pub max_concurrency: u32,
    /// Connections the app port keeps open at once (fewer if the descriptor limit is low).
    pub max_connections: u32,
    /// The most memory every guest of the node may hold together; `None`: half the machine's.
    pub memory_total: Option<u64>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api: None,
            api_hosts: Vec::new(),
            log_max: 10 * 1024 * 1024,
            max_concurrency: 1000,
            max_connections: 1024,
            memory_total: None,
        }
    }
}

/// A running command app: how to stop it, and its supervisor.
struct Instance {
    stop: Stop,
    task: tokio::task::JoinHandle<()>,
    /// Tells this supervisor from a later one of the same name.
    id: u64,
}

pub(crate) struct Inner {
    paths: Paths,
    home: Home,
    db: state::Db,
    router: Arc<Router>,
    cache: Cache,
    logs: logs::Logs,
    metrics: metrics::Metrics,
    series: series::Series,
    /// Command apps' supervisors, by name.
    instances: Mutex<HashMap<String, Instance>>,
    /// Where HTTP apps' instances print, by name (their instances come and go per request).
    outputs: Mutex<HashMap<String, qyvol_runtime::Output>>,
    gauges: Mutex<HashMap<String, MemoryGauge>>,
    /// Each app's key-value store, open while the app is deployed (its counters with it).
    kv_stores: Mutex<HashMap<String, Arc<qyvol_runtime::keyvalue::AppStore>>>,
    /// What the health checks last saw of each app that has one.
    health: health::HealthMap,
    /// The memory of every app's instances together, and its bound.
    memory: qyvol_runtime::MemoryBudget,
    /// One lock per app name, so calls about one app happen one after another.
    names: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: tokio::sync::broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
    deploys: tokio::sync::Semaphore,
    /// Held while a module is stored and its record committed, or a record removed and its
    /// module deleted, so a removal never deletes a module a deploy is about to use.
    modules: tokio::sync::Mutex<()>,
    waiting: std::sync::atomic::AtomicUsize,
    shutdown: tokio::sync::Notify,
    token: String,
    options: NodeOptions,
    started: u64,
    dashboard: std::sync::OnceLock<String>,
    logins: access::Logins,
}

/// The node: cheap to clone, shared by the API and the supervisors.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("dir", &self.0.paths.dir)
            .finish()
    }
}

impl Instance {
    /// Asks the instance to stop; its supervisor's task ends once it has.
    fn end(self) -> tokio::task::JoinHandle<()> {
        self.stop.stop();
        self.task
    }
}

/// Deploys compiling at once.
const DEPLOYS_AT_ONCE: usize = 4;

impl Node {
    /// Opens the node's state under `home` (the caller holds the [`NodeLock`]), and makes the
    /// token if there is none.
    pub fn open(home: Home, options: NodeOptions) -> Result<Self, NodeError> {
        let paths = Paths::of(&home);
        Self::open_at(home, paths, options)
    }

    /// A node keeping its files at `paths` rather than `QYVOL_HOME/node/` (a project's own
    /// node under `qyvol up`), sharing `home`'s compile cache and image store.
    pub fn open_at(home: Home, paths: Paths, options: NodeOptions) -> Result<Self, NodeError> {
        qyvol_common::create_private_dir(&paths.dir).map_err(NodeError::internal)?;
        let token = load_or_make_token(&paths.token())?;
        let db = state::Db::open(&paths.db())?;
        qyvol_common::create_private_dir(&paths.modules()).map_err(NodeError::internal)?;
        let logs = logs::Logs::new(paths.dir.join("logs"), options.log_max)
            .map_err(NodeError::internal)?;
        let cache = Cache::new(home.cache(), qyvol_runtime::DEFAULT_CACHE_MAX);
        // Fitted to the descriptor limit here, so the share below is half of what the port
        // really keeps (the router's own fitting then changes nothing).
        let max_connections =
            qyvol_runtime::connections_within_budget(options.max_connections.max(1));
        let router = Arc::new(Router::new(ServeOptions {
            max_concurrency: options.max_concurrency.max(1),
            max_connections,
            // One app's slow clients may hold at most half of the port's connections.
            app_share: Some(max_connections.div_ceil(2)),
            // A browser logged in to the dashboard sends its session to every port of the
            // host, the apps' included: no guest sees it.
            hidden_cookies: dashboard::COOKIES.iter().map(|c| c.to_string()).collect(),
            ..ServeOptions::default()
        }));
        let (events, _) = tokio::sync::broadcast::channel(1024);
        Ok(Self(Arc::new(Inner {
            paths,
            home,
            db,
            router,
            cache,
            logs,
            metrics: metrics::Metrics::default(),
            series: series::Series::default(),
            instances: Mutex::default(),
            outputs: Mutex::default(),
            gauges: Mutex::default(),
            memory: qyvol_runtime::MemoryBudget {
                used: MemoryGauge::default(),
                limit: options.memory_total.or_else(half_the_machines_memory),
            },
            names: Mutex::default(),
            events,
            recent: Mutex::default(),
            deploys: tokio::sync::Semaphore::new(DEPLOYS_AT_ONCE),
            modules: tokio::sync::Mutex::new(()),
            waiting: Default::default(),
            shutdown: tokio::sync::Notify::new(),
            token,
            options,
            started: state::now_ms(),
            dashboard: std::sync::OnceLock::new(),
            logins: access::Logins::default(),
            kv_stores: Mutex::default(),
            health: Mutex::default(),
        })))
    }

    pub fn paths(&self) -> &Paths {
        &self.0.paths
    }

    /// The dashboard's URL, once the TCP listener is bound.
    pub fn dashboard(&self) -> Option<&str> {
        self.0.dashboard.get().map(String::as_str)
    }

    pub(crate) fn set_dashboard(&self, url: String) {
        let _ = self.0.dashboard.set(url);
    }

    /// A one-time link that opens a dashboard session (`qyvol dashboard`), good for
    /// [`access::LOGIN_LINK_TIME`] and only with the verifier whose SHA-256 is `verifier`
    /// (`?v=VERIFIER`, which the caller adds: it never reaches the node before the browser).
    pub fn login_link(&self, verifier: &str) -> Result<String, NodeError> {
        if !access::is_nonce(verifier) {
            return Err(NodeError::BadRequest(
                "`verifier` must be the SHA-256 (64 lowercase hex digits) of a random value the \
                 link is then opened with (`?v=VALUE`)"
                    .into(),
            ));
        }
        let url = self.dashboard().ok_or_else(|| {
            NodeError::Conflict(
                "this node serves no dashboard: it was started with `--api off`".into(),
            )
        })?;
        let code = self.0.logins.issue(verifier).map_err(NodeError::internal)?;
        Ok(format!("{url}login/{code}"))
    }

    pub(crate) fn logins(&self) -> &access::Logins {
        &self.0.logins
    }

    pub fn token(&self) -> &str {
        &self.0.token
    }

    pub fn router(&self) -> Arc<Router> {
        self.0.router.clone()
    }

    pub fn options(&self) -> &NodeOptions {
        &self.0.options
    }

    /// Asks the node to stop (as SIGTERM does).
    pub fn request_shutdown(&self) {
        self.0.shutdown.notify_one();
    }

    pub async fn shutdown_requested(&self) {
        self.0.shutdown.notified().await;
    }

    fn name_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut names = self.0.names.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks no one holds, so the map does not grow with every name ever used.
        names.retain(|_, l| Arc::strong_count(l) > 1);
        names.entry(name.to_string()).or_default().clone()
    }

    pub(crate) fn series(&self) -> &series::Series {
        &self.0.series
    }

    pub(crate) fn home(&self) -> &Home {
        &self.0.home
    }

    pub(crate) fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    pub(crate) fn db(&self) -> &state::Db {
        &self.0.db
    }

    pub(crate) fn instances(&self) -> &Mutex<HashMap<String, Instance>> {
        &self.0.instances
    }

    pub(crate) fn cache(&self) -> &Cache {
        &self.0.cache
    }
}

/// Half of the machine's memory (`MemTotal` in /proc/meminfo), the default bound on what the
/// node's guests hold together; `None` where it cannot be read.
fn half_the_machines_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024 / 2)
}
