//! The node's module store (`node/modules/`): each deployed module once, by digest, kept while
//! an app's record names it.

use std::path::PathBuf;

use super::Deployable;
use crate::state::AppRecord;
use crate::{Node, NodeError};

impl Node {
    pub(crate) fn remove_orphan_modules(&self, records: &[AppRecord]) {
        crate::paths::remove_files_where(&self.0.paths.modules(), |name| {
            !records.iter().any(|r| {
                r.module.strip_prefix("sha256:") == Some(name)
                    || r.previous
                        .as_ref()
                        .is_some_and(|p| p.module.strip_prefix("sha256:") == Some(name))
            })
        });
    }

    /// Removes a module from the module store unless an app still uses it.
    pub(crate) fn forget_module(&self, module: &str) -> Result<(), NodeError> {
        let used =
            self.0.db.list()?.iter().any(|r| {
                r.module == module || r.previous.as_ref().is_some_and(|p| p.module == module)
            });
        if !used {
            let _ = std::fs::remove_file(self.module_path(module)?);
        }
        Ok(())
    }

    pub(crate) fn module_path(&self, digest: &str) -> Result<PathBuf, NodeError> {
        let digest = qyvol_common::Digest::parse(digest)
            .map_err(|e| NodeError::State(format!("a module digest is damaged: {e}")))?;
        Ok(self.0.paths.modules().join(digest.hex()))
    }

    /// Copies the module into the node's module store (synced, then renamed into place).
    pub(crate) fn store_module(&self, d: &Deployable) -> Result<(), NodeError> {
        self.write_module(d)?.finish()
    }

    /// Writes the module beside its place in the store, not yet synced or in place:
    /// [`Unsynced::finish`] does both, so a deploy can sync it while it links the app, and
    /// must wait for it before the record is accepted.
    pub(crate) fn write_module(&self, d: &Deployable) -> Result<Unsynced, NodeError> {
        use std::io::Write;
        let dest = self.module_path(&d.record.module)?;
        let dir = self.0.paths.modules();
        if dest.exists() {
            return Ok(Unsynced {
                tmp: None,
                dest,
                dir,
            });
        }
        let bytes = d.wasm.bytes().map_err(|e| NodeError::Launch(e.into()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(NodeError::internal)?;
        tmp.write_all(&bytes).map_err(NodeError::internal)?;
        Ok(Unsynced {
            tmp: Some(tmp),
            dest,
            dir,
        })
    }
}

/// A module written under a temporary name in the module store (removed if dropped; a crash
/// leaves a file the next start sweeps, as no record names it), or already in place.
pub(crate) struct Unsynced {
    tmp: Option<tempfile::NamedTempFile>,
    dest: PathBuf,
    dir: PathBuf,
}

impl Unsynced {
    /// Syncs the module, renames it into place and syncs the folder: it then outlives a crash.
    /// A module already in place may have been renamed there by a deploy still syncing the
    /// folder, so the folder is synced either way.
    pub(crate) fn finish(self) -> Result<(), NodeError> {
        if let Some(tmp) = self.tmp {
            tmp.as_file().sync_all().map_err(NodeError::internal)?;
            tmp.persist(&self.dest)
                .map_err(|e| NodeError::internal(e.error))?;
        }
        match std::fs::File::open(&self.dir).and_then(|dir| dir.sync_all()) {
            // Some filesystems cannot sync a folder; their renames are as durable as they get.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            other => other.map_err(NodeError::internal),
        }
    }
}

/// A deploy's module being made durable beside the rest of the deploy; waited for before the
/// record is accepted, and before a failed deploy forgets the module.
#[derive(Default)]
pub(crate) struct Durable(Option<tokio::task::JoinHandle<Result<(), NodeError>>>);

impl Durable {
    pub(crate) fn start(unsynced: Unsynced) -> Self {
        Self(Some(tokio::task::spawn_blocking(move || unsynced.finish())))
    }

    /// Waits until the module is durable (at once when it was waited for already).
    pub(crate) async fn wait(&mut self) -> Result<(), NodeError> {
        match self.0.take() {
            Some(handle) => handle.await.map_err(NodeError::internal)?,
            None => Ok(()),
        }
    }
}
