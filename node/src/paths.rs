//! Where the node keeps its files (`QYVOL_HOME/node/`), the lock that lets one node at a time
//! use them, and the API token's file.

use std::path::{Path, PathBuf};

use qyvol_common::Home;

use crate::NodeError;

/// Where the node keeps its files: `QYVOL_HOME/node/`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn of(home: &Home) -> Self {
        Self {
            dir: home.root.join("node"),
        }
    }

    /// The files of project `name`'s own node (`qyvol up` in the foreground).
    pub fn of_project(home: &Home, name: &str) -> Self {
        Self {
            dir: home.root.join("projects").join(name),
        }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("qyvol.sock")
    }
    pub fn token(&self) -> PathBuf {
        self.dir.join("token")
    }
    pub fn pid(&self) -> PathBuf {
        self.dir.join("node.pid")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    pub(crate) fn db(&self) -> PathBuf {
        self.dir.join("state.redb")
    }
    pub(crate) fn modules(&self) -> PathBuf {
        self.dir.join("modules")
    }
    /// Each app's key-value buckets (`APP.redb`).
    pub(crate) fn keyvalue(&self) -> PathBuf {
        self.dir.join("keyvalue")
    }
    /// Each app's secrets (`APP.json`, 0600), apart from its record.
    pub(crate) fn secrets(&self) -> PathBuf {
        self.dir.join("secrets")
    }
    /// Named volumes (`qyvol volume`), one folder each.
    pub(crate) fn volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }
    /// The dashboard's uploads while they are read and deployed.
    pub(crate) fn uploads(&self) -> PathBuf {
        self.dir.join("uploads")
    }
    fn lock(&self) -> PathBuf {
        self.dir.join("node.lock")
    }
}

/// Holds the node's lock file for the life of the process: one node per `QYVOL_HOME`.
#[derive(Debug)]
pub struct NodeLock(
    #[expect(dead_code, reason = "held for its lock, released when the node exits")] std::fs::File,
);

impl NodeLock {
    /// Takes the lock, or says which process holds it.
    pub fn take(paths: &Paths) -> Result<Self, NodeError> {
        qyvol_common::create_private_dir(&paths.dir).map_err(NodeError::internal)?;
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(paths.lock())
            .map_err(NodeError::internal)?;
        match file.try_lock() {
            Ok(()) => Ok(Self(file)),
            Err(_) => {
                let pid = std::fs::read_to_string(paths.pid()).unwrap_or_default();
                Err(NodeError::Conflict(format!(
                    "a node is already running for this QYVOL_HOME (pid {}); stop it with `qyvol node stop`",
                    pid.trim()
                )))
            }
        }
    }
}

/// Reads the API token, or makes one (32 random bytes, hex) in a file only the user can read.
/// Removes each file of `dir` whose name `orphan` says no app owns (a start's sweep of what a
/// deploy cut short left: modules, logs, secrets). A folder that cannot be read is left alone.
pub(crate) fn remove_files_where(dir: &Path, orphan: impl Fn(&str) -> bool) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if orphan(&entry.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub(crate) fn load_or_make_token(path: &Path) -> Result<String, NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 32 => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::internal(e)),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NodeError::internal)?;
    let token = hex::encode(bytes);
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(NodeError::internal)?;
    f.write_all(token.as_bytes()).map_err(NodeError::internal)?;
    f.sync_all().map_err(NodeError::internal)?;
    Ok(token)
}
