//! Builds the guest's WASI context from its grants: arguments, environment, mounts and network.
//! Nothing of the host is visible unless granted: no inherited environment, only the listed
//! folders, only the granted addresses. Standard streams are the caller's choice.

use std::path::PathBuf;

use qyvol_common::{Folder, FolderError, open_mount};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::RuntimeError;
use crate::net::NetworkAccess;
use crate::request::{MountGrant, RunRequest};

/// A run's mounts: every host folder opened once and checked, guest paths that do not nest,
/// and no read-only folder inside a writable one. The guest gets these handles, never the
/// paths looked up again; `run`, `serve` and anything else that runs guests go through here.
pub(crate) struct Mounts(Vec<(Folder, MountGrant)>);

impl Mounts {
    pub(crate) fn open(grants: &[MountGrant]) -> Result<Self, RuntimeError> {
        check_guest_paths(grants)?;
        let mut opened = Vec::with_capacity(grants.len());
        for grant in grants {
            let folder = open_mount(&grant.host, grant.beneath.as_deref())
                .map_err(|problem| refused(grant, problem))?;
            opened.push((folder, grant.clone()));
        }
        check_modes(&opened)?;
        Ok(Self(opened))
    }

    fn preopen(&self, b: &mut WasiCtxBuilder) -> Result<(), RuntimeError> {
        for (folder, grant) in &self.0 {
            let perms = if grant.readonly {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(handle_path(folder, grant), &grant.guest, perms)
                .map_err(|e| RuntimeError::Mount {
                    host: grant.host.clone(),
                    guest: grant.guest.clone(),
                    reason: format!("{e:#}"),
                })?;
        }
        Ok(())
    }
}

/// wasmtime-wasi opens preopens by path: on Linux the path of the open handle itself, which
/// names the folder opened and checked even if its own path now leads elsewhere.
fn handle_path(folder: &Folder, grant: &MountGrant) -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::{AsFd, AsRawFd};
        let _ = grant;
        PathBuf::from(format!("/proc/self/fd/{}", folder.as_fd().as_raw_fd()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = folder;
        grant.host.clone()
    }
}

fn refused(grant: &MountGrant, problem: FolderError) -> RuntimeError {
    RuntimeError::MountFolder {
        host: grant.host.clone(),
        guest: grant.guest.clone(),
        problem,
    }
}

/// A guest path inside another (`/data` and `/data/config`) is refused: `/data/./config/x`
/// would reach one mount and `/data/config/x` the other, so a path's mount would depend on
/// its spelling.
fn check_guest_paths(grants: &[MountGrant]) -> Result<(), RuntimeError> {
    let parts = |g: &MountGrant| -> Vec<String> {
        g.guest
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    for (i, a) in grants.iter().enumerate() {
        for b in &grants[..i] {
            let (pa, pb) = (parts(a), parts(b));
            let (outer, inner) = if pa.len() <= pb.len() { (a, b) } else { (b, a) };
            if pa.starts_with(&pb) || pb.starts_with(&pa) {
                return Err(RuntimeError::MountOverlap(if pa == pb {
                    format!(
                        "`{}` and `{}` are mounted on the same guest path `{}`: give each its own",
                        b.host.display(),
                        a.host.display(),
                        b.guest
                    )
                } else {
                    format!(
                        "the guest path `{}` (for `{}`) is inside `{}` (for `{}`), so one path could reach either folder depending on how it is spelled: mount them on guest paths that do not contain one another",
                        inner.guest,
                        inner.host.display(),
                        outer.guest,
                        outer.host.display()
                    )
                }));
            }
        }
    }
    Ok(())
}

/// A read-only folder inside (or equal to) a writable mount's folder could be written through
/// the writable mount (`/data/config/x` beside a read-only `/config`), so it is refused; found
/// from the opened handles, so no spelling of either path hides it. A writable folder inside a
/// read-only one is fine: the guest can change exactly what was granted writable.
fn check_modes(opened: &[(Folder, MountGrant)]) -> Result<(), RuntimeError> {
    for (ro, r) in opened.iter().filter(|(_, g)| g.readonly) {
        for (rw, w) in opened.iter().filter(|(_, g)| !g.readonly) {
            if ro.is_within(rw).map_err(|problem| refused(r, problem))? {
                return Err(RuntimeError::MountOverlap(format!(
                    "the read-only mount `{}` (`{}`) is inside the writable mount `{}` (`{}`), so the guest could change it through `{}`: mount folders that do not contain one another, or give both the same mode",
                    r.guest,
                    r.host.display(),
                    w.guest,
                    w.host.display(),
                    w.guest
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn builder(
    req: &RunRequest,
    mounts: &Mounts,
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
    match &req.output {
        crate::request::Output::Inherit => {
            b.inherit_stdout();
            b.inherit_stderr();
        }
        crate::request::Output::Lines(sink) => {
            let (stdout, stderr) = crate::output::LineStream::pair(sink.clone());
            b.stdout(stdout);
            b.stderr(stderr);
        }
    }
    // A guest cannot make the host allocate more than this in one `random_get`.
    b.max_random_size(16 * 1024 * 1024);
    mounts.preopen(&mut b)?;
    Ok(b)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn grant(host: &std::path::Path, guest: &str) -> MountGrant {
        MountGrant {
            host: host.to_path_buf(),
            guest: guest.into(),
            readonly: true,
            beneath: None,
        }
    }

    /// HOSTILE row 17: the folder is swapped for a symlink after it was opened; the guest
    /// must still get the folder that was opened, never the symlink's target.
    #[test]
    fn a_folder_swapped_for_a_symlink_after_opening_is_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("mine.txt"), "mine").expect("write");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::fs::write(elsewhere.join("theirs.txt"), "theirs").expect("write");

        let mounts = Mounts::open(&[grant(&data, "/data")]).expect("opens");
        std::fs::rename(&data, tmp.path().join("moved")).expect("move the checked folder away");
        std::os::unix::fs::symlink(&elsewhere, &data).expect("put a symlink in its place");

        let (folder, grant) = &mounts.0[0];
        let names: Vec<_> = std::fs::read_dir(handle_path(folder, grant))
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
        assert!(Mounts::open(&[grant(&file, "/f")]).is_err());
        assert!(Mounts::open(&[grant(&tmp.path().join("missing"), "/m")]).is_err());
    }
}
