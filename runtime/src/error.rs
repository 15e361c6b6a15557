//! Errors from preparing a run. What happens once the guest runs is an [`crate::Outcome`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A folder, FIFO or device where a module file was expected.
    #[error("{0}: give a .wasm file")]
    NotAFile(qyvol_common::FileError),
    #[error(
        "`{path}` is {size} bytes, over the {max}-byte module size cap: raise it with `--max-module-size` if you trust this module"
    )]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("`{path}` is not a valid WebAssembly module or component: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("import `{import}` is not provided by Qyvol: {hint}")]
    UnsupportedImport { import: String, hint: String },
    /// wasmtime-wasi could not take a folder that was opened and checked.
    #[error("cannot open mount `{host}` for `{guest}`: {reason}")]
    Mount {
        host: PathBuf,
        guest: String,
        reason: String,
    },
    /// A mount's host folder cannot be mounted (missing, a symlink, on procfs, ...).
    #[error("cannot mount `{host}` on `{guest}`: {problem}")]
    MountFolder {
        host: PathBuf,
        guest: String,
        problem: qyvol_common::FolderError,
    },
    /// Two mounts overlap in a way that would undo one's mode or make paths ambiguous.
    #[error("{0}")]
    MountOverlap(String),
    #[error("compiling `{path}` failed: {reason}")]
    Compile { path: PathBuf, reason: String },
    #[error(
        "compiling `{path}` took longer than {limit:?}: raise `--compile-timeout` if you trust this module"
    )]
    CompileTimeout {
        path: PathBuf,
        limit: std::time::Duration,
    },
    #[error("{0}")]
    Engine(String),
    /// The apps cannot be served together as given (e.g. two want one route).
    #[error("{0}")]
    Serve(String),
}

impl From<qyvol_common::FileError> for RuntimeError {
    fn from(e: qyvol_common::FileError) -> Self {
        match e {
            qyvol_common::FileError::Open { path, source } => Self::Read { path, source },
            e @ qyvol_common::FileError::NotAFile { .. } => Self::NotAFile(e),
        }
    }
}

impl RuntimeError {
    pub(crate) fn engine(e: impl std::fmt::Display) -> Self {
        Self::Engine(format!("{e:#}"))
    }
}
