//! An app's record: what the operator asked for (its grants and limits, its restart policy,
//! whether it should run) and what was last seen of it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the node knows about an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRecord {
    pub name: String,
    /// What the operator deployed (a path or an image reference), as they wrote it.
    pub source: String,
    /// The module's digest; its bytes are in the node's module store under it.
    pub module: String,
    pub kind: AppKind,
    /// Where an HTTP app is mounted on the app port.
    pub route: Option<String>,
    pub spec: Spec,
    pub restart: RestartPolicy,
    /// What the operator last asked for.
    pub desired: Desired,
    /// What was last seen.
    pub status: Status,
    /// When it was deployed (Unix milliseconds).
    pub created: u64,
    /// Whether its deploy was answered as done. A record is committed before its app first
    /// starts, and removed again if it cannot; one a crash left unaccepted is shown to no one
    /// and removed when the node starts. (Records of older nodes were all accepted.)
    #[serde(default = "accepted")]
    pub accepted: bool,
    /// The project it was deployed with (`qyvol up -d`), if any.
    #[serde(default)]
    pub project: Option<String>,
    /// The version an update replaced, kept for `qyvol rollback` until the next update.
    #[serde(default)]
    pub previous: Option<Box<AppRecord>>,
}

fn accepted() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppKind {
    /// `runtime: wasi`: a long-lived instance or a job.
    Command,
    /// `runtime: wasi-http`: an instance per request on the app port.
    Http,
}

impl AppKind {
    /// The manifest's word for this kind.
    pub fn runtime(self) -> qyvol_common::RuntimeKind {
        match self {
            Self::Command => qyvol_common::RuntimeKind::Wasi,
            Self::Http => qyvol_common::RuntimeKind::WasiHttp,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Desired {
    Running,
    Stopped,
}

/// Docker's restart policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        /// At most this many restarts (`None`: no limit).
        max: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a restart policy: use `no`, `on-failure`, `on-failure:N`, `always` or `unless-stopped`"
            )
        };
        match s.split_once(':') {
            None => match s {
                "no" => Ok(Self::No),
                "on-failure" => Ok(Self::OnFailure { max: None }),
                "always" => Ok(Self::Always),
                "unless-stopped" => Ok(Self::UnlessStopped),
                _ => Err(bad()),
            },
            Some(("on-failure", n)) => n
                .parse::<u32>()
                .map(|n| Self::OnFailure { max: Some(n) })
                .map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::No => f.write_str("no"),
            Self::OnFailure { max: None } => f.write_str("on-failure"),
            Self::OnFailure { max: Some(n) } => write!(f, "on-failure:{n}"),
            Self::Always => f.write_str("always"),
            Self::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

/// What each instance gets: the merged grants and limits (see `qyvol_launch::grants`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub argv0: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<MountSpec>,
    pub memory: Option<u64>,
    /// The most memory all of the app's instances may hold together.
    #[serde(default)]
    pub memory_total: Option<u64>,
    /// An HTTP app's requests in progress at once (the node's share when absent).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// A WASI 0.3 handler's requests per instance, in all and at once (fresh instances when
    /// absent).
    #[serde(default)]
    pub reuse: Option<(u32, u32)>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
    pub compile_timeout_ms: Option<u64>,
    /// Network grants, as written (`host:port`).
    pub network: Vec<String>,
    pub block_private: bool,
    pub max_body: u64,
    /// Precompiled code the operator allowed, imported into the cache.
    pub precompiled: Option<PathBuf>,
    /// What the module's imports reach (absent in records of older nodes).
    #[serde(default)]
    pub uses: Option<qyvol_runtime::Uses>,
    /// Key-value buckets granted, and their quotas (defaults when absent).
    #[serde(default)]
    pub keyvalue: Vec<String>,
    #[serde(default)]
    pub kv_quotas: Option<qyvol_common::KvQuotas>,
    /// `wasi:config` variables (names and values).
    #[serde(default)]
    pub config: Vec<(String, String)>,
    /// The names of its secrets; their values are kept apart (`node/secrets/`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Apps it may call by name in process: (the name it calls, the app that answers).
    #[serde(default)]
    pub calls: Vec<(String, String)>,
    /// An HTTP app's health check: a path probed every `interval_ms`.
    #[serde(default)]
    pub health: Option<HealthSpec>,
}

/// An HTTP app's health check (Docker's HEALTHCHECK for an HTTP app): `GET path` in process,
/// healthy on a 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    pub path: String,
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountSpec {
    pub host: PathBuf,
    pub guest: String,
    pub readonly: bool,
    pub beneath: Option<PathBuf>,
    /// The named volume `host` is, if it is one.
    #[serde(default)]
    pub volume: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Deployed, not yet started.
    Created,
    Running,
    /// Ended, waiting out its back-off before the next start.
    Restarting,
    /// Ended and not restarted (its policy said no, or its restarts ran out).
    Exited,
    /// Stopped by the operator.
    Stopped,
    /// Could not be started (its module or a mount is gone); see `status.error`.
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    /// Restarts made by the policy since the app was (re)started by the operator.
    pub restarts: u32,
    /// Restarts in a row that followed a short run: three or more is a crash loop.
    pub quick_failures: u32,
    /// When the current or last instance started, and when it ended (Unix milliseconds).
    pub started: Option<u64>,
    pub finished: Option<u64>,
    /// How the last instance ended: `exited`, `trapped`, `timeout`, `memory`, `fuel`, `stopped`.
    pub exit_cause: Option<String>,
    pub exit_code: Option<i32>,
    /// The last trap or start failure, for `inspect`.
    pub error: Option<String>,
}

impl Status {
    pub fn created() -> Self {
        Self {
            state: State::Created,
            restarts: 0,
            quick_failures: 0,
            started: None,
            finished: None,
            exit_cause: None,
            exit_code: None,
            error: None,
        }
    }

    pub fn crash_looping(&self) -> bool {
        self.quick_failures >= 3 && self.state == State::Restarting
    }
}
