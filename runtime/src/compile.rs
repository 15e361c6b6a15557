//! Turning a wasm binary into runnable code: from the compile cache when an intact artifact
//! for this engine exists, otherwise compiled on a worker thread (bounded in time, all cores
//! through wasmtime's parallel compilation) and stored for next time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::artifact::Artifact;
use crate::background::beside;
use crate::cache::Cache;
use crate::engine::{Compiler, EngineConfig, Tier};
use crate::inspect::WasmKind;
use crate::request::Wasm;
use crate::{RuntimeError, engine};

/// The compiler whose code `wasm` runs on under `config` (see [`choose`]).
pub(crate) fn tier(
    wasm: &Wasm,
    config: EngineConfig,
    how: Compilation<'_>,
) -> Result<Tier, RuntimeError> {
    let situation = Situation {
        cache: how.cache.is_some(),
        helper: crate::tier::helper_enabled(),
        allowed_code: wasm.precompiled.is_some(),
        big: wasm.info.size >= crate::tier::TIER_MIN_BYTES,
    };
    choose(how.compiler, situation, || {
        let Some(cache) = how.cache else {
            return Ok(false);
        };
        let optimised = engine::fingerprint(&engine::new(config.with(Tier::Cranelift))?);
        Ok(cache.contains(&optimised, &wasm.info.sha256, wasm.info.kind))
    })
}

/// What `Auto` weighs besides whether the cache has Cranelift's code.
#[derive(Debug, Clone, Copy)]
struct Situation {
    /// There is a cache to tier up through.
    cache: bool,
    /// This executable can start the helper that compiles Cranelift's code in the background.
    helper: bool,
    /// The operator allowed the module's precompiled code, which always wins.
    allowed_code: bool,
    /// The module is big enough for Winch's faster compile to matter.
    big: bool,
}

/// The tier decision: what `compiler` names, or for `Auto` Winch's code only for a big module
/// that can be tiered up (a cache, a helper, no allowed precompiled code) and whose Cranelift
/// code the cache does not have yet (`optimised_cached`, asked only then: it costs an engine).
fn choose(
    compiler: Compiler,
    situation: Situation,
    optimised_cached: impl FnOnce() -> Result<bool, RuntimeError>,
) -> Result<Tier, RuntimeError> {
    match compiler {
        Compiler::Cranelift => return Ok(Tier::Cranelift),
        Compiler::Winch => return Ok(Tier::Winch),
        Compiler::Auto => {}
    }
    let Situation {
        cache,
        helper,
        allowed_code,
        big,
    } = situation;
    if !(cache && helper && big) || allowed_code || optimised_cached()? {
        return Ok(Tier::Cranelift);
    }
    Ok(Tier::Winch)
}

/// Code already loaded in this process, by engine, module digest, kind and allowed precompiled
/// file: a node serving many apps of one module maps its code once, not once per app.
struct Loaded {
    engine: Engine,
    sha256: String,
    kind: WasmKind,
    precompiled: Option<std::path::PathBuf>,
    artifact: Box<dyn std::any::Any + Send + Sync>,
}

/// Distinct modules kept loaded; past this the memo starts again (it is a cache of handles
/// the apps themselves keep alive).
const LOADED_MAX: usize = 256;

static LOADED: std::sync::Mutex<Vec<Loaded>> = std::sync::Mutex::new(Vec::new());

/// Compiles `wasm` for `engine`, or maps its code from the cache, or reuses what this process
/// already loaded.
pub(crate) fn prepare<A: Artifact>(
    engine: &Engine,
    wasm: &Wasm,
    limit: Option<Duration>,
    how: Compilation<'_>,
) -> Result<A, RuntimeError> {
    let same = |l: &Loaded| {
        Engine::same(&l.engine, engine)
            && l.sha256 == wasm.info.sha256
            && l.kind == A::KIND
            && l.precompiled == wasm.precompiled
    };
    {
        let loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = loaded
            .iter()
            .find(|l| same(l))
            .and_then(|l| l.artifact.downcast_ref::<A>())
        {
            return Ok(a.clone());
        }
    }
    let artifact: A = load(engine, wasm, limit, how)?;
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if loaded.len() >= LOADED_MAX {
        loaded.clear();
    }
    if !loaded.iter().any(same) {
        loaded.push(Loaded {
            engine: engine.clone(),
            sha256: wasm.info.sha256.clone(),
            kind: A::KIND,
            precompiled: wasm.precompiled.clone(),
            artifact: Box::new(artifact.clone()),
        });
    }
    Ok(artifact)
}

fn load<A: Artifact>(
    engine: &Engine,
    wasm: &Wasm,
    limit: Option<Duration>,
    how: Compilation<'_>,
) -> Result<A, RuntimeError> {
    let fingerprint = engine::fingerprint(engine);
    if let Some(path) = &wasm.precompiled {
        // The operator allowed this bundle's code; wasmtime still checks it is for this engine.
        match A::deserialize_file(engine, path) {
            Ok(artifact) => {
                tracing::debug!(path = %path.display(), "mapped allowed precompiled code");
                return Ok(artifact);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "wasmtime refused the bundle's precompiled code; compiling");
                if let Some(cache) = how.cache {
                    cache.remove(path);
                }
            }
        }
    }
    let tier = engine::tier_of(engine);
    // Winch's code on an `Auto` run is a stopgap: a helper compiles Cranelift's (see tier.rs).
    let tier_up = |bytes: Arc<[u8]>| {
        if let Some(cache) = how.cache
            && tier == Tier::Winch
            && how.compiler == Compiler::Auto
            && crate::tier::helper_enabled()
        {
            crate::tier::start(
                cache,
                EngineConfig::of(engine).with(Tier::Cranelift),
                &fingerprint,
                A::KIND,
                &wasm.info.sha256,
                bytes,
            );
        }
    };
    if let Some(cache) = how.cache
        && let Some(path) = cache.get(&fingerprint, &wasm.info.sha256, A::KIND, tier)
    {
        match A::deserialize_file(engine, &path) {
            Ok(artifact) => {
                tracing::debug!(path = %path.display(), tier = tier.name(), "mapped precompiled code");
                // A helper that died left Winch's code without Cranelift's: start another (the
                // wasm is read only then).
                if tier == Tier::Winch
                    && how.compiler == Compiler::Auto
                    && let Some(cache) = how.cache
                    && crate::tier::wanted(cache, &fingerprint, &wasm.info.sha256, A::KIND)
                    && let Ok(bytes) = wasm.bytes()
                {
                    tier_up(bytes);
                }
                return Ok(artifact);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "wasmtime refused a cached artifact; recompiling");
                cache.remove(&path);
            }
        }
    }
    let bytes = wasm.bytes()?;
    tracing::debug!(path = %wasm.path.display(), bytes = bytes.len(), tier = tier.name(), "compiling");
    if let Some(p) = how.progress {
        p.started(bytes.len() as u64);
    }
    let compiled = compile_bounded::<A>(engine, &wasm.path, bytes.clone(), limit);
    if let Some(p) = how.progress {
        p.finished();
    }
    let artifact = compiled?;
    tier_up(bytes);
    if let Some(cache) = how.cache {
        // Stored while the guest already runs; `finish_cache_writes` waits for it before exit.
        // A cache that cannot be written only costs the next run a compilation.
        let (cache, artifact, digest) = (cache.clone(), artifact.clone(), wasm.info.sha256.clone());
        let optimised = (tier == Tier::Winch)
            .then(|| engine::new(EngineConfig::of(engine).with(Tier::Cranelift)).ok())
            .flatten();
        let store = move || {
            if let Err(e) = cache.put(&fingerprint, &digest, A::KIND, tier, artifact.image()) {
                tracing::warn!(error = %e, "cannot store compiled code in the cache");
            }
            // A helper that finished meanwhile left Cranelift's code: Winch's is not needed.
            if let Some(optimised) = optimised
                && cache.contains(&engine::fingerprint(&optimised), &digest, A::KIND)
            {
                cache.remove_tier(&fingerprint, &digest, A::KIND, tier);
            }
        };
        beside("qyvol-cache-write", store);
    }
    Ok(artifact)
}

/// Compiles on a worker thread and gives up after `limit`: the abandoned compilation ends with
/// the process, which is about to report the error and exit.
fn compile_bounded<A: Artifact>(
    engine: &Engine,
    path: &Path,
    bytes: Arc<[u8]>,
    limit: Option<Duration>,
) -> Result<A, RuntimeError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (worker_engine, worker_bytes) = (engine.clone(), bytes.clone());
    std::thread::Builder::new()
        .name("qyvol-compile".into())
        .spawn(move || {
            let _ = tx.send(A::compile(&worker_engine, &worker_bytes));
        })
        .map_err(RuntimeError::engine)?;
    let result = match limit {
        Some(limit) => rx
            .recv_timeout(limit)
            .map_err(|_| RuntimeError::CompileTimeout {
                path: path.to_path_buf(),
                limit,
            })?,
        None => rx.recv().map_err(RuntimeError::engine)?,
    };
    result.map_err(|e| failed::<A>(engine, path, &bytes, &e))
}

/// Why a compilation failed: the binary is invalid when the engine that judges validity
/// refuses it (Cranelift's: its refusal is that verdict), otherwise this compiler could not
/// build it (Winch and a proposal it lacks), which `Auto` answers by compiling with Cranelift.
fn failed<A: Artifact>(
    engine: &Engine,
    path: &Path,
    bytes: &[u8],
    error: &wasmtime::Error,
) -> RuntimeError {
    let invalid = |reason: String| RuntimeError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if engine::tier_of(engine) == Tier::Cranelift {
        return invalid(format!("{error:#}"));
    }
    match judge(engine).map(|judge| A::validate(&judge, bytes)) {
        Ok(Err(e)) => invalid(format!("{e:#}")),
        Ok(Ok(())) | Err(_) => RuntimeError::Compile {
            path: path.to_path_buf(),
            reason: format!("{error:#}"),
        },
    }
}

/// The one judge of validity: wasmtime, with the settings of the engine that will run the
/// module and Cranelift's code (Winch compiles fewer proposals, but what it cannot compile is
/// still valid). Qyvol's own reading of a binary (`inspect`) never decides it.
fn judge(engine: &Engine) -> Result<Engine, RuntimeError> {
    engine::new(EngineConfig::of(engine).with(Tier::Cranelift))
}

/// Whether `wasm` is valid for the engine `qyvol run` would run it on (without compiling a
/// module): for `qyvol inspect`.
pub fn validate(wasm: &Wasm) -> Result<(), RuntimeError> {
    let engine = engine::new(EngineConfig::decide(
        engine::Purpose::Command,
        &crate::Limits::default(),
        wasm.info.wasi,
    ))?;
    let bytes = wasm.bytes()?;
    let checked = match wasm.info.kind {
        WasmKind::CoreModule => <Module as Artifact>::validate(&engine, &bytes),
        WasmKind::Component => <Component as Artifact>::validate(&engine, &bytes),
    };
    checked.map_err(|e| RuntimeError::Invalid {
        path: wasm.path.clone(),
        reason: format!("{e:#}"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache writes `image()` where it used to write `serialize()`'s copy: a wasmtime whose
    /// serialization is more than its image would make every cached artifact unreadable.
    #[test]
    fn the_image_the_cache_writes_is_what_wasmtime_serializes() {
        let text = |t: &str| wat::parse_str(t).expect("valid text");
        let engine = Engine::default();
        let module = Module::new(
            &engine,
            text("(module (func (export \"f\") (result i32) i32.const 7))"),
        )
        .expect("a module");
        assert_eq!(
            module.image(),
            Module::serialize(&module).expect("serializes").as_slice()
        );
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("an engine");
        let component = Component::new(
            &engine,
            text("(component (core module (func (export \"f\"))) (core instance (instantiate 0)))"),
        )
        .expect("a component");
        assert_eq!(
            component.image(),
            Component::serialize(&component)
                .expect("serializes")
                .as_slice()
        );
        assert!(!component.image().is_empty());
    }

    #[test]
    fn auto_starts_on_winch_only_for_a_big_module_that_can_tier_up_and_is_not_cached() {
        let all = Situation {
            cache: true,
            helper: true,
            allowed_code: false,
            big: true,
        };
        let pick = |s: Situation, cached: bool| {
            choose(Compiler::Auto, s, || Ok(cached)).expect("a choice")
        };
        assert_eq!(pick(all, false), Tier::Winch);
        assert_eq!(pick(all, true), Tier::Cranelift);
        for without in [
            Situation {
                cache: false,
                ..all
            },
            Situation {
                helper: false,
                ..all
            },
            Situation { big: false, ..all },
            Situation {
                allowed_code: true,
                ..all
            },
        ] {
            assert_eq!(pick(without, false), Tier::Cranelift, "{without:?}");
        }
    }

    #[test]
    fn a_named_compiler_is_used_as_named_without_looking_at_the_cache() {
        let none = Situation {
            cache: false,
            helper: false,
            allowed_code: false,
            big: false,
        };
        let asked = || -> Result<bool, RuntimeError> { panic!("the cache was consulted") };
        assert_eq!(choose(Compiler::Winch, none, asked).ok(), Some(Tier::Winch));
        assert_eq!(
            choose(Compiler::Cranelift, none, asked).ok(),
            Some(Tier::Cranelift)
        );
    }
}
