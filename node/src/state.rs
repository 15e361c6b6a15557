//! The node's durable state: one record per app (what the operator asked for and what was last
//! seen of it) in a redb database under `QYVOL_HOME/node/`. Every change is one write
//! transaction, committed (fsynced) before the API answers, so after a crash or `kill -9` the
//! database holds exactly the acknowledged changes: an app is there whole or not at all.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::NodeError;

const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountSpec {
    pub host: PathBuf,
    pub guest: String,
    pub readonly: bool,
    pub beneath: Option<PathBuf>,
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

/// The database. Each method is one transaction.
///
/// After an I/O error (a full disk, say) redb refuses every later transaction until the
/// database is opened again, so the call that met the error fails and the next one reopens it
/// first: once space is back the node works again without a restart.
pub struct Db {
    path: std::path::PathBuf,
    /// `None` while it could not be reopened.
    db: std::sync::RwLock<Option<Database>>,
    /// A transaction met an I/O error: the next call reopens the database.
    io_failed: std::sync::atomic::AtomicBool,
    /// A record could not be read (it was skipped): nothing may be cleaned up on its account.
    damaged: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

fn db_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::State(e.to_string())
}

fn decode(bytes: &[u8]) -> Result<AppRecord, NodeError> {
    serde_json::from_slice(bytes).map_err(|e| NodeError::State(format!("a record is damaged: {e}")))
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        let damaged = |why: String| {
            NodeError::State(format!(
                "the node's database `{}` is damaged ({why}); move it away to start with no apps (the modules in `node/modules/` are kept until then)",
                path.display()
            ))
        };
        // An empty file is not a new database: it is one whose contents were lost.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(damaged("it is empty".into()));
        }
        // redb asserts on some truncated files; a damaged file is an error, never a panic.
        let opened = std::panic::catch_unwind(|| Database::create(path))
            .map_err(|_| damaged("it cannot be read".into()))?;
        let db = opened.map_err(|e| damaged(e.to_string()))?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(APPS).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            db: std::sync::RwLock::new(Some(db)),
            io_failed: std::sync::atomic::AtomicBool::new(false),
            damaged: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs one transaction on the database, reopening it first if an earlier one met an I/O
    /// error; an I/O error now is noted for the next call.
    fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T, Failed>) -> Result<T, NodeError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.io_failed.swap(false, Relaxed) {
            self.reopen()?;
        }
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = db.as_ref() else {
            drop(db);
            self.io_failed.store(true, Relaxed);
            return Err(NodeError::State(
                "the node's database could not be opened again after a disk error; free some space and try again".into(),
            ));
        };
        guarded(|| {
            f(db).map_err(|failed| match failed {
                Failed::Node(e) => e,
                Failed::Db(redb::Error::Io(io)) => {
                    self.io_failed.store(true, Relaxed);
                    NodeError::State(format!(
                        "the node's database could not be written ({io}); nothing was changed, and the next call opens it again"
                    ))
                }
                Failed::Db(e) => {
                    if matches!(e, redb::Error::PreviousIo) {
                        self.io_failed.store(true, Relaxed);
                    }
                    db_err(e)
                }
            })
        })
    }

    fn reopen(&self) -> Result<(), NodeError> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        // redb allows one open handle per file: the broken one goes first.
        *slot = None;
        let opened = std::panic::catch_unwind(|| Database::create(&self.path))
            .map_err(|_| NodeError::State("the node's database is damaged".into()))?;
        match opened {
            Ok(db) => {
                tracing::info!("the node's database was opened again after a disk error");
                *slot = Some(db);
                Ok(())
            }
            Err(e) => {
                self.io_failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err(NodeError::State(format!(
                    "the node's database could not be opened again after a disk error ({e}); free some space and try again"
                )))
            }
        }
    }

    /// Adds `record`; refused if an app of that name exists.
    pub fn insert_new(&self, record: &AppRecord) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec(record).map_err(db_err)?;
        self.with(|db| {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(APPS)?;
                if table.get(record.name.as_str())?.is_some() {
                    return Err(NodeError::Exists(record.name.clone()).into());
                }
                table.insert(record.name.as_str(), bytes.as_slice())?;
            }
            Ok(tx.commit()?)
        })
    }

    /// Changes the record of `name` with `f` and returns it as stored; `None` if there is none.
    pub fn update(
        &self,
        name: &str,
        f: impl FnOnce(&mut AppRecord),
    ) -> Result<Option<AppRecord>, NodeError> {
        self.with(|db| {
            let tx = db.begin_write()?;
            let record = {
                let mut table = tx.open_table(APPS)?;
                let Some(mut record) = table.get(name)?.map(|v| decode(v.value())).transpose()?
                else {
                    return Ok(None);
                };
                f(&mut record);
                let bytes = serde_json::to_vec(&record).map_err(db_err)?;
                table.insert(name, bytes.as_slice())?;
                record
            };
            tx.commit()?;
            Ok(Some(record))
        })
    }

    /// Removes `name`; whether it was there.
    pub fn remove(&self, name: &str) -> Result<bool, NodeError> {
        self.with(|db| {
            let tx = db.begin_write()?;
            let was = tx.open_table(APPS)?.remove(name)?.is_some();
            tx.commit()?;
            Ok(was)
        })
    }

    /// Whether a record was found damaged and skipped.
    pub fn has_damage(&self) -> bool {
        self.damaged.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn get(&self, name: &str) -> Result<Option<AppRecord>, NodeError> {
        self.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(APPS)?;
            Ok(table.get(name)?.map(|v| decode(v.value())).transpose()?)
        })
    }

    /// Every app, by name.
    pub fn list(&self) -> Result<Vec<AppRecord>, NodeError> {
        self.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(APPS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                // One damaged record does not take the others down; it is reported and skipped.
                match decode(v.value()) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        tracing::error!(app = k.value(), error = %e, "skipping a damaged record");
                        self.damaged
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Why a transaction failed: redb's error (an I/O error among them), or the node's own.
enum Failed {
    Db(redb::Error),
    Node(NodeError),
}

impl From<NodeError> for Failed {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

impl From<redb::Error> for Failed {
    fn from(e: redb::Error) -> Self {
        Self::Db(e)
    }
}

impl From<redb::TransactionError> for Failed {
    fn from(e: redb::TransactionError) -> Self {
        Self::Db(e.into())
    }
}

impl From<redb::TableError> for Failed {
    fn from(e: redb::TableError) -> Self {
        Self::Db(e.into())
    }
}

impl From<redb::StorageError> for Failed {
    fn from(e: redb::StorageError) -> Self {
        Self::Db(e.into())
    }
}

impl From<redb::CommitError> for Failed {
    fn from(e: redb::CommitError) -> Self {
        Self::Db(e.into())
    }
}

/// Runs a database call; a panic inside redb (it asserts on some damaged pages) becomes an
/// error saying the state is damaged, never a crash of the node.
fn guarded<T>(f: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(NodeError::State(
            "the node's database is damaged (a page cannot be read); stop the node and move `node/state.redb` away to start with no apps".into(),
        ))
    })
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
