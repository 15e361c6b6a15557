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
        use std::io::Write;
        let dest = self.module_path(&d.record.module)?;
        if dest.exists() {
            return Ok(());
        }
        let bytes = d.wasm.bytes().map_err(|e| NodeError::Launch(e.into()))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(self.0.paths.modules()).map_err(NodeError::internal)?;
        tmp.write_all(&bytes).map_err(NodeError::internal)?;
        tmp.as_file().sync_all().map_err(NodeError::internal)?;
        tmp.persist(&dest)
            .map_err(|e| NodeError::internal(e.error))?;
        if let Ok(dir) = std::fs::File::open(self.0.paths.modules()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
