//! What the API's JSON carries: the deploy request an operator sends, and the views of an
//! app, of the node and of an event that the node answers with.

use serde::{Deserialize, Serialize};

use crate::state::{self, AppKind, Desired, State};

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
    /// `native`, `sandbox` or `edge`: the policy over the manifest's own.
    pub environment: Option<String>,
    /// Let the manifest's entrypoint and mounts point outside its folder.
    pub allow_outside: bool,
    /// Never run a bundle's precompiled code, even one built on this node.
    pub no_precompiled: bool,
    /// The largest module accepted for compilation (default: `run`'s).
    pub max_module_size: Option<String>,
    /// The longest compilation may take (default: `run`'s).
    pub compile_timeout: Option<String>,
    /// Key-value buckets granted (`--keyvalue`).
    pub keyvalue: Vec<String>,
    /// `NAME=VALUE` variables for `wasi:config` (`--config`).
    pub config: Vec<String>,
    /// Secrets, read by the client from files or stdin (`--secret NAME=FILE`).
    pub secrets: Vec<SecretValue>,
    /// The project the app belongs to (`qyvol up -d`): `ps` groups by it, `down` removes it.
    pub project: Option<String>,
    /// Apps of the project it may call by name, in process (`calls: [api]`).
    pub calls: Vec<String>,
    /// Replace a running app of this name with zero downtime, or deploy it if there is none.
    pub update: bool,
    /// An HTTP app's health check path, and how often it is probed (default `10s`); the new
    /// version of an update must answer it with a 2xx before it takes the route.
    pub health: Option<String>,
    pub health_interval: Option<String>,
}

/// A secret in a deploy request: its value never printed by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({}: <hidden>)", self.name)
    }
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
    /// An HTTP app's instances made so far: as many as its requests with fresh instances, fewer
    /// when a WASI 0.3 app reuses them.
    #[serde(default)]
    pub instances: u64,
    /// Only in `inspect`: the grants and limits each instance gets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub spec: Option<state::Spec>,
    /// The project it belongs to (`qyvol up -d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `starting`, `healthy` or `unhealthy`, for an app with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Why its last health check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_error: Option<String>,
    /// Whether `qyvol rollback` has a version to return to.
    #[serde(default)]
    pub rollback: bool,
    /// Only in `inspect`: what each granted key-value bucket holds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub buckets: Option<Vec<qyvol_runtime::keyvalue::BucketUsage>>,
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
