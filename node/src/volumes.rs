//! Named volumes, Docker's habit: a folder the node keeps under `node/volumes/NAME`, created
//! with `qyvol volume create` (or by the first deploy that mounts it), mounted with `deploy
//! --mount NAME:/data[:ro]`, outliving `rm` of the apps that used it, and removed only when
//! no app's record mounts it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Node, NodeError};

/// A volume as `volume ls` and `volume inspect` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeView {
    pub name: String,
    /// Its folder on the node's machine.
    pub path: PathBuf,
    /// Bytes of the files in it.
    pub bytes: u64,
    /// The apps whose records mount it.
    pub users: Vec<String>,
}

/// Whether a mount's host part names a volume rather than a path: a name by the app-name
/// rules (lowercase letters, digits, `-`), as Docker tells `data:/data` from `./data:/data`.
pub fn is_volume_name(host: &str) -> bool {
    qyvol_common::AppName::try_from(host.to_string()).is_ok()
}

fn name_of(name: &str) -> Result<qyvol_common::AppName, NodeError> {
    qyvol_common::AppName::try_from(name.to_string()).map_err(|e| {
        NodeError::BadRequest(format!(
            "volume `{}`: {e}",
            qyvol_common::escape_controls(name)
        ))
    })
}

/// Bytes of the regular files under `dir`, not following symlinks.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

impl Node {
    /// The folder of volume `name` (which may not exist).
    pub(crate) fn volume_path(&self, name: &str) -> Result<PathBuf, NodeError> {
        Ok(self.0.paths.volumes().join(name_of(name)?.as_str()))
    }

    /// Creates volume `name`; `exists_ok` for a deploy that mounts it (Docker creates it then).
    pub fn create_volume(&self, name: &str, exists_ok: bool) -> Result<VolumeView, NodeError> {
        let path = self.volume_path(name)?;
        qyvol_common::create_private_dir(&self.0.paths.volumes()).map_err(NodeError::internal)?;
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && exists_ok => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(NodeError::Conflict(format!(
                    "a volume named `{name}` already exists"
                )));
            }
            Err(e) => return Err(NodeError::internal(e)),
        }
        self.volume(name)
    }

    /// The names of the apps whose records mount each volume.
    fn volume_users(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>, NodeError> {
        let mut users: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for r in self.0.db.list()? {
            for m in &r.spec.mounts {
                if let Some(v) = &m.volume {
                    users.entry(v.clone()).or_default().push(r.name.clone());
                }
            }
        }
        Ok(users)
    }

    pub fn volume(&self, name: &str) -> Result<VolumeView, NodeError> {
        let path = self.volume_path(name)?;
        if !path.is_dir() {
            return Err(NodeError::Missing(format!(
                "no volume is named `{name}`: create it with `qyvol volume create {name}`"
            )));
        }
        let users = self.volume_users()?.remove(name).unwrap_or_default();
        Ok(VolumeView {
            name: name.to_string(),
            bytes: size_of(&path),
            path,
            users,
        })
    }

    pub fn volumes(&self) -> Result<Vec<VolumeView>, NodeError> {
        let mut users = self.volume_users()?;
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.0.paths.volumes()) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_volume_name(&name) || !e.path().is_dir() {
                continue;
            }
            out.push(VolumeView {
                bytes: size_of(&e.path()),
                path: e.path(),
                users: users.remove(&name).unwrap_or_default(),
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Refuses a mount of the node's own files (its secrets, stores, token, compiled code) or
    /// of a folder holding them; the node's volumes are the exception.
    pub(crate) fn check_mount_host(&self, host: &Path) -> Result<(), NodeError> {
        let host = host.canonicalize().unwrap_or_else(|_| host.to_path_buf());
        let volumes = self.0.paths.volumes().canonicalize().ok();
        if volumes
            .as_ref()
            .is_some_and(|v| host.starts_with(v) && host != *v)
        {
            return Ok(());
        }
        let home = &self.0.home;
        let nodes = [home.root.join("node"), home.root.join("projects")];
        for own in [
            self.0.paths.dir.clone(),
            home.cache(),
            home.store(),
            home.keyvalue(),
        ]
        .into_iter()
        .chain(nodes)
        {
            let own = own.canonicalize().unwrap_or(own);
            if host.starts_with(&own) || own.starts_with(&host) {
                return Err(NodeError::BadRequest(format!(
                    "`{}` holds or is inside the node's own files (`{}`: its secrets, key-value stores, token and compiled code): mount another folder, or a volume (`--mount NAME:/data`)",
                    host.display(),
                    own.display()
                )));
            }
        }
        Ok(())
    }

    /// Removes volume `name` and its files, unless an app's record mounts it.
    pub async fn remove_volume(&self, name: &str) -> Result<(), NodeError> {
        // Deploys commit records under this lock: none can start using it meanwhile.
        let _modules = self.0.modules.lock().await;
        let view = self.volume(name)?;
        if !view.users.is_empty() {
            return Err(NodeError::Conflict(format!(
                "volume `{name}` is in use by {}: remove those apps first (`qyvol rm`)",
                view.users.join(", ")
            )));
        }
        std::fs::remove_dir_all(&view.path).map_err(NodeError::internal)
    }
}
