//! Errors from loading a manifest. Each one names the file, and the line and column when the
//! problem sits at a place in it, and says what to change.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, coarsely: the CLI maps each kind to its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The manifest itself is malformed or invalid.
    BadManifest,
    /// A file or folder the manifest points at does not exist.
    MissingFile,
    /// The entrypoint exists but is not a WebAssembly binary.
    NotWasm,
    /// Something is asked that Qyvol never grants (a mount of its own process, on procfs).
    Denied,
    /// The manifest or the entrypoint is a folder, a FIFO or a device, not a regular file.
    NotAFile,
}

/// A position inside the manifest (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    pub kind: ErrorKind,
    pub path: PathBuf,
    pub position: Option<Position>,
    pub message: String,
}

impl ManifestError {
    pub(crate) fn new(
        kind: ErrorKind,
        path: impl Into<PathBuf>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            path: path.into(),
            position: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, location: &serde_saphyr::Location) -> Self {
        if location.line() > 0 {
            self.position = Some(Position {
                line: location.line(),
                column: location.column(),
            });
        }
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.path.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": {}", self.message)
    }
}
