//! Builds the guest's WASI context from its grants: arguments, environment, mounts and network.
//! Nothing of the host is visible unless granted: no inherited environment, only the listed
//! folders, only the granted addresses. Standard streams are the caller's choice.

use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::RuntimeError;
use crate::net::NetworkAccess;
use crate::run::RunRequest;

/// A host folder the guest may see at `guest`.
#[derive(Debug, Clone)]
pub struct MountGrant {
    pub host: PathBuf,
    pub guest: String,
    pub readonly: bool,
}

pub(crate) fn builder(
    req: &RunRequest,
    network: &NetworkAccess,
) -> Result<WasiCtxBuilder, RuntimeError> {
    let mut b = WasiCtxBuilder::new();
    // TCP and UDP are on so that every attempt reaches the address check, which allows only
    // granted addresses and reports the rest.
    b.allow_tcp(true);
    b.allow_udp(true);
    b.allow_ip_name_lookup(network.names_hosts());
    let access = network.clone();
    b.socket_addr_check(move |addr, use_| {
        let access = access.clone();
        Box::pin(async move { access.check_socket(addr, use_).await })
    });
    b.arg(&req.argv0);
    b.args(&req.args);
    for (k, v) in &req.env {
        b.env(k, v);
    }
    // A guest cannot make the host allocate more than this in one `random_get`.
    b.max_random_size(16 * 1024 * 1024);
    for m in &req.mounts {
        let perms = if m.readonly {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        let handle = open_checked(&m.host).map_err(|reason| RuntimeError::Mount {
            host: m.host.clone(),
            guest: m.guest.clone(),
            reason,
        })?;
        b.preopened_dir(handle.path(), &m.guest, perms)
            .map_err(|e| RuntimeError::Mount {
                host: m.host.clone(),
                guest: m.guest.clone(),
                reason: format!("{e:#}"),
            })?;
    }
    Ok(b)
}

/// A directory opened once, whose open handle is what the guest gets: if the folder is
/// swapped for a symlink after it was checked, the swap is either refused (`O_NOFOLLOW`) or
/// noticed (the handle no longer names the checked path), never followed.
struct CheckedDir {
    #[cfg(target_os = "linux")]
    file: std::fs::File,
    #[cfg(not(target_os = "linux"))]
    path: PathBuf,
}

impl CheckedDir {
    fn path(&self) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.path.clone()
        }
    }
}

fn open_checked(host: &Path) -> Result<CheckedDir, String> {
    if host.as_os_str().as_encoded_bytes().contains(&0) {
        return Err("the path contains a NUL byte".into());
    }
    let canonical = host.canonicalize().map_err(|e| format!("{e}"))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&canonical)
            .map_err(|e| format!("{e} (it must be a folder, not a symlink)"))?;
        let dir = CheckedDir { file };
        let opened = std::fs::read_link(dir.path()).map_err(|e| e.to_string())?;
        if opened != canonical {
            return Err(format!(
                "the folder changed while it was being opened (now `{}`)",
                opened.display()
            ));
        }
        Ok(dir)
    }
    #[cfg(not(target_os = "linux"))]
    {
        if !canonical.is_dir() {
            return Err("it is not a folder".into());
        }
        Ok(CheckedDir { path: canonical })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// HOSTILE row 17: the folder is swapped for a symlink after it was checked and opened;
    /// the guest must still get the folder that was checked, never the symlink's target.
    #[test]
    fn a_folder_swapped_for_a_symlink_after_opening_is_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("mine.txt"), "mine").expect("write");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::fs::write(elsewhere.join("theirs.txt"), "theirs").expect("write");

        let handle = open_checked(&data).expect("opens");
        std::fs::rename(&data, tmp.path().join("moved")).expect("move the checked folder away");
        std::os::unix::fs::symlink(&elsewhere, &data).expect("put a symlink in its place");

        let names: Vec<_> = std::fs::read_dir(handle.path())
            .expect("read through the handle")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["mine.txt"]);
    }

    #[test]
    fn a_file_is_not_a_mount() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").expect("write");
        assert!(open_checked(&file).is_err());
        assert!(open_checked(&tmp.path().join("missing")).is_err());
    }
}
