//! From "the operator named FILE with these flags" to a module ready to run and what it may do:
//! the one place `qyvol run`, `qyvol serve` and the node decide it.
//!
//! The trust boundary (docs/architecture.md) is drawn here. Trusted: the operator (their flags,
//! the `.qyv` files they point at) and code Qyvol compiled itself. Untrusted: every `.wasm`,
//! bundle and image with the manifest inside it, every registry. So:
//! - [`open`] reads a target (a manifest, a `.qyvc` bundle, an image reference, a bare wasm);
//!   a bundle's or image's own manifest arrives with its mounts and network grants turned into
//!   requests ([`qyvol_common::Requests`]), and every blob is verified once;
//! - [`grants::request`] merges the manifest's grants with the operator's [`Operator`] flags under
//!   the environment's policy into the runtime's `RunRequest`;
//! - [`trust`] decides whether a bundle's precompiled code may run: only when the operator
//!   allows it or this `QYVOL_HOME` built that exact code; otherwise the wasm is compiled.

pub mod describe;
pub mod grants;
mod runner;
pub mod state;
mod target;
pub mod trust;

use qyvol_common::{ManifestError, PolicyViolation};
use qyvol_runtime::RuntimeError;
use qyvol_store::StoreError;
use qyvol_store::bundle::BundleError;

pub use grants::{MountFlag, Operator};
pub use runner::Runner;
pub use state::StateGrants;
pub use target::{Image, Launch, Opened, Pull, is_wasm_file, open, prepare};
pub use trust::{CodeTrust, PrecompiledPolicy};

/// Why a target cannot be opened or prepared. Each wraps the error of the crate that found it.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    #[error(transparent)]
    Home(#[from] qyvol_common::HomeError),
    /// A flag's value cannot be used (e.g. `--env K` with `K` unset on the host).
    #[error("{0}")]
    Usage(String),
    /// A file or folder the operator named does not exist.
    #[error("{0}")]
    Missing(String),
    /// The target is not something Qyvol runs (e.g. a FIFO, a folder).
    #[error("{0}")]
    NotRunnable(String),
    /// The app's key-value store cannot be used (held by another process, damaged).
    #[error("{0}")]
    KeyValue(String),
    /// Qyvol's own failure (e.g. the cache cannot be written).
    #[error("{0}")]
    Internal(String),
}
