//! Running a command, as a pipeline of small steps: load the bytes → inspect → engine →
//! compile → link WASI → instantiate under limits → run → outcome.

use std::path::Path;

use wasmtime::Module;
use wasmtime::component::Component;

use crate::RuntimeError;
use crate::cache::Cache;
use crate::compile::Compilation;
use crate::engine;
use crate::inspect::WasmKind;
use crate::prepared::Prepared;
use crate::request::{Outcome, RunRequest, Wasm, read_all};

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
    crate::background::finish_cache_writes();
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
        return Ok(Wasm::known(path.to_path_buf(), info));
    }
    if size > max_size {
        return Err(RuntimeError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: max_size,
        });
    }
    let wasm = Wasm::from_bytes(path.to_path_buf(), read_all(file, path)?)?;
    if let Some(c) = cache {
        c.stamp_put(&canonical, &meta, &wasm.info);
    }
    Ok(wasm)
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
    crate::background::finish_cache_writes();
    outcome
}
