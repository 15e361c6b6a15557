//! The wasmtime engine Qyvol runs guests on, and the clock that drives epoch interruption.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine};

use crate::RuntimeError;

/// How often the epoch advances while a time limit is set: the bound on how late a looping
/// guest is stopped after its deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The engine settings that change generated code, chosen from what a run needs: fuel
/// metering only with a fuel limit, epoch checks only with a time limit (both cost compile time
/// and run time, so code for a run without limits carries neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineConfig {
    pub fuel: bool,
    pub epoch: bool,
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

impl EngineConfig {
    pub fn for_limits(limits: &crate::Limits) -> Self {
        Self {
            fuel: limits.fuel.is_some(),
            epoch: limits.timeout.is_some(),
            tier: Tier::Cranelift,
        }
    }

    /// The same settings with code from `tier`.
    pub fn with(self, tier: Tier) -> Self {
        Self { tier, ..self }
    }

    /// For a run: as its limits say, with epochs also on when the run can be stopped.
    pub fn for_request(req: &crate::RunRequest) -> Self {
        let mut cfg = Self::for_limits(&req.limits);
        cfg.epoch |= req.stop.is_some();
        cfg
    }
}

/// Engines are made once per process and configuration and shared (an `Engine` is a cheap
/// handle): creating one costs about a millisecond, a third of a warm run.
pub(crate) fn new(cfg: EngineConfig) -> Result<Engine, RuntimeError> {
    static ENGINES: [std::sync::OnceLock<Engine>; 8] = [const { std::sync::OnceLock::new() }; 8];
    let slot = &ENGINES[usize::from(cfg.tier == Tier::Winch) * 4
        + usize::from(cfg.fuel) * 2
        + usize::from(cfg.epoch)];
    if let Some(engine) = slot.get() {
        return Ok(engine.clone());
    }
    let engine = Engine::new(&config(cfg)).map_err(RuntimeError::engine)?;
    Ok(slot.get_or_init(|| engine).clone())
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
