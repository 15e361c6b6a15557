//! What the orchestrator set up around the container, read as the operator's grants: its
//! mounts (from mountinfo), its resolver files, and its memory limit with the guest's share.

use std::path::{Path, PathBuf};

use anyhow::bail;
use qyvol_common::{ByteSize, GuestPath, NetworkGrant};
use qyvol_launch::MountFlag;

/// The guest's share of the container's memory limit, which counts the runtime too: what the
/// runtime holds now (its own anonymous memory; the binary's pages are the page cache's), room
/// for compiling and holding a module of `module` bytes (about three copies) and a margin stay
/// outside, so that a greedy guest meets Qyvol's limit, with a message, before the kernel's OOM
/// killer. A limit that leaves the guest nothing is refused with what it should be.
pub(crate) fn guest_share(limit: ByteSize, module: usize) -> anyhow::Result<ByteSize> {
    const MARGIN: u64 = 16 << 20;
    const LEAST: u64 = 1 << 20;
    let anonymous = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let runtime = anonymous + MARGIN + 3 * module as u64;
    if limit.0 < runtime + LEAST {
        let mib = runtime.div_ceil(1 << 20);
        bail!(
            "the container's memory limit ({limit}) leaves the guest nothing once the runtime has \
             its share (about {}): give the container at least {}",
            ByteSize(mib << 20),
            ByteSize((mib + 16) << 20)
        );
    }
    Ok(ByteSize(limit.0 - runtime))
}

/// The container's memory limit as the container sees it: cgroup v2's `memory.max`, else
/// cgroup v1's `memory.limit_in_bytes` (whose "no limit" is a huge number).
pub(crate) fn cgroup_memory_limit() -> Option<ByteSize> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|b| *b < 1 << 62))
        .map(ByteSize)
}

/// The mounts the orchestrator added to the container (a pod's volumes, `ctr run --mount`),
/// sorted once: the folders the guest is granted, and the single files left out.
pub struct ContainerMounts {
    /// Every folder mounted but the root and the system's own (`/proc`, `/sys`, `/dev`, and
    /// the files a runtime writes such as `/etc/hosts`). A read-only mount stays read-only. The
    /// image cannot add mounts, so these are the operator's grants.
    pub granted: Vec<MountFlag>,
    /// The mounts that are single files (a Kubernetes `subPath` of a configMap, a file given to
    /// `ctr run --mount`): a guest is given folders only, so these are left out, and the run
    /// says so rather than the guest finding nothing there.
    pub files: Vec<String>,
}

/// The orchestrator's mounts in `mountinfo`, granted or left out ([`ContainerMounts`]).
pub fn container_mounts(mountinfo: &str) -> ContainerMounts {
    let mut mounts: Vec<MountFlag> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    for (point, readonly) in mount_points(mountinfo) {
        if is_system(&point) {
            continue;
        }
        match std::fs::metadata(&point) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                if files.last() != Some(&point) {
                    files.push(point);
                }
                continue;
            }
            Err(_) => continue,
        }
        let Ok(guest) = point.parse::<GuestPath>() else {
            continue;
        };
        // A later mount on the same point hides the earlier one.
        mounts.retain(|m| m.host != Path::new(&point));
        mounts.push(MountFlag {
            host: PathBuf::from(&point),
            guest,
            readonly: Some(readonly),
        });
    }
    // A volume inside another (a configMap in an emptyDir, a submount brought by `rbind`) is
    // reached through the outer one: granting it again would be a nested grant, which Qyvol
    // refuses. The outer grant's read-only holds beneath it (Qyvol's check), and the inner
    // mount's own read-only is the kernel's.
    let outer: Vec<PathBuf> = mounts.iter().map(|m| m.host.clone()).collect();
    mounts.retain(|m| !outer.iter().any(|o| o != &m.host && m.host.starts_with(o)));
    ContainerMounts {
        granted: mounts,
        files,
    }
}

/// The root and the system's own mount points, which are never a guest's: `/proc`, `/sys`,
/// `/dev`, `/run` and what is under them, and the files a runtime writes.
fn is_system(p: &str) -> bool {
    p == "/"
        || ["/proc", "/sys", "/dev", "/run"]
            .iter()
            .any(|s| p == *s || p.starts_with(&format!("{s}/")))
        || matches!(p, "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf")
}

/// Each mount point of `mountinfo` and whether it is read-only, in mount order.
fn mount_points(mountinfo: &str) -> impl Iterator<Item = (String, bool)> + '_ {
    mountinfo.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        let (point, options) = (fields.get(4)?, fields.get(5)?);
        Some((unescape(point), options.split(',').any(|o| o == "ro")))
    })
}

/// Refuses host-name grants when the container's resolver files are its image's: names resolve
/// through `/etc/hosts` and `/etc/resolv.conf`, which the orchestrator mounts (Kubernetes,
/// `ctr run --net-host`); an image's own could point a granted name at any address and carry
/// lookups to a server of its choosing.
pub(crate) fn check_resolver(grants: &[NetworkGrant], mountinfo: &str) -> anyhow::Result<()> {
    let Some(named) = grants
        .iter()
        .find(|g| !matches!(g.host, qyvol_common::HostPattern::Net { .. }))
    else {
        return Ok(());
    };
    let mounted: Vec<String> = mount_points(mountinfo).map(|(p, _)| p).collect();
    for file in ["/etc/hosts", "/etc/resolv.conf"] {
        if Path::new(file).exists() && !mounted.iter().any(|p| p == file) {
            bail!(
                "the grant `{named}` names a host, but the container's {file} is its image's, \
                 which could point that name anywhere: let the runtime mount the node's \
                 (Kubernetes does; `ctr run` with --net-host) or grant addresses"
            );
        }
    }
    Ok(())
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(n) = u8::from_str_radix(&code, 8) {
                out.push(n as char);
                continue;
            }
            out.push('\\');
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_orchestrators_mounts_are_grants_and_ro_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("my data");
        std::fs::create_dir(&data).expect("data");
        let escaped = data.display().to_string().replace(' ', "\\040");
        let info = format!(
            "1 0 0:1 / / rw,relatime - overlay overlay rw\n\
             2 1 0:2 / /proc rw - proc proc rw\n\
             3 1 0:3 / /dev rw - tmpfs tmpfs rw\n\
             4 1 0:4 / /etc/hosts ro - ext4 /dev/sda ro\n\
             5 1 0:5 / {escaped} ro,relatime - ext4 /dev/sda rw\n\
             6 1 0:6 / /no/such/dir rw - ext4 /dev/sda rw\n\
             7 1 0:7 / /run rw - tmpfs tmpfs rw\n\
             8 5 0:8 / {escaped}/inner rw - tmpfs tmpfs rw\n"
        );
        std::fs::create_dir(data.join("inner")).expect("inner");
        let mounts = container_mounts(&info).granted;
        assert_eq!(mounts.len(), 1, "{mounts:?}");
        assert_eq!(mounts[0].host, data);
        assert_eq!(mounts[0].readonly, Some(true));
    }
}
