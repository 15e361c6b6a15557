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
pub mod client;
mod dashboard;
mod logs;
mod metrics;
mod series;
pub mod state;
mod supervise;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qyvol_common::{Home, RuntimeKind};
use qyvol_launch::{LaunchError, Operator, PrecompiledPolicy};
use qyvol_runtime::serve::{App, Router, ServeOptions};
use qyvol_runtime::{Cache, MemoryGauge, MountGrant, RunRequest, Stop, Wasm};
use serde::{Deserialize, Serialize};

pub use logs::LogLine;
pub use state::{AppKind, AppRecord, Desired, RestartPolicy, State};

/// Why a node call failed; each maps to an HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No app by that name (404).
    #[error("no app is named `{0}`")]
    NotFound(String),
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

/// Where the node keeps its files: `QYVOL_HOME/node/`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn of(home: &Home) -> Self {
        Self {
            dir: home.root.join("node"),
        }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("qyvol.sock")
    }
    pub fn token(&self) -> PathBuf {
        self.dir.join("token")
    }
    pub fn pid(&self) -> PathBuf {
        self.dir.join("node.pid")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    fn db(&self) -> PathBuf {
        self.dir.join("state.redb")
    }
    fn modules(&self) -> PathBuf {
        self.dir.join("modules")
    }
    /// The dashboard's uploads while they are read and deployed.
    pub(crate) fn uploads(&self) -> PathBuf {
        self.dir.join("uploads")
    }
    fn lock(&self) -> PathBuf {
        self.dir.join("node.lock")
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

/// What an operator sends to deploy an app (`qyvol deploy` flags).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployRequest {
    /// A manifest, bundle or wasm path on the node's machine (absolute), or an image reference.
    pub source: String,
    pub name: Option<String>,
    pub restart: Option<String>,
    /// `K=V`.
    pub env: Vec<String>,
    /// `HOST:GUEST[:ro|:rw]`, HOST absolute.
    pub mounts: Vec<String>,
    pub allow_net: Vec<String>,
    pub allow_precompiled: bool,
    pub args: Vec<String>,
    /// Plain HTTP to a registry that is not on loopback, when the source is pulled.
    pub insecure: bool,
    pub memory: Option<String>,
    /// The most memory all of the app's instances may hold together (`--memory-total`).
    pub memory_total: Option<String>,
    /// An HTTP app's requests in progress at once (`--concurrency`).
    pub concurrency: Option<u32>,
    pub timeout: Option<String>,
    pub fuel: Option<u64>,
}

/// An app as `ps` and `inspect` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppView {
    pub name: String,
    pub kind: AppKind,
    pub state: State,
    pub crash_looping: bool,
    pub desired: Desired,
    pub module: String,
    pub source: String,
    pub route: Option<String>,
    pub restart: String,
    pub restarts: u32,
    /// Unix milliseconds.
    pub created: u64,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub exit_cause: Option<String>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub memory: u64,
    pub requests: u64,
    /// Only in `inspect`: the grants and limits each instance gets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub spec: Option<state::Spec>,
}

/// The node itself, for an overview (the dashboard's first view).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub version: String,
    /// When this node process started (Unix milliseconds).
    pub started: u64,
    /// Deployed apps by state (`running`, `exited`, ...).
    pub apps: std::collections::BTreeMap<String, u64>,
    /// Linear memory in use by every app's live instances.
    pub memory: u64,
    /// Requests answered on the app port since the node started.
    pub requests: u64,
    /// The dashboard's address, when the node listens on TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<String>,
}

/// Something that happened to an app, for `qyvol events`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// RFC 3339, UTC.
    pub time: String,
    pub app: String,
    /// `deploy`, `start`, `exit`, `restart`, `stop`, `remove`, `fail`.
    pub action: String,
    /// E.g. the exit cause and code.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
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
    /// HTTP apps' log collectors, by name (their instances come and go per request).
    collectors: Mutex<HashMap<String, logs::Collector>>,
    gauges: Mutex<HashMap<String, MemoryGauge>>,
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

/// Deploys waiting beyond this many are refused with 429.
const MAX_WAITING_DEPLOYS: usize = 256;
/// Deploys compiling at once.
const DEPLOYS_AT_ONCE: usize = 4;
/// Events kept for a client that connects late.
const RECENT_EVENTS: usize = 256;

/// Holds the node's lock file for the life of the process: one node per `QYVOL_HOME`.
#[derive(Debug)]
pub struct NodeLock(#[allow(dead_code)] std::fs::File);

impl NodeLock {
    /// Takes the lock, or says which process holds it.
    pub fn take(paths: &Paths) -> Result<Self, NodeError> {
        qyvol_common::create_private_dir(&paths.dir).map_err(NodeError::internal)?;
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(paths.lock())
            .map_err(NodeError::internal)?;
        match file.try_lock() {
            Ok(()) => Ok(Self(file)),
            Err(_) => {
                let pid = std::fs::read_to_string(paths.pid()).unwrap_or_default();
                Err(NodeError::Conflict(format!(
                    "a node is already running for this QYVOL_HOME (pid {}); stop it with `qyvol node stop`",
                    pid.trim()
                )))
            }
        }
    }
}

impl Node {
    /// Opens the node's state under `home` (the caller holds the [`NodeLock`]), and makes the
    /// token if there is none.
    pub fn open(home: Home, options: NodeOptions) -> Result<Self, NodeError> {
        let paths = Paths::of(&home);
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
            collectors: Mutex::default(),
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

    pub(crate) fn event(&self, app: &str, action: &str, detail: Option<String>) {
        let event = Event {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            app: app.into(),
            action: action.into(),
            detail,
        };
        tracing::info!(
            app,
            action,
            detail = event.detail.as_deref().unwrap_or(""),
            "event"
        );
        let mut recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        let _ = self.0.events.send(event);
    }

    /// The recent events and a receiver for the ones to come.
    pub fn events(&self) -> (Vec<Event>, tokio::sync::broadcast::Receiver<Event>) {
        let recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        (recent.iter().cloned().collect(), self.0.events.subscribe())
    }

    /// Starts every app that should run, as the state says: after a restart or a crash, what
    /// was running runs again. Modules no record names (a deploy cut short) are removed, and
    /// so are uploads a killed node left half-read (none is in flight before the node serves).
    pub async fn reconcile(&self) -> Result<(), NodeError> {
        if let Ok(left) = std::fs::read_dir(self.0.paths.uploads()) {
            for entry in left.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let mut records = self.0.db.list()?;
        // Deploys cut short between their commit and their answer (or rollback): gone.
        for r in records.iter().filter(|r| !r.accepted) {
            tracing::info!(app = %r.name, "removing a deploy that was never accepted");
            self.0.db.remove(&r.name)?;
        }
        records.retain(|r| r.accepted);
        // A damaged record's module is unknown: then nothing is swept.
        if !self.0.db.has_damage() {
            self.remove_orphan_modules(&records);
        }
        // Oldest first: if two apps ever claim one route, the one deployed first keeps it.
        records.sort_by_key(|r| r.created);
        for record in records {
            let start = match (record.desired, record.restart) {
                (Desired::Running, _) => {
                    !matches!(record.status.state, State::Exited | State::Failed)
                }
                // Docker's `always` brings a stopped container back when the daemon restarts.
                (Desired::Stopped, RestartPolicy::Always) => true,
                (Desired::Stopped, _) => false,
            };
            if !start {
                continue;
            }
            let name = record.name.clone();
            if let Err(e) = self.start_record(record, false).await {
                tracing::warn!(app = %name, error = %e, "could not start an app");
            }
        }
        Ok(())
    }

    fn remove_orphan_modules(&self, records: &[AppRecord]) {
        let Ok(entries) = std::fs::read_dir(self.0.paths.modules()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let used = records
                .iter()
                .any(|r| r.module.strip_prefix("sha256:") == Some(name.as_str()));
            if !used {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Deploys an app and starts it. Answers once the app is committed to the state: a deploy
    /// that returned is never lost; one cut short leaves nothing visible.
    pub async fn deploy(&self, req: DeployRequest) -> Result<AppView, NodeError> {
        self.deploy_labelled(req, None).await
    }

    /// A deploy whose source is recorded as `label` rather than its path (an upload's file
    /// name: the uploaded file itself is gone once its module is stored).
    pub(crate) async fn deploy_labelled(
        &self,
        req: DeployRequest,
        label: Option<String>,
    ) -> Result<AppView, NodeError> {
        // Run to the end even if the caller goes away: a deploy is committed and started, or
        // rolled back, never left half-way by a dropped connection.
        let node = self.clone();
        tokio::spawn(async move { node.deploy_here(req, label).await })
            .await
            .map_err(NodeError::internal)?
    }

    async fn deploy_here(
        &self,
        req: DeployRequest,
        label: Option<String>,
    ) -> Result<AppView, NodeError> {
        use std::sync::atomic::Ordering;
        let waiting = self.0.waiting.fetch_add(1, Ordering::SeqCst);
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _counted = Waiting(&self.0.waiting);
        if waiting >= MAX_WAITING_DEPLOYS {
            return Err(NodeError::Busy(waiting));
        }
        let _slot = self
            .0
            .deploys
            .acquire()
            .await
            .map_err(NodeError::internal)?;
        let node = self.clone();
        let mut prepared = tokio::task::spawn_blocking(move || node.open_target(req))
            .await
            .map_err(NodeError::internal)??;
        if let Some(label) = label {
            prepared.record.source = label;
        }
        let lock = self.name_lock(&prepared.record.name);
        let _held = lock.lock().await;
        if self.0.db.get(&prepared.record.name)?.is_some() {
            return Err(NodeError::Exists(prepared.record.name.clone()));
        }
        {
            let _modules = self.0.modules.lock().await;
            self.store_module(&prepared)?;
            self.0.db.insert_new(&prepared.record)?;
        }
        self.event(
            &prepared.record.name,
            "deploy",
            Some(prepared.record.source.clone()),
        );
        let name = prepared.record.name.clone();
        let module = prepared.record.module.clone();
        let launched = self
            .launch(prepared.record, prepared.wasm, prepared.request, true)
            .await;
        let accepted = match launched {
            Ok(()) => self.0.db.update(&name, |r| r.accepted = true).map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = accepted {
            // A deploy that cannot start (a route taken, a module that does not link) leaves
            // nothing behind: the caller is told why and nothing was deployed.
            self.halt(&name).await;
            let _modules = self.0.modules.lock().await;
            self.0.db.remove(&name)?;
            self.forget_module(&module)?;
            self.0.logs.remove(&name);
            self.0.metrics.forget(&name);
            return Err(e);
        }
        self.view(&name)
    }

    /// Removes a module from the module store unless an app still uses it.
    fn forget_module(&self, module: &str) -> Result<(), NodeError> {
        if !self.0.db.list()?.iter().any(|r| r.module == module) {
            let _ = std::fs::remove_file(self.module_path(module)?);
        }
        Ok(())
    }

    /// The blocking half of a deploy: open the target, merge grants, load the module.
    fn open_target(&self, req: DeployRequest) -> Result<Deployable, NodeError> {
        let mut op = operator(&req)?;
        op.policy = Some(self.0.home.trust_policy());
        // Loopback, link-local and private addresses (the node's own API and app port among
        // them) need a grant naming the address, whatever the environment.
        op.block_private = Some(true);
        let restart = match &req.restart {
            None => RestartPolicy::No,
            Some(text) => text.parse().map_err(NodeError::BadRequest)?,
        };
        let source = PathBuf::from(&req.source);
        if req.source.is_empty() {
            return Err(NodeError::BadRequest(
                "the deploy names no source: give a manifest, bundle, wasm or image reference"
                    .into(),
            ));
        }
        if source.exists() && !source.is_absolute() {
            return Err(NodeError::BadRequest(format!(
                "`{}` is a relative path: the node needs an absolute one",
                req.source
            )));
        }
        let cache = &self.0.cache;
        let home = &self.0.home;
        let opened = qyvol_launch::open(&source, &op, Some(cache), &mut |r| {
            pull(home, r, req.insecure, None).map(drop)
        })?;
        let denials = qyvol_runtime::DenialSink::default();
        let launch = qyvol_launch::prepare(
            opened,
            &op,
            Some(cache),
            req.args.clone(),
            denials,
            qyvol_launch::Runner::Supervised,
        )?;
        let mut request = launch.request;
        let kind = match launch.manifest.runtime {
            RuntimeKind::Wasi => AppKind::Command,
            RuntimeKind::WasiHttp => AppKind::Http,
        };
        let name = match &req.name {
            Some(n) => qyvol_common::AppName::try_from(n.clone())
                .map_err(|e| NodeError::BadRequest(format!("`--name {n}`: {e}")))?
                .to_string(),
            None => launch.manifest.name.to_string(),
        };
        let max_body = qyvol_launch::grants::max_body(
            &launch.manifest,
            qyvol_launch::grants::DEFAULT_MAX_BODY,
        )
        .0;
        request.limits.memory_total = memory_total(&req)?;
        let mut spec = spec_of(
            &request,
            max_body,
            launch.wasm.precompiled.clone(),
            launch.wasm.info.uses(),
        );
        if let Some(n) = req.concurrency {
            if kind != AppKind::Http {
                return Err(NodeError::BadRequest(
                    "`--concurrency` bounds an HTTP app's requests; this app is a command".into(),
                ));
            }
            if n == 0 {
                return Err(NodeError::BadRequest(
                    "`--concurrency 0` would refuse every request: give 1 or more".into(),
                ));
            }
            spec.concurrency = Some(n);
        }
        let record = AppRecord {
            name,
            source: req.source.clone(),
            module: format!("sha256:{}", launch.wasm.info.sha256),
            kind,
            route: (kind == AppKind::Http).then(|| launch.manifest.http.route.to_string()),
            spec,
            restart,
            desired: Desired::Running,
            status: state::Status::created(),
            created: state::now_ms(),
            accepted: false,
        };
        Ok(Deployable {
            record,
            wasm: launch.wasm,
            request,
        })
    }

    fn module_path(&self, digest: &str) -> Result<PathBuf, NodeError> {
        let digest = qyvol_common::Digest::parse(digest)
            .map_err(|e| NodeError::State(format!("a module digest is damaged: {e}")))?;
        Ok(self.0.paths.modules().join(digest.hex()))
    }

    /// Copies the module into the node's module store (synced, then renamed into place).
    fn store_module(&self, d: &Deployable) -> Result<(), NodeError> {
        use std::io::Write;
        let dest = self.module_path(&d.record.module)?;
        if dest.exists() {
            return Ok(());
        }
        let bytes = d.wasm.bytes().map_err(|e| NodeError::Launch(e.into()))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(self.0.paths.modules()).map_err(NodeError::internal)?;
        tmp.write_all(&bytes).map_err(NodeError::internal)?;
        tmp.as_file().sync_all().map_err(NodeError::internal)?;
        tmp.persist(&dest)
            .map_err(|e| NodeError::internal(e.error))?;
        if let Ok(dir) = std::fs::File::open(self.0.paths.modules()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Starts an app from its record (after a restart, or `start`).
    async fn start_record(&self, record: AppRecord, reset: bool) -> Result<(), NodeError> {
        let path = self.module_path(&record.module)?;
        let spec = record.spec.clone();
        let expected = record.module.clone();
        let cache = self.0.cache.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Wasm, NodeError> {
            let mut wasm = qyvol_runtime::load(&path, u64::MAX, Some(&cache))
                .map_err(|e| NodeError::Launch(e.into()))?;
            if format!("sha256:{}", wasm.info.sha256) != expected {
                return Err(NodeError::State(format!(
                    "the stored module `{}` does not match its digest",
                    path.display()
                )));
            }
            wasm.precompiled = spec.precompiled.filter(|p| p.is_file());
            Ok(wasm)
        })
        .await
        .map_err(NodeError::internal)?;
        let wasm = match loaded {
            Ok(w) => w,
            Err(e) => {
                self.failed(&record.name, &e.to_string());
                return Err(e);
            }
        };
        let request = request_of(&record.spec)?;
        self.launch(record, wasm, request, reset).await
    }

    fn failed(&self, name: &str, why: &str) {
        self.0.logs.note(name, why);
        let _ = self.0.db.update(name, |r| {
            r.status.state = State::Failed;
            r.status.error = Some(why.to_string());
        });
        self.event(name, "fail", Some(why.to_string()));
    }

    /// Starts an app whose record is committed: routes an HTTP app, or starts a command's
    /// supervisor. `reset` clears the restart count (a deploy or an operator's start).
    async fn launch(
        &self,
        record: AppRecord,
        wasm: Wasm,
        mut request: RunRequest,
        reset: bool,
    ) -> Result<(), NodeError> {
        let name = record.name.clone();
        let collector = match self.0.logs.collector(&name) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot open the app's log: {e}");
                self.failed(&name, &why);
                return Err(NodeError::Internal(why));
            }
        };
        request.output = collector.output.clone();
        let gauge = MemoryGauge::default();
        request.memory_gauge = Some(gauge.clone());
        request.node_memory = Some(self.0.memory.clone());
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), gauge);
        // The engine `launch` judged the deploy's precompiled code for, decided again from
        // the record when the node restarts.
        let engine = qyvol_runtime::EngineConfig::decide(
            qyvol_launch::Runner::Supervised.purpose(record.kind.runtime()),
            &request.limits,
        );
        let result = match record.kind {
            AppKind::Http => self.route(&record, wasm, request, engine, collector).await,
            AppKind::Command => {
                supervise::start(self, &record, wasm, request, engine, collector, reset).await
            }
        };
        if let Err(e) = &result {
            self.failed(&name, &e.to_string());
        }
        result
    }

    async fn route(
        &self,
        record: &AppRecord,
        wasm: Wasm,
        request: RunRequest,
        engine: qyvol_runtime::EngineConfig,
        collector: logs::Collector,
    ) -> Result<(), NodeError> {
        let route = record
            .route
            .as_deref()
            .unwrap_or("/")
            .parse()
            .map_err(|e: String| NodeError::State(e))?;
        let app = App {
            name: record.name.clone(),
            route,
            max_body: record.spec.max_body,
            concurrency: record.spec.concurrency,
            wasm,
            request,
            engine,
        };
        let router = self.0.router.clone();
        let cache = self.0.cache.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            router.load(
                app,
                qyvol_runtime::Compilation {
                    cache: Some(&cache),
                    progress: None,
                    compiler: qyvol_runtime::Compiler::Cranelift,
                },
            )
        })
        .await
        .map_err(NodeError::internal)?
        .map_err(|e| NodeError::Launch(e.into()))?;
        self.0
            .router
            .insert(loaded)
            .map_err(|e| NodeError::Conflict(e.to_string()))?;
        self.0
            .collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.name.clone(), collector);
        self.0.db.update(&record.name, |r| {
            r.status.state = State::Running;
            r.status.started = Some(state::now_ms());
            r.status.error = None;
        })?;
        self.event(&record.name, "start", None);
        Ok(())
    }

    /// Ends whatever runs for `name` (its supervisor, or its route); the record is unchanged.
    async fn halt(&self, name: &str) {
        let instance = self
            .0
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some(task) = instance.map(Instance::end) {
            let _ = task.await;
        }
        if self.0.router.remove(name) {
            // Requests in flight still hold the write ends; their lines finish on their own.
            self.0
                .collectors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name);
        }
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    fn is_live(&self, name: &str) -> bool {
        self.0
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
            || self
                .0
                .collectors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(name)
    }

    pub async fn stop(&self, name: &str) -> Result<AppView, NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        self.0
            .db
            .update(name, |r| r.desired = Desired::Stopped)?
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        self.halt(name).await;
        self.0.db.update(name, |r| {
            if r.status.state != State::Exited {
                r.status.state = State::Stopped;
            }
        })?;
        self.event(name, "stop", None);
        self.view(name)
    }

    pub async fn start(&self, name: &str) -> Result<AppView, NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        if self.is_live(name) {
            return self.view(name);
        }
        let record = self
            .0
            .db
            .update(name, |r| {
                r.desired = Desired::Running;
                r.status.restarts = 0;
                r.status.quick_failures = 0;
            })?
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        if let Err(e) = self.start_record(record, true).await {
            // A start that failed (a route another app took meanwhile) leaves the app stopped,
            // so the next node does not start it in that app's place.
            let _ = self.0.db.update(name, |r| r.desired = Desired::Stopped);
            return Err(e);
        }
        self.view(name)
    }

    pub async fn restart(&self, name: &str) -> Result<AppView, NodeError> {
        {
            let lock = self.name_lock(name);
            let _held = lock.lock().await;
            if self.0.db.get(name)?.is_none() {
                return Err(NodeError::NotFound(name.into()));
            }
            self.halt(name).await;
        }
        self.start(name).await
    }

    pub async fn remove(&self, name: &str, force: bool) -> Result<(), NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        // A damaged record can still be removed (its module is then left in place).
        let record = match self.0.db.get(name) {
            Ok(Some(r)) => Some(r),
            Ok(None) => return Err(NodeError::NotFound(name.into())),
            Err(NodeError::State(_)) if force => None,
            Err(e) => return Err(e),
        };
        if self.is_live(name) && !force {
            return Err(NodeError::Conflict(format!(
                "`{name}` is running: stop it first (`qyvol stop {name}`) or remove it with `-f`"
            )));
        }
        self.halt(name).await;
        {
            let _modules = self.0.modules.lock().await;
            self.0.db.remove(name)?;
            if let Some(record) = &record {
                self.forget_module(&record.module)?;
            }
        }
        self.0.logs.remove(name);
        self.0.metrics.forget(name);
        self.event(name, "remove", None);
        Ok(())
    }

    /// Whether the app deployed as `name` at `created` is still there (not removed, nor
    /// replaced by another deploy under its name): a log stream about it ends otherwise.
    pub fn still_deployed(&self, name: &str, created: u64) -> bool {
        matches!(self.0.db.get(name), Ok(Some(r)) if r.created == created)
    }

    pub fn view(&self, name: &str) -> Result<AppView, NodeError> {
        let record = self
            .0
            .db
            .get(name)?
            .filter(|r| r.accepted)
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        let spec = record.spec.clone();
        Ok(AppView {
            spec: Some(spec),
            ..self.view_of(record)
        })
    }

    fn view_of(&self, r: AppRecord) -> AppView {
        let memory = self
            .0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&r.name)
            .map_or(0, |g| g.load(std::sync::atomic::Ordering::Relaxed));
        AppView {
            requests: self.0.metrics.requests_of(&r.name),
            crash_looping: r.status.crash_looping(),
            name: r.name,
            kind: r.kind,
            state: r.status.state,
            desired: r.desired,
            module: r.module,
            source: r.source,
            route: r.route,
            restart: r.restart.to_string(),
            restarts: r.status.restarts,
            created: r.created,
            started: r.status.started,
            finished: r.status.finished,
            exit_cause: r.status.exit_cause,
            exit_code: r.status.exit_code,
            error: r.status.error,
            memory,
            spec: None,
        }
    }

    /// Every app (`all`) or those running or restarting, by name.
    pub fn list(&self, all: bool) -> Result<Vec<AppView>, NodeError> {
        Ok(self
            .0
            .db
            .list()?
            .into_iter()
            .filter(|r| r.accepted)
            .filter(|r| all || matches!(r.status.state, State::Running | State::Restarting))
            .map(|r| self.view_of(r))
            .collect())
    }

    /// The node's version, start time, apps by state, memory in use and requests served.
    pub fn info(&self) -> Result<NodeInfo, NodeError> {
        let mut apps = std::collections::BTreeMap::new();
        let mut records = self.0.db.list()?;
        records.retain(|r| r.accepted);
        for r in &records {
            *apps.entry(r.status.state.as_str().to_string()).or_insert(0) += 1;
        }
        let memory = self.memory_by_app().values().sum();
        let requests = records
            .iter()
            .map(|r| self.0.metrics.requests_of(&r.name))
            .sum();
        Ok(NodeInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started: self.0.started,
            apps,
            memory,
            requests,
            dashboard: self.0.dashboard.get().cloned(),
        })
    }

    pub fn logs(&self) -> &logs::Logs {
        &self.0.logs
    }

    pub fn exists(&self, name: &str) -> Result<bool, NodeError> {
        Ok(self.0.db.get(name)?.is_some())
    }

    pub fn metrics_text(&self) -> Result<String, NodeError> {
        let memory: Vec<(String, u64)> = self.memory_by_app().into_iter().collect();
        let records = self.0.db.list()?;
        let states: Vec<(&str, u64)> = [
            State::Created,
            State::Running,
            State::Restarting,
            State::Exited,
            State::Stopped,
            State::Failed,
        ]
        .into_iter()
        .map(|s| {
            (
                s.as_str(),
                records.iter().filter(|r| r.status.state == s).count() as u64,
            )
        })
        .collect();
        Ok(self.0.metrics.render(&memory, &states))
    }

    /// Linear memory in use by each app's live instances.
    fn memory_by_app(&self) -> std::collections::BTreeMap<String, u64> {
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, g)| (n.clone(), g.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }

    /// Takes this second's sample of every app's load for the charts.
    pub(crate) fn sample(&self) -> Result<(), NodeError> {
        let apps: Vec<String> = self.0.db.list()?.into_iter().map(|r| r.name).collect();
        let memory = self.memory_by_app();
        self.0
            .series
            .sample(state::now_ms(), &apps, &self.0.metrics.totals(), &memory);
        Ok(())
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

    /// Stops every instance without changing what the state wants (they start again with the
    /// node); waits for their supervisors.
    pub async fn halt_all(&self) {
        let tasks: Vec<_> = self
            .0
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, i)| i.end())
            .collect();
        // Every instance was asked to stop at once; wait for them together.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
    }
}

/// What the app port tells the node: each request counted for its app.
pub(crate) struct AppEvents(pub(crate) Node);

impl qyvol_runtime::serve::Events for AppEvents {
    fn request(&self, e: &qyvol_runtime::serve::AccessEntry<'_>) {
        if let Some(app) = e.app {
            self.0.metrics().request(app, e.status, e.duration);
        }
        tracing::debug!(
            method = e.method,
            path = e.path,
            status = e.status,
            app = e.app.unwrap_or("-"),
            "request"
        );
    }

    fn draining(&self, in_flight: usize) {
        tracing::info!(in_flight, "the app port is draining");
    }
}

/// A deploy, opened and checked, ready to be committed.
struct Deployable {
    record: AppRecord,
    wasm: Wasm,
    request: RunRequest,
}

fn operator(req: &DeployRequest) -> Result<Operator, NodeError> {
    let bad = NodeError::BadRequest;
    let mut op = Operator {
        precompiled: if req.allow_precompiled {
            PrecompiledPolicy::Allow
        } else {
            PrecompiledPolicy::default()
        },
        ..Operator::default()
    };
    for pair in &req.env {
        let (k, v) =
            qyvol_common::parse_env_pair(pair).map_err(|e| bad(format!("`-e {pair}`: {e}")))?;
        let v = v.ok_or_else(|| {
            bad(format!(
                "`-e {pair}` has no value: the node does not copy its own environment; give \
                 `-e {pair}=VALUE`, or `-e {pair}` to `qyvol deploy`, which sends the value of \
                 its own environment"
            ))
        })?;
        op.env.push((k, Some(v)));
    }
    for m in &req.mounts {
        let flag: qyvol_launch::MountFlag = m.parse().map_err(|e: String| bad(e))?;
        if !flag.host.is_absolute() {
            return Err(bad(format!(
                "`--mount {m}`: the host folder must be an absolute path on the node's machine"
            )));
        }
        op.mounts.push(flag);
    }
    for n in &req.allow_net {
        op.network.push(
            n.parse()
                .map_err(|e: String| bad(format!("`--allow-net {n}`: {e}")))?,
        );
    }
    if let Some(m) = &req.memory {
        op.memory = Some(
            m.parse()
                .map_err(|e: String| bad(format!("`--memory {m}`: {e}")))?,
        );
    }
    if let Some(t) = &req.timeout {
        op.timeout = Some(
            t.parse()
                .map_err(|e: String| bad(format!("`--timeout {t}`: {e}")))?,
        );
    }
    op.fuel = req.fuel;
    Ok(op)
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

/// `--memory-total`, checked against `--memory`: the app's instances together may not hold
/// less than one of them may.
fn memory_total(req: &DeployRequest) -> Result<Option<u64>, NodeError> {
    let bad = NodeError::BadRequest;
    let Some(text) = &req.memory_total else {
        return Ok(None);
    };
    let total: qyvol_common::ByteSize = text
        .parse()
        .map_err(|e: String| bad(format!("`--memory-total {text}`: {e}")))?;
    if let Some(one) = &req.memory
        && let Ok(one) = one.parse::<qyvol_common::ByteSize>()
        && one.0 > total.0
    {
        return Err(bad(format!(
            "`--memory-total {total}` is less than `--memory {one}`: not even one instance could run; give a total of at least the memory of one"
        )));
    }
    Ok(Some(total.0))
}

/// Pulls `reference` into the store (a deploy's, or the dashboard's with its progress).
pub(crate) fn pull(
    home: &Home,
    reference: &qyvol_store::Reference,
    insecure: bool,
    progress: Option<Arc<dyn qyvol_store::Progress>>,
) -> Result<String, LaunchError> {
    let store = qyvol_store::Store::open(&home.store())?;
    // The node's own environment's `QYVOL_REGISTRY_TIMEOUT`, as for any `qyvol pull`.
    let remote = qyvol_store::Remote {
        progress,
        ..qyvol_store::Remote::of(&home.root, reference, insecure).map_err(LaunchError::Usage)?
    };
    Ok(store.pull(reference, &remote)?)
}

fn spec_of(
    req: &RunRequest,
    max_body: u64,
    precompiled: Option<PathBuf>,
    uses: qyvol_runtime::Uses,
) -> state::Spec {
    let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    state::Spec {
        argv0: req.argv0.clone(),
        args: req.args.clone(),
        env: req.env.clone(),
        mounts: req
            .mounts
            .iter()
            .map(|m| state::MountSpec {
                host: m.host.clone(),
                guest: m.guest.clone(),
                readonly: m.readonly,
                beneath: m.beneath.clone(),
            })
            .collect(),
        memory: req.limits.memory,
        memory_total: req.limits.memory_total,
        concurrency: None,
        timeout_ms: ms(req.limits.timeout),
        fuel: req.limits.fuel,
        compile_timeout_ms: ms(req.limits.compile),
        network: req.network.iter().map(ToString::to_string).collect(),
        block_private: req.block_private,
        max_body,
        precompiled,
        uses: Some(uses),
    }
}

fn request_of(spec: &state::Spec) -> Result<RunRequest, NodeError> {
    let network = spec
        .network
        .iter()
        .map(|n| {
            n.parse()
                .map_err(|e: String| NodeError::State(format!("a stored grant `{n}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(RunRequest {
        argv0: spec.argv0.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        mounts: spec
            .mounts
            .iter()
            .map(|m| MountGrant {
                host: m.host.clone(),
                guest: m.guest.clone(),
                readonly: m.readonly,
                beneath: m.beneath.clone(),
            })
            .collect(),
        limits: qyvol_runtime::Limits {
            memory: spec.memory,
            timeout: spec.timeout_ms.map(Duration::from_millis),
            fuel: spec.fuel,
            compile: spec.compile_timeout_ms.map(Duration::from_millis),
            memory_total: spec.memory_total,
        },
        network,
        block_private: spec.block_private,
        ..RunRequest::default()
    })
}

/// Reads the API token, or makes one (32 random bytes, hex) in a file only the user can read.
fn load_or_make_token(path: &Path) -> Result<String, NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 32 => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::internal(e)),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NodeError::internal)?;
    let token = hex::encode(bytes);
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(NodeError::internal)?;
    f.write_all(token.as_bytes()).map_err(NodeError::internal)?;
    f.sync_all().map_err(NodeError::internal)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HOSTILE row 47: a deploy cut by `kill -9` after its record was committed but before it
    /// was answered (or rolled back) leaves a record never accepted; the next node shows it to
    /// no one, removes it and sweeps its module.
    #[test]
    fn a_deploy_cut_before_its_answer_is_gone_when_the_node_starts_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = Home {
            root: tmp.path().to_path_buf(),
        };
        let module = "ab".repeat(32);
        let record: AppRecord = serde_json::from_value(serde_json::json!({
            "name": "cut", "source": "/x.wasm", "module": format!("sha256:{module}"),
            "kind": "command", "route": null,
            "spec": {"argv0": "x", "args": [], "env": [], "mounts": [], "network": [],
                     "block_private": true, "max_body": 1, "timeout_ms": null, "fuel": null,
                     "compile_timeout_ms": null, "precompiled": null, "memory": null},
            "restart": {"policy": "no"}, "desired": "running",
            "status": {"state": "failed", "restarts": 0, "quick_failures": 0},
            "created": 1, "accepted": false
        }))
        .expect("a record");
        {
            let node = Node::open(home.clone(), NodeOptions::default()).expect("open");
            node.db().insert_new(&record).expect("committed");
            std::fs::write(node.paths().modules().join(&module), b"\0asm").expect("module");
            assert!(matches!(node.view("cut"), Err(NodeError::NotFound(_))));
            assert!(node.list(true).expect("list").is_empty());
        }
        let node = Node::open(home, NodeOptions::default()).expect("open again");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(node.reconcile()).expect("reconcile");
        assert!(node.db().get("cut").expect("get").is_none());
        assert!(!node.paths().modules().join(&module).exists());
    }
}
