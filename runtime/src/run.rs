//! Running a command, as a pipeline of small steps: load the bytes → inspect → engine →
//! compile → link WASI → instantiate under limits → run → outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store, Trap, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::cache::Cache;
use crate::engine::{self, EpochTicker};
use crate::inspect::{ModuleInfo, WasmKind, inspect};
use crate::limits::{LimitExceeded, Limiter, Resource};
pub use crate::wasi::MountGrant;
use crate::{RuntimeError, wasi};

/// A wasm binary, inspected and ready to compile. On a warm run its bytes are never read: the
/// cache knows its digest and inspection from the file's size, mtime and inode.
#[derive(Debug)]
pub struct Wasm {
    pub path: PathBuf,
    bytes: std::sync::OnceLock<Arc<[u8]>>,
    pub info: ModuleInfo,
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
            info,
        })
    }

    /// The bytes, read now if they were not; a file changed since it was inspected is an error.
    pub(crate) fn bytes(&self) -> Result<Arc<[u8]>, RuntimeError> {
        if let Some(b) = self.bytes.get() {
            return Ok(b.clone());
        }
        let bytes: Arc<[u8]> = std::fs::read(&self.path)
            .map_err(|source| RuntimeError::Read {
                path: self.path.clone(),
                source,
            })?
            .into();
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
    /// Compile from the wasm even if the cache has code (which may have come from a bundle).
    pub refresh: bool,
}

impl std::fmt::Debug for Compilation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compilation")
            .field("cache", &self.cache)
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
}

/// What the guest gets: its arguments, environment, folders and limits.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub argv0: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<MountGrant>,
    pub limits: Limits,
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
}

/// Compiles `wasm` for this host (through the cache) and returns the native code, as stored
/// in a bundle's precompiled layer, with the engine fingerprint it is for.
pub fn precompile(wasm: &Wasm, how: Compilation<'_>) -> Result<(Vec<u8>, String), RuntimeError> {
    let engine = engine::new(false)?;
    let code = match wasm.info.kind {
        WasmKind::CoreModule => {
            crate::compile::prepare::<Module>(&engine, wasm, None, how)?.serialize()
        }
        WasmKind::Component => {
            crate::compile::prepare::<Component>(&engine, wasm, None, how)?.serialize()
        }
    }
    .map_err(RuntimeError::engine)?;
    Ok((code, engine::fingerprint(&engine)))
}

/// Reads and inspects a wasm file, refusing files over `max_size` before reading them. With a
/// cache, an unchanged file is neither read nor hashed again.
pub fn load(path: &Path, max_size: u64, cache: Option<&Cache>) -> Result<Wasm, RuntimeError> {
    let read_err = |source| RuntimeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let size = meta.len();
    let canonical = path.canonicalize().map_err(read_err)?;
    if size <= max_size
        && let Some(info) = cache.and_then(|c| c.stamp_get(&canonical, &meta))
    {
        return Ok(Wasm {
            path: path.to_path_buf(),
            bytes: std::sync::OnceLock::new(),
            info,
        });
    }
    if size > max_size {
        return Err(RuntimeError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: max_size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
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
        info,
    })
}

/// Compiles and runs `wasm` as a command with the grants and limits in `req`.
pub fn run(wasm: &Wasm, req: &RunRequest, how: Compilation<'_>) -> Result<Outcome, RuntimeError> {
    let engine = engine::new(req.limits.fuel.is_some())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RuntimeError::engine)?;
    let result = rt.block_on(async {
        match wasm.info.kind {
            WasmKind::CoreModule => run_core(&engine, wasm, req, how).await,
            WasmKind::Component => run_component(&engine, wasm, req, how).await,
        }
    });
    // A guest stopped in a blocking host call may leave a worker behind: don't wait for it.
    rt.shutdown_background();
    result
}

struct CoreHost {
    wasi: WasiP1Ctx,
    limiter: Limiter,
}

struct ComponentHost {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
}

impl WasiView for ComponentHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

async fn run_core(
    engine: &Engine,
    wasm: &Wasm,
    req: &RunRequest,
    how: Compilation<'_>,
) -> Result<Outcome, RuntimeError> {
    let module: Module = crate::compile::prepare(engine, wasm, req.limits.compile, how)?;
    let mut linker: Linker<CoreHost> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |h| &mut h.wasi)
        .map_err(RuntimeError::engine)?;
    let wasi = wasi::builder(req)?.build_p1();
    let mut store = Store::new(
        engine,
        CoreHost {
            wasi,
            limiter: Limiter::new(req.limits.memory),
        },
    );
    store.limiter(|h| &mut h.limiter);
    check_core_imports(&module, &linker, &mut store)?;
    if !module.exports().any(|e| e.name() == "_start") {
        return Err(RuntimeError::Invalid {
            path: wasm.path.clone(),
            reason: "it exports no `_start` function: it is a library (reactor), not a command"
                .into(),
        });
    }
    let _ticker = apply_limits(engine, &mut store, &req.limits)?;
    let body = async {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    };
    Ok(finish(
        with_deadline(req.limits.timeout, body).await,
        &req.limits,
    ))
}

async fn run_component(
    engine: &Engine,
    wasm: &Wasm,
    req: &RunRequest,
    how: Compilation<'_>,
) -> Result<Outcome, RuntimeError> {
    let component: Component = crate::compile::prepare(engine, wasm, req.limits.compile, how)?;
    let mut linker = wasmtime::component::Linker::<ComponentHost>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::engine)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| unsupported_component_import(&format!("{e:#}")))?;
    let pre = CommandPre::new(pre).map_err(|_| RuntimeError::Invalid {
        path: wasm.path.clone(),
        reason: "the component does not export `wasi:cli/run`: it is not a command (an HTTP handler needs `runtime: wasi-http`)".into(),
    })?;
    let ctx = wasi::builder(req)?.build();
    let host = ComponentHost {
        ctx,
        table: ResourceTable::new(),
        limiter: Limiter::new(req.limits.memory),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limiter);
    let _ticker = apply_limits(engine, &mut store, &req.limits)?;
    let body = async {
        let command = pre.instantiate_async(&mut store).await?;
        match command.wasi_cli_run().call_run(&mut store).await? {
            Ok(()) => Ok(()),
            Err(()) => Err(I32Exit(1).into()),
        }
    };
    Ok(finish(
        with_deadline(req.limits.timeout, body).await,
        &req.limits,
    ))
}

/// Sets fuel and the epoch deadline; returns the ticker that must live as long as the run.
fn apply_limits<T>(
    engine: &Engine,
    store: &mut Store<T>,
    limits: &Limits,
) -> Result<Option<EpochTicker>, RuntimeError> {
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(RuntimeError::engine)?;
    }
    store.epoch_deadline_trap();
    match limits.timeout {
        Some(t) => {
            let ticks = t.as_millis().div_ceil(engine::TICK.as_millis()).max(1);
            store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
            Ok(Some(EpochTicker::start(engine)))
        }
        None => {
            store.set_epoch_deadline(u64::MAX);
            Ok(None)
        }
    }
}

/// `None` when the deadline passed: the guest was waiting in a host call (a sleep, a read),
/// where epochs cannot reach it, and its future has been dropped.
async fn with_deadline<F: Future<Output = wasmtime::Result<()>>>(
    timeout: Option<Duration>,
    body: F,
) -> Option<wasmtime::Result<()>> {
    match timeout {
        Some(t) => tokio::time::timeout(t, body).await.ok(),
        None => Some(body.await),
    }
}

fn finish(result: Option<wasmtime::Result<()>>, limits: &Limits) -> Outcome {
    let Some(result) = result else {
        return Outcome::TimedOut(limits.timeout.unwrap_or_default());
    };
    let Err(err) = result else {
        return Outcome::Exited(0);
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Outcome::Exited(exit.0);
    }
    if let Some(l) = err.downcast_ref::<LimitExceeded>() {
        return Outcome::LimitExceeded {
            resource: l.resource,
            limit: l.limit,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return Outcome::TimedOut(limits.timeout.unwrap_or_default()),
        Some(Trap::OutOfFuel) => return Outcome::FuelExhausted(limits.fuel.unwrap_or_default()),
        _ => {}
    }
    let trap = match err.downcast_ref::<Trap>() {
        Some(t) => t.to_string().trim_start_matches("wasm trap: ").to_string(),
        None => format!("{:#}", err.root_cause()),
    };
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(frames)
        .unwrap_or_default();
    Outcome::Trapped { trap, backtrace }
}

fn frames(bt: &WasmBacktrace) -> Vec<String> {
    bt.frames()
        .iter()
        .map(|f| {
            let name = f
                .func_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("<wasm function {}>", f.func_index()));
            match f.module_offset() {
                Some(off) => format!("{name} @ {off:#x}"),
                None => name,
            }
        })
        .collect()
}

/// Refuses imports no one provides before instantiation, naming the import and what would.
fn check_core_imports(
    module: &Module,
    linker: &Linker<CoreHost>,
    store: &mut Store<CoreHost>,
) -> Result<(), RuntimeError> {
    for import in module.imports() {
        if linker
            .get(&mut *store, import.module(), import.name())
            .is_ok()
        {
            continue;
        }
        let hint = match import.module() {
            "wasi_snapshot_preview1" => "no such WASI preview 1 function exists; rebuild the module with a current toolchain".to_string(),
            "wasi_unstable" => "the module targets the retired `wasi_unstable` snapshot: rebuild it for `wasm32-wasip1`".to_string(),
            "env" => "`env` imports are left for a JavaScript or embedder glue: build for `wasm32-wasip1` with every symbol defined".to_string(),
            m if m.starts_with("wasi:") => "WASI 0.2 interfaces are for components: build for `wasm32-wasip2`".to_string(),
            m => format!("core modules get WASI preview 1 (`wasi_snapshot_preview1`) only; nothing provides `{m}`"),
        };
        return Err(RuntimeError::UnsupportedImport {
            import: format!("{}::{}", import.module(), import.name()),
            hint,
        });
    }
    Ok(())
}

fn unsupported_component_import(message: &str) -> RuntimeError {
    let import = message.split('`').nth(1).unwrap_or("?").to_string();
    let hint = if import.starts_with("wasi:http") {
        "HTTP handlers need `runtime: wasi-http` and `qyvol serve`".to_string()
    } else if import.starts_with("wasi:") {
        format!(
            "Qyvol provides WASI 0.2 (`wasi:cli`, `wasi:filesystem`, `wasi:clocks`, `wasi:random`, `wasi:io`, `wasi:sockets`) but not this interface ({message})"
        )
    } else {
        format!("components get WASI 0.2 interfaces only ({message})")
    };
    RuntimeError::UnsupportedImport { import, hint }
}
