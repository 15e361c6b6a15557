//! The `QYVOL_HOME` layout: `store/` (modules), `cache/` (precompiled code, safe to delete),
//! `node/` (the node's state). Default: `$XDG_DATA_HOME/qyvol`, else `~/.local/share/qyvol`.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// `QYVOL_HOME`, or the platform data folder.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = var("QYVOL_HOME")
            .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("qyvol")))
            .or_else(|| var("HOME").map(|h| h.join(".local/share/qyvol")))
            .unwrap_or_else(|| std::env::temp_dir().join("qyvol"));
        Self { root }
    }

    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }
}
