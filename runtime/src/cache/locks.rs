//! The lock files under `tiering/` that tell whether a helper is compiling Cranelift's code
//! for a Winch entry, kept by the cache beside the entries they are about.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::Cache;
use crate::inspect::WasmKind;

pub(crate) fn lock_path(
    cache: &Cache,
    winch_fingerprint: &str,
    sha256: &str,
    kind: WasmKind,
) -> PathBuf {
    cache.dir().join("tiering").join(format!(
        "{sha256}.{}.{winch_fingerprint}.lock",
        crate::cache::kind_name(kind)
    ))
}

/// Whether a helper is compiling Cranelift's code for the Winch entry with this fingerprint.
pub(crate) fn upgrading(
    cache: &Cache,
    winch_fingerprint: &str,
    sha256: &str,
    kind: WasmKind,
) -> bool {
    let Ok(file) = open_lock(&lock_path(cache, winch_fingerprint, sha256, kind), false) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Opens (or creates, 0600) a lock file of the cache's own: never through a symlink, never a
/// FIFO or device that could block or a file that is not the user's, never truncated.
pub(crate) fn open_lock(path: &Path, create: bool) -> std::io::Result<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(std::io::Error::other(format!(
            "`{}` is not a lock file of this user's",
            path.display()
        )));
    }
    Ok(file)
}
