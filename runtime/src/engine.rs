//! The wasmtime engine Qyvol runs guests on, and the clock that drives epoch interruption.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine};

use crate::{RuntimeError, WasiGeneration};

/// How often the epoch advances while a time limit is set: the bound on how late a looping
/// guest is stopped after its deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The engine settings that change generated code, chosen from what a run needs: fuel
/// metering only with a fuel limit, epoch checks only with a time limit (both cost compile time
/// and run time, so code for a run without limits carries neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EngineConfig {
    pub fuel: bool,
    pub epoch: bool,
    /// The component model's concurrency (its async ABI, `run_concurrent`), which WASI 0.3
    /// components need. It sets up state in every store (it doubled a served component's
    /// instantiation, 10 to 20 µs), so engines that serve 0.2 handlers and CGI modules go
    /// without it; a served WASI 0.3 handler gets an engine with it.
    pub concurrent: bool,
    /// Which compiler the engine's code comes from.
    pub tier: Tier,
}

/// The compiler behind an engine's code: Cranelift optimises (the code every warm run maps),
/// Winch is wasmtime's baseline compiler (about 4× faster to compile, slower code), used for
/// the first run of a big module while Cranelift's code is made in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Cranelift,
    Winch,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Cranelift => "cranelift",
            Tier::Winch => "winch",
        }
    }
}

/// What a run asks for (`qyvol run --compiler`): one compiler, or `Auto`, which maps
/// Cranelift's code when the cache has it and otherwise starts a big module on Winch while
/// Cranelift compiles in the background (see `tier.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compiler {
    #[default]
    Auto,
    Cranelift,
    Winch,
}

/// What drives a guest, which decides with its limits how its engine is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A command run to its end by the operator (`qyvol run`): epochs only under a time limit,
    /// so a run without one carries no epoch checks.
    Command,
    /// A command something else may stop (the node's commands, the shim's containers): epochs
    /// always, so a stop reaches a guest that never calls the host.
    Stoppable,
    /// HTTP requests (`qyvol serve`, the node's apps): epochs always, so any request can be
    /// stopped and a busy handler yields its thread.
    Serving,
}

impl EngineConfig {
    /// The one decision of an engine's settings: the caller says what drives the guest and
    /// which WASI it speaks (`ModuleInfo::wasi`), the limits say what is metered. Code
    /// precompiled for a guest (a bundle's layer, the cache) is only valid for the engine this
    /// returns, so `qyvol build`, `run`, `serve`, the node and the shim all ask here.
    pub fn decide(purpose: Purpose, limits: &crate::Limits, wasi: WasiGeneration) -> Self {
        Self {
            fuel: limits.fuel.is_some(),
            epoch: purpose != Purpose::Command || limits.timeout.is_some(),
            concurrent: purpose != Purpose::Serving || wasi == WasiGeneration::P3,
            tier: Tier::Cranelift,
        }
    }

    /// The same settings with code from `tier`.
    pub fn with(self, tier: Tier) -> Self {
        Self { tier, ..self }
    }

    /// The settings `engine` was made with.
    pub(crate) fn of(engine: &Engine) -> Self {
        Self {
            fuel: engine.get_consume_fuel(),
            epoch: engine.get_epoch_interruption(),
            concurrent: engine.get_concurrency_support(),
            tier: tier_of(engine),
        }
    }

    /// The settings as words for a helper process's command line, read back by [`Self::parse`].
    pub(crate) fn to_args(self) -> [&'static str; 4] {
        [
            if self.fuel { "fuel" } else { "-" },
            if self.epoch { "epoch" } else { "-" },
            if self.concurrent { "concurrent" } else { "-" },
            self.tier.name(),
        ]
    }

    /// Settings written by [`Self::to_args`]; `None` for anything else.
    pub(crate) fn parse(args: [&str; 4]) -> Option<Self> {
        let flag = |arg: &str, name: &str| match arg {
            "-" => Some(false),
            s if s == name => Some(true),
            _ => None,
        };
        let tier = match args[3] {
            "cranelift" => Tier::Cranelift,
            "winch" => Tier::Winch,
            _ => return None,
        };
        Some(Self {
            fuel: flag(args[0], "fuel")?,
            epoch: flag(args[1], "epoch")?,
            concurrent: flag(args[2], "concurrent")?,
            tier,
        })
    }
}

/// Engines are made once per process and configuration and shared (an `Engine` is a cheap
/// handle): creating one costs about a millisecond, a third of a warm run.
pub(crate) fn new(cfg: EngineConfig) -> Result<Engine, RuntimeError> {
    static ENGINES: std::sync::Mutex<Vec<(EngineConfig, Engine)>> =
        std::sync::Mutex::new(Vec::new());
    let mut engines = ENGINES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, engine)) = engines.iter().find(|(c, _)| *c == cfg) {
        return Ok(engine.clone());
    }
    let engine = Engine::new(&config(cfg)).map_err(RuntimeError::engine)?;
    engines.push((cfg, engine.clone()));
    Ok(engine)
}

/// The one place Qyvol's engine settings become a wasmtime `Config` (as wasmtime's own
/// `cli-flags` does): every engine, for commands or for serving, starts here, so code compiled
/// for one is valid for the other with the same [`EngineConfig`].
fn config(cfg: EngineConfig) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(cfg.epoch);
    config.consume_fuel(cfg.fuel);
    config.parallel_compilation(true);
    if cfg.tier == Tier::Winch {
        config.strategy(wasmtime::Strategy::Winch);
    }
    // Each instance maps its memory's initial image copy-on-write instead of copying it.
    config.memory_init_cow(true);
    // Atomics validate and run (the threads proposal), but a `shared` memory cannot be made:
    // wasmtime grows shared memories without asking the store's limiter, so `--memory` could
    // not bound them. wasmtime's CLI leaves them off by default too.
    config.shared_memory(false);
    // The component model's async ABI, which WASI 0.3 components are built on, where the
    // engine has the concurrency it needs.
    config.concurrency_support(cfg.concurrent);
    config.wasm_component_model_async(cfg.concurrent);
    config
}

/// How much of a pooled memory slot stays resident between instances (times the warm slots
/// kept, at most 100: the RSS this trades for instantiation speed).
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// How many instances a pooled engine keeps slots for, and the largest memory a slot holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSize {
    pub(crate) instances: u32,
    /// `None`: wasmtime's default slot size (any app's memory limit fits).
    pub(crate) largest_memory: Option<u64>,
}

/// An engine for serving: the pooling allocator sized for `pool` when the address space can
/// be reserved (then `true`), on-demand allocation otherwise.
pub(crate) fn pooled(cfg: EngineConfig, pool: PoolSize) -> Result<(Engine, bool), RuntimeError> {
    use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};
    let mut slots = PoolingAllocationConfig::default();
    let n = pool.instances;
    slots
        .total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .total_gc_heaps(n);
    // A slot's memory is reset for reuse in place instead of handed back to the kernel: the
    // PAGEMAP_SCAN ioctl (Linux 6.7+; without it, the low pages) finds the pages the last
    // instance dirtied, up to this much, and only those are restored. The next instance then
    // takes no page faults for them (faults were most of an instantiation's cost).
    slots
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 * 1024)
        .pagemap_scan(wasmtime::Enabled::Auto);
    if let Some(limit) = pool.largest_memory {
        // A slot never needs more than the largest limit (rounded up to whole wasm pages).
        slots.max_memory_size(usize::try_from(limit.div_ceil(65536) * 65536).unwrap_or(usize::MAX));
    }
    let mut pooled = config(cfg);
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(slots));
    match Engine::new(&pooled) {
        Ok(engine) => Ok((engine, true)),
        Err(e) => {
            tracing::info!(error = %e, "the pooling allocator is unavailable; allocating instances on demand");
            Engine::new(&config(cfg))
                .map(|e| (e, false))
                .map_err(RuntimeError::engine)
        }
    }
}

/// Identifies the code an engine generates: wasmtime's version, the host, and every setting
/// wasmtime counts as changing compiled code. Precompiled code is only used by an engine with
/// the same fingerprint.
pub fn fingerprint(engine: &Engine) -> String {
    use sha2::Digest;
    use std::hash::Hash;

    /// Feeds `Hash` output into sha256, so the result is stable across processes.
    struct Sha(sha2::Sha256);
    impl std::hash::Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut h = Sha(sha2::Sha256::new());
    WASMTIME_VERSION.hash(&mut h);
    std::env::consts::ARCH.hash(&mut h);
    std::env::consts::OS.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    // wasmtime refuses to load one compiler's code on the other's engine; the tier is in the
    // fingerprint too, so the two never share a cache folder.
    format!("{:?}", engine.get_strategy()).hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}

/// The compiler behind `engine`'s code.
pub(crate) fn tier_of(engine: &Engine) -> Tier {
    match engine.get_strategy() {
        Some(wasmtime::Strategy::Winch) => Tier::Winch,
        _ => Tier::Cranelift,
    }
}

/// This host's engine fingerprint for an engine configuration.
pub fn host_fingerprint(cfg: EngineConfig) -> Result<String, RuntimeError> {
    Ok(fingerprint(&new(cfg)?))
}

/// The platform precompiled code is for, e.g. `x86_64-linux`.
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The wasmtime release Qyvol embeds (kept equal to the `=` pin in Cargo.toml).
pub const WASMTIME_VERSION: &str = "49.0.5";

/// Advances the engine's epoch every [`TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("qyvol-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use std::time::Duration;

    fn all() -> Vec<EngineConfig> {
        let mut all = Vec::new();
        for tier in [Tier::Cranelift, Tier::Winch] {
            for fuel in [false, true] {
                for epoch in [false, true] {
                    for concurrent in [false, true] {
                        all.push(EngineConfig {
                            fuel,
                            epoch,
                            concurrent,
                            tier,
                        });
                    }
                }
            }
        }
        all
    }

    #[test]
    fn only_a_foreground_command_without_a_time_limit_runs_without_epochs() {
        let timed = Limits {
            timeout: Some(Duration::from_secs(1)),
            ..Limits::default()
        };
        let fueled = Limits {
            fuel: Some(1),
            ..Limits::default()
        };
        let epoch = |p, l: &Limits| EngineConfig::decide(p, l, WasiGeneration::P2).epoch;
        assert!(!epoch(Purpose::Command, &Limits::default()));
        assert!(epoch(Purpose::Command, &timed));
        for p in [Purpose::Stoppable, Purpose::Serving] {
            assert!(epoch(p, &Limits::default()), "{p:?}");
        }
        for p in [Purpose::Command, Purpose::Stoppable, Purpose::Serving] {
            assert!(
                EngineConfig::decide(p, &fueled, WasiGeneration::P2).fuel,
                "{p:?}"
            );
            assert!(
                !EngineConfig::decide(p, &timed, WasiGeneration::P2).fuel,
                "{p:?}"
            );
            assert_eq!(
                EngineConfig::decide(p, &timed, WasiGeneration::P2).tier,
                Tier::Cranelift
            );
        }
    }

    #[test]
    fn commands_get_concurrency_and_of_served_guests_only_wasi_0_3_handlers() {
        // WASI 0.3 needs concurrency; serving 0.2 handlers and CGI does not pay for it.
        let concurrent = |p, w| EngineConfig::decide(p, &Limits::default(), w).concurrent;
        assert!(concurrent(Purpose::Command, WasiGeneration::P2));
        assert!(concurrent(Purpose::Stoppable, WasiGeneration::Preview1));
        assert!(!concurrent(Purpose::Serving, WasiGeneration::P2));
        assert!(!concurrent(Purpose::Serving, WasiGeneration::Preview1));
        assert!(concurrent(Purpose::Serving, WasiGeneration::P3));
    }

    #[test]
    fn each_setting_has_its_own_engine_and_equal_settings_share_one() {
        let engines: Vec<Engine> = all().into_iter().map(|c| new(c).expect("engine")).collect();
        for (i, a) in engines.iter().enumerate() {
            assert_eq!(
                EngineConfig::of(a),
                all()[i],
                "the engine has the settings asked"
            );
            assert!(Engine::same(a, &new(all()[i]).expect("engine")));
            for b in &engines[i + 1..] {
                assert!(!Engine::same(a, b));
            }
        }
    }

    #[test]
    fn a_helpers_arguments_read_back_as_the_settings_written() {
        for c in all() {
            assert_eq!(EngineConfig::parse(c.to_args()), Some(c));
        }
        assert_eq!(EngineConfig::parse(["fuel", "epoch", "-", "llvm"]), None);
        assert_eq!(EngineConfig::parse(["yes", "-", "-", "cranelift"]), None);
    }
}
