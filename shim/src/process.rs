//! What the shim's process does to itself before a guest runs in it: glibc's name services
//! pinned, so no library of the image is loaded, and the descriptors a container's fork
//! inherits from the shim released.

use anyhow::bail;

/// Makes every glibc name-service lookup (users, groups, hosts, ...) of this process and of the
/// processes it forks use glibc's built-in `files` and `dns` services, never `/etc/nsswitch.conf`.
/// Inside a container that file and the libraries it names are the image's: a lookup there
/// (youki looks up the user's home; a granted host name is resolved) would `dlopen` the image's
/// `libnss_*.so` and run its code natively. Called first, before any lookup or thread: glibc
/// does not reload the configuration once it is set this way.
#[cfg(target_env = "gnu")]
pub fn pin_name_services() -> anyhow::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    #[expect(unsafe_code, reason = "glibc's own declaration (nss.h)")]
    unsafe extern "C" {
        fn __nss_configure_lookup(db: *const c_char, service_line: *const c_char) -> c_int;
    }
    // glibc's databases (nss/databases.def).
    const DATABASES: [&str; 14] = [
        "aliases",
        "ethers",
        "group",
        "gshadow",
        "hosts",
        "initgroups",
        "netgroup",
        "networks",
        "passwd",
        "protocols",
        "publickey",
        "rpc",
        "services",
        "shadow",
    ];
    for db in DATABASES {
        let services = if db == "hosts" { "files dns" } else { "files" };
        let (name, line) = (CString::new(db)?, CString::new(services)?);
        #[expect(
            unsafe_code,
            reason = "glibc's documented override; both arguments are valid C strings that \
                      outlive the call, which copies what it keeps"
        )]
        // SAFETY: see the reason above.
        let rc = unsafe { __nss_configure_lookup(name.as_ptr(), line.as_ptr()) };
        if rc != 0 {
            bail!("cannot pin glibc's name services for `{db}`");
        }
    }
    Ok(())
}

/// Points every descriptor above the standard streams at `/dev/null`. The container's process
/// is a fork of the shim and keeps what the shim had open (its log, its sockets to containerd,
/// a procfs handle), which libcontainer marks close-on-exec; but a WebAssembly container is
/// never exec'd, it runs in this process. They are not closed, so a number something of the
/// shim's still holds never comes to name a file the guest's runtime opens next.
pub fn release_inherited_fds() {
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    let null_fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|fd| *fd > 2 && *fd != null_fd) {
        // (The folder listing's own descriptor, closed by now, just becomes one more /dev/null.)
        let _ = nix::unistd::dup2(null_fd, fd);
    }
}
