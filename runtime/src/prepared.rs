//! A compiled command ready to run many times: the engine, the linked and pre-instantiated
//! module or component, and the async runtime, kept between runs so each run only builds a
//! store and a WASI context, instantiates and calls. `qyvol run` uses it once; servers and the
//! benchmarks use it per request.

use wasmtime::component::Component;
use wasmtime::{Engine, InstancePre, Linker, Module, Store, Trap, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx};

use crate::compile::Compilation;
use crate::engine::{self, EpochTicker};
use crate::host::Host;
use crate::inspect::WasmKind;
use crate::limits::LimitExceeded;
use crate::limits::Limits;
use crate::net::{NetworkAccess, NetworkHost};
use crate::request::{Outcome, RunRequest, Wasm};
use crate::{RuntimeError, wasi};
use std::time::Duration;
use wasmtime_wasi_http::WasiHttpView;

pub struct Prepared {
    engine: Engine,
    config: engine::EngineConfig,
    program: Program,
    /// Always `Some` until dropped, when it is shut down without waiting (see `Drop`).
    rt: Option<tokio::runtime::Runtime>,
}

/// A runtime dropped the usual way waits for its blocking threads, which tokio forbids inside
/// another runtime's task (where a node drops an app it could not start): so it never waits.
impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

enum Program {
    Core(InstancePre<Host<WasiP1Ctx>>),
    /// A WASI 0.2 command (`wasi:cli/run@0.2`).
    Component(CommandPre<Host<WasiCtx>>),
    /// A WASI 0.3 command (`wasi:cli/run@0.3`), run as wasmtime runs one: inside
    /// `run_concurrent`, so its async calls and tasks make progress.
    ComponentP3(
        wasmtime::component::InstancePre<Host<WasiCtx>>,
        wasmtime_wasi::p3::bindings::CommandIndices,
    ),
}

impl Prepared {
    /// Compiles (or maps from the cache) and links `wasm` on an engine set as `config` (see
    /// [`engine::EngineConfig::decide`]) for runs like `req`; `limits.compile` bounds compilation.
    pub fn new(
        wasm: &Wasm,
        req: &RunRequest,
        config: engine::EngineConfig,
        how: Compilation<'_>,
    ) -> Result<Self, RuntimeError> {
        let tier = crate::compile::tier(wasm, config, how)?;
        let (config, engine, program) = match Self::link(wasm, req, how, config.with(tier)) {
            // Winch does not compile every proposal (e.g. GC): `Auto` falls back to Cranelift.
            Err(RuntimeError::Compile { reason, .. })
                if tier == engine::Tier::Winch && how.compiler == engine::Compiler::Auto =>
            {
                tracing::debug!(%reason, "winch cannot compile this module; compiling with cranelift");
                Self::link(wasm, req, how, config.with(engine::Tier::Cranelift))?
            }
            Err(RuntimeError::Compile { path, reason }) if tier == engine::Tier::Winch => {
                return Err(RuntimeError::Compile {
                    path,
                    reason: format!(
                        "Winch cannot compile this module ({}); Cranelift can: choose the `auto` or `cranelift` compiler",
                        reason.lines().next().unwrap_or_default()
                    ),
                });
            }
            linked => linked?,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RuntimeError::engine)?;
        Ok(Self {
            engine,
            config,
            program,
            rt: Some(rt),
        })
    }

    fn link(
        wasm: &Wasm,
        req: &RunRequest,
        how: Compilation<'_>,
        config: engine::EngineConfig,
    ) -> Result<(engine::EngineConfig, Engine, Program), RuntimeError> {
        let engine = engine::new(config)?;
        let limits = &req.limits;
        let program = match wasm.info.kind {
            WasmKind::CoreModule => Program::Core(link_core(&engine, wasm, limits, how)?),
            WasmKind::Component => link_component(&engine, wasm, limits, how)?,
        };
        Ok((config, engine, program))
    }

    /// One run: a fresh store and WASI context from `req`, instantiate, call, outcome.
    pub fn run(&self, req: &RunRequest) -> Result<Outcome, RuntimeError> {
        if (req.limits.timeout.is_some() || req.stop.is_some()) && !self.config.epoch
            || req.limits.fuel.is_some() && !self.config.fuel
        {
            return Err(RuntimeError::Engine("this program was prepared without time or fuel limits; prepare it with the limits it will run under".into()));
        }
        let Some(rt) = &self.rt else {
            return Err(RuntimeError::Engine("the runtime was shut down".into()));
        };
        rt.block_on(async {
            let run = async {
                match &self.program {
                    Program::Core(pre) => self.run_core(pre, req).await,
                    Program::Component(pre) => self.run_component(pre, req).await,
                    Program::ComponentP3(pre, indices) => {
                        self.run_component_p3(pre, indices, req).await
                    }
                }
            };
            match &req.stop {
                // A guest waiting in a host call is past epochs' reach: its future is dropped.
                Some(stop) => tokio::select! {
                    outcome = run => outcome,
                    () = stop.stopped() => Ok(Outcome::Stopped),
                },
                None => run.await,
            }
        })
    }

    /// Ends the runtime without waiting for a guest left blocked in a host call.
    pub fn shutdown(self) {
        drop(self);
    }

    /// A run's store: its WASI context, grants, memory limit and stop handle.
    fn store<W>(&self, wasi: W, network: NetworkAccess, req: &RunRequest) -> Store<Host<W>> {
        let host = Host::new(wasi, network, req.limits.memory, req.limits.timeout)
            .observed(req, req.stop.clone());
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| &mut h.limiter);
        store
    }

    async fn run_core(
        &self,
        pre: &InstancePre<Host<WasiP1Ctx>>,
        req: &RunRequest,
    ) -> Result<Outcome, RuntimeError> {
        let network = NetworkAccess::of(req);
        let mounts = wasi::Mounts::open(&req.mounts)?;
        let mut b = wasi::builder(req, &mounts, &network)?;
        if matches!(req.output, crate::request::Output::Inherit) {
            // A command in a terminal reads the terminal; one whose output is collected reads
            // nothing.
            b.inherit_stdin();
        }
        let mut store = self.store(crate::handles::build_p1(&mut b), network, req);
        let _ticker = apply_limits(&self.engine, &mut store, req)?;
        let body = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        Ok(finish(with_deadline(req.limits.timeout, body).await, req))
    }

    async fn run_component(
        &self,
        pre: &CommandPre<Host<WasiCtx>>,
        req: &RunRequest,
    ) -> Result<Outcome, RuntimeError> {
        let network = NetworkAccess::of(req);
        let mounts = wasi::Mounts::open(&req.mounts)?;
        let mut b = wasi::builder(req, &mounts, &network)?;
        if matches!(req.output, crate::request::Output::Inherit) {
            // A command in a terminal reads the terminal; one whose output is collected reads
            // nothing.
            b.inherit_stdin();
        }
        let mut store = self.store(b.build(), network, req);
        let _ticker = apply_limits(&self.engine, &mut store, req)?;
        let body = async {
            let command = pre.instantiate_async(&mut store).await?;
            match command.wasi_cli_run().call_run(&mut store).await? {
                Ok(()) => Ok(()),
                Err(()) => Err(I32Exit(1).into()),
            }
        };
        Ok(finish(with_deadline(req.limits.timeout, body).await, req))
    }

    async fn run_component_p3(
        &self,
        pre: &wasmtime::component::InstancePre<Host<WasiCtx>>,
        indices: &wasmtime_wasi::p3::bindings::CommandIndices,
        req: &RunRequest,
    ) -> Result<Outcome, RuntimeError> {
        let network = NetworkAccess::of(req);
        let mounts = wasi::Mounts::open(&req.mounts)?;
        let mut b = wasi::builder(req, &mounts, &network)?;
        if matches!(req.output, crate::request::Output::Inherit) {
            b.inherit_stdin();
        }
        let mut store = self.store(b.build(), network, req);
        let _ticker = apply_limits(&self.engine, &mut store, req)?;
        let body = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let command = indices.load(&mut store, &instance)?;
            let ran = store
                .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
                .await??;
            match ran {
                Ok(()) => Ok(()),
                Err(()) => Err(I32Exit(1).into()),
            }
        };
        Ok(finish(with_deadline(req.limits.timeout, body).await, req))
    }
}

fn link_core(
    engine: &Engine,
    wasm: &Wasm,
    limits: &Limits,
    how: Compilation<'_>,
) -> Result<InstancePre<Host<WasiP1Ctx>>, RuntimeError> {
    let wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
    let probe = Host::new(wasi, NetworkAccess::default(), None, None);
    link_command_module(engine, wasm, limits, how, |h| &mut h.wasi, probe)
}

/// Compiles and links a WASI preview 1 command (for `run`, and for serving CGI-style):
/// every import checked first so a missing one is named with what would provide it, and
/// `_start` required. `probe` is store data for that check only.
pub(crate) fn link_command_module<T: Send + 'static>(
    engine: &Engine,
    wasm: &Wasm,
    limits: &Limits,
    how: Compilation<'_>,
    wasi: fn(&mut T) -> &mut WasiP1Ctx,
    probe: T,
) -> Result<InstancePre<T>, RuntimeError> {
    let module: Module = crate::compile::prepare(engine, wasm, limits.compile, how)?;
    let mut linker: Linker<T> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, wasi).map_err(RuntimeError::engine)?;
    crate::handles::link_p1_open(&mut linker, wasi).map_err(RuntimeError::engine)?;
    crate::imports::check_core_imports(&module, &linker, &mut Store::new(engine, probe))?;
    if !module.exports().any(|e| e.name() == "_start") {
        return Err(RuntimeError::Invalid {
            path: wasm.path.clone(),
            reason: "it exports no `_start` function: it is a library (reactor), not a command"
                .into(),
        });
    }
    linker
        .instantiate_pre(&module)
        .map_err(RuntimeError::engine)
}

/// A command component: WASI 0.3 when it exports `wasi:cli/run@0.3` (also when it exports 0.2's
/// as well, as wasmtime decides), 0.2 otherwise.
fn link_component(
    engine: &Engine,
    wasm: &Wasm,
    limits: &Limits,
    how: Compilation<'_>,
) -> Result<Program, RuntimeError> {
    let pre = link_component_world(&component_linker(engine)?, engine, wasm, limits, how)?;
    if let Ok(indices) = wasmtime_wasi::p3::bindings::CommandIndices::new(&pre) {
        return Ok(Program::ComponentP3(pre, indices));
    }
    CommandPre::new(pre).map(Program::Component).map_err(|_| RuntimeError::Invalid {
        path: wasm.path.clone(),
        reason: "the component does not export `wasi:cli/run`: it is not a command (an HTTP handler needs `runtime: wasi-http`)".into(),
    })
}

/// A linker with all of WASI and `wasi:http` 0.2, and 0.3 where the engine has concurrency
/// (commands may make outgoing requests, handlers answer incoming ones, both under the same
/// grants). Building one defines several hundred host functions: a server builds it once per
/// engine and links every app's component with it (`serve::Runtime::component_linker`).
pub(crate) fn component_linker<T: NetworkHost + WasiHttpView + crate::keyvalue::StateHost>(
    engine: &Engine,
) -> Result<wasmtime::component::Linker<T>, RuntimeError> {
    let mut linker = wasmtime::component::Linker::<T>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::engine)?;
    // WASI 0.3 where the engine has the concurrency it needs (commands; see
    // `EngineConfig::concurrent`).
    if engine.get_concurrency_support() {
        wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;
        crate::net::link_p3_guards(&mut linker).map_err(RuntimeError::engine)?;
        // Outgoing 0.3 requests go through the same sender as 0.2's (`GuestNet`'s hooks).
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;
    }
    crate::net::link_guards(&mut linker).map_err(RuntimeError::engine)?;
    crate::keyvalue::link(&mut linker).map_err(RuntimeError::engine)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(RuntimeError::engine)?;
    Ok(linker)
}

/// Compiles (or maps) a component and links it with `linker` (made by [`component_linker`]
/// for `engine`); the caller checks it exports the world it is run as.
pub(crate) fn link_component_world<T>(
    linker: &wasmtime::component::Linker<T>,
    engine: &Engine,
    wasm: &Wasm,
    limits: &Limits,
    how: Compilation<'_>,
) -> Result<wasmtime::component::InstancePre<T>, RuntimeError> {
    let component: Component = crate::compile::prepare(engine, wasm, limits.compile, how)?;
    linker
        .instantiate_pre(&component)
        .map_err(|e| crate::imports::unsupported_component_import(&format!("{e:#}")))
}

/// Sets fuel and the epoch deadline; returns the ticker that must live as long as the run.
fn apply_limits<W>(
    engine: &Engine,
    store: &mut Store<Host<W>>,
    req: &RunRequest,
) -> Result<Option<EpochTicker>, RuntimeError> {
    if let Some(fuel) = req.limits.fuel {
        store.set_fuel(fuel).map_err(RuntimeError::engine)?;
    }
    match (req.limits.timeout, &req.stop) {
        (Some(t), None) => {
            store.epoch_deadline_trap();
            let ticks = t.as_millis().div_ceil(engine::TICK.as_millis()).max(1);
            store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
            Ok(Some(EpochTicker::start(engine)))
        }
        (_, Some(_)) => {
            // At each tick: the deadline passed or a stop was asked, interrupt; go on otherwise.
            store.epoch_deadline_callback(|ctx| {
                Ok(if ctx.data().must_end() {
                    wasmtime::UpdateDeadline::Interrupt
                } else {
                    wasmtime::UpdateDeadline::Continue(1)
                })
            });
            store.set_epoch_deadline(1);
            Ok(Some(EpochTicker::start(engine)))
        }
        (None, None) => Ok(None),
    }
}

/// `None` when the deadline passed: the guest was waiting in a host call (a sleep, a read),
/// where epochs cannot reach it, and its future has been dropped.
pub(crate) async fn with_deadline<F: Future<Output = wasmtime::Result<()>>>(
    timeout: Option<Duration>,
    body: F,
) -> Option<wasmtime::Result<()>> {
    match timeout {
        Some(t) => tokio::time::timeout(t, body).await.ok(),
        None => Some(body.await),
    }
}

pub(crate) fn finish(result: Option<wasmtime::Result<()>>, req: &RunRequest) -> Outcome {
    let limits = &req.limits;
    if req.stop.as_ref().is_some_and(crate::stop::Stop::is_stopped) {
        return Outcome::Stopped;
    }
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
