//! What a run is given and how it ends: the module, the request (arguments, environment,
//! folders, network, limits, output) and the outcome with its exit code. A leaf every step of
//! running, serving and compiling shares.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::RuntimeError;
use crate::inspect::{ModuleInfo, inspect};
use crate::limits::{Limits, MemoryBudget, MemoryGauge, Resource};
use crate::net::denial::DenialSink;
use crate::stop::Stop;

/// A wasm binary, inspected and ready to compile. On a warm run its bytes are never read: the
/// cache knows its digest and inspection from the file's size, mtime and inode.
pub struct Wasm {
    pub path: PathBuf,
    bytes: std::sync::OnceLock<Arc<[u8]>>,
    /// Where the bytes come from when they are needed: the file at `path` when `None`.
    loader: Option<Loader>,
    pub info: ModuleInfo,
    /// Precompiled code the operator allowed for this module (a bundle's, imported into the
    /// cache apart from Qyvol's own), mapped instead of compiling. `None`: Qyvol's own code
    /// from the cache, or a compilation.
    pub precompiled: Option<PathBuf>,
}

/// Fetches a module's bytes on demand (e.g. a bundle's wasm blob, verified as it is read).
pub type Loader = Box<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>;

impl std::fmt::Debug for Wasm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wasm")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Wasm {
    /// A module already in memory (from a bundle), checked by the caller.
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>) -> Result<Self, RuntimeError> {
        let info = inspect(&bytes).map_err(|reason| RuntimeError::Invalid {
            path: path.clone(),
            reason,
        })?;
        Ok(Self {
            path,
            bytes: Arc::<[u8]>::from(bytes).into(),
            loader: None,
            info,
            precompiled: None,
        })
    }

    /// A file known by its inspection (from the cache), read from `path` only if it has to be
    /// compiled.
    pub(crate) fn known(path: PathBuf, info: ModuleInfo) -> Self {
        Self {
            path,
            bytes: std::sync::OnceLock::new(),
            loader: None,
            info,
            precompiled: None,
        }
    }

    /// A module known by its inspection (from the cache), whose bytes `loader` fetches only if
    /// it has to be compiled.
    pub fn deferred(path: PathBuf, info: ModuleInfo, loader: Loader) -> Self {
        Self {
            path,
            bytes: std::sync::OnceLock::new(),
            loader: Some(loader),
            info,
            precompiled: None,
        }
    }

    /// The bytes, read now if they were not; a file changed since it was inspected is an error.
    pub fn bytes(&self) -> Result<Arc<[u8]>, RuntimeError> {
        if let Some(b) = self.bytes.get() {
            return Ok(b.clone());
        }
        let bytes: Arc<[u8]> = match &self.loader {
            Some(load) => load()
                .map_err(|reason| RuntimeError::Invalid {
                    path: self.path.clone(),
                    reason,
                })?
                .into(),
            None => read_all(qyvol_common::open_regular(&self.path)?.0, &self.path)?.into(),
        };
        if crate::inspect::sha256_hex(&bytes) != self.info.sha256 {
            return Err(RuntimeError::Invalid {
                path: self.path.clone(),
                reason: "the file changed while it was being loaded; run again".into(),
            });
        }
        Ok(self.bytes.get_or_init(|| bytes).clone())
    }
}

/// What the guest gets: its arguments, environment, folders and limits.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub argv0: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<MountGrant>,
    pub limits: Limits,
    /// What the guest may reach or bind on the network; nothing when empty.
    pub network: Vec<qyvol_common::NetworkGrant>,
    /// Connections to loopback, link-local and private addresses need a grant naming the
    /// address (see `Policy::block_private`).
    pub block_private: bool,
    /// Told of every connection or bind the grants refuse.
    pub denials: DenialSink,
    /// Where the guest's standard output and error go.
    pub output: Output,
    /// Where the memory the guest's instances use is counted, if anywhere.
    pub memory_gauge: Option<MemoryGauge>,
    /// Memory counted with every other guest of the process, and its bound.
    pub node_memory: Option<MemoryBudget>,
    /// Ends a run from outside; a run with one is always interruptible (epochs on).
    pub stop: Option<Stop>,
    /// The key-value buckets it may open (`wasi:keyvalue`), if any.
    pub keyvalue: Option<crate::keyvalue::KeyValue>,
    /// Its `wasi:config` variables and secrets.
    pub config: crate::keyvalue::ConfigVars,
    /// The apps it may call by name, in process.
    pub calls: crate::calls::Calls,
}

/// Where a guest's standard output and error go.
#[derive(Clone, Default)]
pub enum Output {
    /// The host process's own (a `qyvol run` in a terminal).
    #[default]
    Inherit,
    /// Line by line to the embedder, in process (a node's app log).
    Lines(Arc<dyn crate::output::LineSink>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Inherit => "Inherit",
            Self::Lines(_) => "Lines",
        })
    }
}

/// How a guest's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest returned or called `exit` with this code.
    Exited(i32),
    /// The guest trapped: the trap's description and the wasm function backtrace.
    Trapped {
        trap: String,
        backtrace: Vec<String>,
    },
    /// The time limit passed.
    TimedOut(Duration),
    /// The guest grew memory or a table past its limit.
    LimitExceeded { resource: Resource, limit: u64 },
    /// The guest used up its fuel.
    FuelExhausted(u64),
    /// The embedder ended the run ([`crate::Stop`]).
    Stopped,
}

/// The exit code for a run that ended some other way than by the guest's own exit: `timeout(1)`'s
/// for the time limit (and fuel), wasmtime's for a trap (128 + SIGABRT), Docker's for memory (an
/// OOM kill, 128 + SIGKILL) and for a stop (128 + SIGTERM). docs/exit-codes.md is the table.
pub const EXIT_TIMEOUT: u8 = 124;

pub const EXIT_TRAP: u8 = 134;

pub const EXIT_MEMORY: u8 = 137;

pub const EXIT_STOPPED: u8 = 143;

impl Outcome {
    /// The process exit code this outcome gives `qyvol run`, a node's exit record and the
    /// shim's container alike: the guest's own code (as a shell sees it, 0-255), or one of the
    /// codes above.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exited(code) => code & 0xff,
            Self::TimedOut(_) | Self::FuelExhausted(_) => EXIT_TIMEOUT.into(),
            Self::Trapped { .. } => EXIT_TRAP.into(),
            Self::LimitExceeded { .. } => EXIT_MEMORY.into(),
            Self::Stopped => EXIT_STOPPED.into(),
        }
    }
}

/// Reads a module file opened with `open_regular` (never a FIFO or device that could block).
pub(crate) fn read_all(mut file: std::fs::File, path: &Path) -> Result<Vec<u8>, RuntimeError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// A host folder the guest may see at `guest`.
#[derive(Debug, Clone)]
pub struct MountGrant {
    /// The folder: absolute and free of symlinks (canonicalised by whoever trusted the path,
    /// or checked beneath `beneath`); a symlink found when it is opened is refused.
    pub host: PathBuf,
    pub guest: String,
    pub readonly: bool,
    /// The folder `host` must stay beneath (a manifest's folder, unless `--allow-outside`):
    /// `host` is then opened from a handle on it, so neither `..` nor a swap leads out.
    pub beneath: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One table for `run`, the node and the shim: the shim once said 143 for a stopped guest
    /// where `run` said 124.
    #[test]
    fn each_way_a_run_ends_has_one_exit_code() {
        let trap = Outcome::Trapped {
            trap: String::new(),
            backtrace: Vec::new(),
        };
        let memory = Outcome::LimitExceeded {
            resource: crate::Resource::AppMemory,
            limit: 1,
        };
        let codes = [
            Outcome::Exited(3),
            Outcome::Exited(-1),
            Outcome::Exited(300),
            Outcome::TimedOut(Duration::ZERO),
            Outcome::FuelExhausted(1),
            trap,
            memory,
            Outcome::Stopped,
        ]
        .map(|o| o.exit_code());
        assert_eq!(codes, [3, 255, 44, 124, 124, 134, 137, 143]);
    }
}
