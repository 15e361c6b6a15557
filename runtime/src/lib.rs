//! Everything wasmtime for Qyvol: engines, inspection, WASI grants, limits, and running a
//! command (a WASI preview 1 core module or a WASI 0.2 `wasi:cli/command` component) to an
//! [`Outcome`]. Nothing here prints to the terminal or parses flags: the CLI decides how an
//! outcome is shown.

mod artifact;
mod background;
mod cache;
pub mod calls;
mod compile;
mod engine;
mod error;
mod explain;
mod handles;
mod host;
mod imports;
mod inspect;
mod instances;
pub mod keyvalue;
mod limits;
mod net;
pub mod output;
mod prepared;
mod request;
mod run;
pub mod serve;
mod stop;
pub mod tier;
mod wasi;

pub use cache::{Cache, CacheEntry, DEFAULT_CACHE_MAX};
pub use compile::{Compilation, CompileProgress, validate};
pub use engine::{
    Compiler, EngineConfig, Purpose, Tier, WASMTIME_VERSION, host_fingerprint, platform,
};
pub use error::RuntimeError;
pub use handles::{
    GUEST_HANDLES, Throttle, connections_within_budget, open_files_limit, raise_open_files,
};
pub use inspect::{Export, Import, ModuleInfo, Uses, WasiGeneration, WasmKind, inspect};
pub use limits::{Limits, MemoryBudget, MemoryGauge, Resource};
pub use net::{Denial, DenialSink, Refusal};
pub use prepared::Prepared;
pub use request::{
    EXIT_MEMORY, EXIT_STOPPED, EXIT_TIMEOUT, EXIT_TRAP, Loader, MountGrant, Outcome, Output,
    RunRequest, Wasm,
};
pub use run::{load, precompile, run};
pub use stop::Stop;

/// Default cap on the size of a module accepted for compilation.
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 256 * 1024 * 1024;
