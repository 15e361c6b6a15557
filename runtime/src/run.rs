//! Running a command, as a pipeline of small steps: load the bytes → inspect → engine →
//! compile → link WASI → instantiate under limits → run → outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Module;
use wasmtime::component::Component;

use crate::RuntimeError;
use crate::cache::Cache;
use crate::engine;
use crate::inspect::{ModuleInfo, WasmKind, inspect};
use crate::limits::Resource;
pub use crate::prepared::Prepared;
pub use crate::wasi::MountGrant;

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

/// How code gets compiled: from the cache when it can, with progress reported for slow builds.
#[derive(Default, Clone, Copy)]
pub struct Compilation<'a> {
    pub cache: Option<&'a Cache>,
    pub progress: Option<&'a dyn CompileProgress>,
    /// Which compiler: `Auto` tiers big modules up through the cache (when there is one and
    /// the executable answers [`crate::tier::HELPER_ARG`]; Cranelift otherwise).
    pub compiler: engine::Compiler,
}

impl std::fmt::Debug for Compilation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compilation")
            .field("cache", &self.cache)
            .field("compiler", &self.compiler)
            .finish_non_exhaustive()
    }
}

/// Told when a compilation (a cache miss) starts and ends, e.g. to draw a spinner.
pub trait CompileProgress {
    fn started(&self, wasm_bytes: u64);
    fn finished(&self);
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Total bytes of linear memory.
    pub memory: Option<u64>,
    /// Wall-clock time from instantiation to exit.
    pub timeout: Option<Duration>,
    /// Units of fuel (roughly, wasm instructions).
    pub fuel: Option<u64>,
    /// Compilation time: wasmtime does not bound it (compile-time DoS is the embedder's job).
    pub compile: Option<Duration>,
    /// Bytes of linear memory all the instances sharing `RunRequest::memory_gauge` may hold
    /// together (an app's concurrent requests).
    pub memory_total: Option<u64>,
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
    pub denials: crate::net::DenialSink,
    /// Where the guest's standard output and error go.
    pub output: Output,
    /// Where the memory the guest's instances use is counted, if anywhere.
    pub memory_gauge: Option<crate::limits::MemoryGauge>,
    /// Memory counted with every other guest of the process, and its bound.
    pub node_memory: Option<crate::limits::MemoryBudget>,
    /// Ends a run from outside; a run with one is always interruptible (epochs on).
    pub stop: Option<crate::host::Stop>,
}

/// Where a guest's standard output and error go.
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// The host process's own (a `qyvol run` in a terminal).
    #[default]
    Inherit,
    /// These files, e.g. the write ends of pipes a log collector reads.
    Files {
        stdout: Arc<std::fs::File>,
        stderr: Arc<std::fs::File>,
    },
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

/// Compiles `wasm` for this host (through the cache) and returns the native code, as stored
/// in a bundle's precompiled layer, with the engine fingerprint it is for.
pub fn precompile(
    wasm: &Wasm,
    config: engine::EngineConfig,
    how: Compilation<'_>,
) -> Result<(Vec<u8>, String), RuntimeError> {
    let engine = engine::new(config)?;
    let code = match wasm.info.kind {
        WasmKind::CoreModule => {
            crate::compile::prepare::<Module>(&engine, wasm, None, how)?.serialize()
        }
        WasmKind::Component => {
            crate::compile::prepare::<Component>(&engine, wasm, None, how)?.serialize()
        }
    }
    .map_err(RuntimeError::engine)?;
    crate::compile::finish_cache_writes();
    Ok((code, engine::fingerprint(&engine)))
}

/// Reads and inspects a wasm file, refusing files over `max_size` before reading them. With a
/// cache, an unchanged file is neither read nor hashed again.
pub fn load(path: &Path, max_size: u64, cache: Option<&Cache>) -> Result<Wasm, RuntimeError> {
    let read_err = |source| RuntimeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let (file, meta) = qyvol_common::open_regular(path)?;
    let size = meta.len();
    let canonical = path.canonicalize().map_err(read_err)?;
    if size <= max_size
        && let Some(info) = cache.and_then(|c| c.stamp_get(&canonical, &meta))
    {
        return Ok(Wasm {
            path: path.to_path_buf(),
            bytes: std::sync::OnceLock::new(),
            loader: None,
            info,
            precompiled: None,
        });
    }
    if size > max_size {
        return Err(RuntimeError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: max_size,
        });
    }
    let bytes = read_all(file, path)?;
    let info = inspect(&bytes).map_err(|reason| RuntimeError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    if let Some(c) = cache {
        c.stamp_put(&canonical, &meta, &info);
    }
    Ok(Wasm {
        path: path.to_path_buf(),
        bytes: Arc::<[u8]>::from(bytes).into(),
        loader: None,
        info,
        precompiled: None,
    })
}

/// Reads a module file opened with `open_regular` (never a FIFO or device that could block).
fn read_all(mut file: std::fs::File, path: &Path) -> Result<Vec<u8>, RuntimeError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// Compiles and runs `wasm` once as a command with the grants and limits in `req`, on an engine
/// set as `config`.
pub fn run(
    wasm: &Wasm,
    req: &RunRequest,
    config: engine::EngineConfig,
    how: Compilation<'_>,
) -> Result<Outcome, RuntimeError> {
    let outcome = Prepared::new(wasm, req, config, how).and_then(|prepared| {
        let outcome = prepared.run(req);
        prepared.shutdown();
        outcome
    });
    crate::compile::finish_cache_writes();
    outcome
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
