//! What `containerd-shim-qyvol-v1` does inside the container: the module and the image's own
//! manifest become a bundle that Qyvol's launch path opens as packaged code (its manifest
//! limits itself, grants nothing), with the operator's grants taken from the container as
//! the orchestrator set it up — its mounts (the pod's volumes; read-only ones read-only), its
//! memory limit, and its annotations (`qyvol.dev/allow-net`, `qyvol.dev/timeout`,
//! `qyvol.dev/fuel`). Nothing of the image's filesystem is visible to the guest, and no
//! network is granted but what the annotations name. Native code never runs but the pod's
//! sandbox container ([`instance`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use qyvol_common::{ByteSize, DurationSpec, GuestPath, NetworkGrant};
use qyvol_launch::{MountFlag, Operator};
use qyvol_runtime::Outcome;
use qyvol_store::bundle::{BundleParts, MEDIA_QYV};

mod image;
pub mod instance;

pub use image::Layer;

/// The largest module the shim reads.
const MAX_MODULE: u64 = qyvol_runtime::DEFAULT_MAX_MODULE_SIZE;

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

/// Pod annotations that grant: network destinations (comma-separated, as `--allow-net`), a
/// time limit and a fuel budget. They are the operator's (the pod's author's); an image cannot
/// set them. `qyvol kube` writes them from a manifest.
pub const ANN_ALLOW_NET: &str = "qyvol.dev/allow-net";
pub const ANN_TIMEOUT: &str = "qyvol.dev/timeout";
pub const ANN_FUEL: &str = "qyvol.dev/fuel";
/// Where an HTTP app listens in its pod (default [`DEFAULT_LISTEN`]): the operator's to choose,
/// not the image's (whose environment variables are the container's too).
pub const ANN_LISTEN: &str = "qyvol.dev/listen";

const QYVOL_PREFIX: &str = "qyvol.dev/";

/// The grants a container's annotations carry.
#[derive(Debug, Default)]
pub struct PodGrants {
    pub network: Vec<NetworkGrant>,
    pub timeout: Option<DurationSpec>,
    pub fuel: Option<u64>,
    pub listen: Option<std::net::SocketAddr>,
    /// The container's memory limit (its spec's, as the orchestrator set it).
    pub memory: Option<ByteSize>,
}

impl PodGrants {
    /// Reads [`ANN_ALLOW_NET`], [`ANN_TIMEOUT`] and [`ANN_FUEL`]; a value that does not parse
    /// is an error naming the annotation (a typo must not quietly grant or limit nothing).
    pub fn from_annotations(annotations: Option<&HashMap<String, String>>) -> anyhow::Result<Self> {
        let mut grants = Self::default();
        let Some(annotations) = annotations else {
            return Ok(grants);
        };
        // A misspelt key would grant or limit nothing, silently.
        for key in annotations.keys() {
            let ours = key
                .get(..QYVOL_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(QYVOL_PREFIX));
            if ours && ![ANN_ALLOW_NET, ANN_TIMEOUT, ANN_FUEL, ANN_LISTEN].contains(&key.as_str()) {
                bail!(
                    "unknown annotation `{}`: Qyvol's are {ANN_ALLOW_NET}, {ANN_TIMEOUT}, {ANN_FUEL} \
                     and {ANN_LISTEN}",
                    qyvol_common::escape_controls(key)
                );
            }
        }
        let bad = |key: &str, value: &str, e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "the annotation {key}=`{}` is wrong: {e}",
                qyvol_common::escape_controls(value)
            )
        };
        if let Some(v) = annotations.get(ANN_ALLOW_NET) {
            for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                grants
                    .network
                    .push(g.parse().map_err(|e| bad(ANN_ALLOW_NET, g, &e))?);
            }
        }
        if let Some(v) = annotations.get(ANN_TIMEOUT) {
            grants.timeout = Some(v.trim().parse().map_err(|e| bad(ANN_TIMEOUT, v, &e))?);
        }
        if let Some(v) = annotations.get(ANN_FUEL) {
            grants.fuel = Some(v.trim().parse().map_err(|e| bad(ANN_FUEL, v, &e))?);
        }
        if let Some(v) = annotations.get(ANN_LISTEN) {
            grants.listen = Some(v.trim().parse().map_err(|e| bad(ANN_LISTEN, v, &e))?);
        }
        Ok(grants)
    }
}

/// The container's process as Qyvol runs it (inside the container, once it is set up): the
/// module from the artifact's `layers` or at the entrypoint's path in the filesystem, the
/// process's arguments and variables, the annotations' grants. Returns the exit code; what
/// keeps the guest from running is said on the container's stderr, with 125.
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

pub fn run_container(spec: &oci_spec::runtime::Spec, layers: &[Layer]) -> i32 {
    // First of all: a SIGTERM that arrives before the shim listens is lost.
    let stop = stop_on_signal();
    let prepared = (|| {
        let process = spec
            .process()
            .as_ref()
            .context("the container has no process")?;
        let args = process.args().clone().unwrap_or_default();
        let env = process.env().clone().unwrap_or_default();
        let module = if layers.is_empty() {
            let entry = args.first().context(
                "the container has no entrypoint: give the module's path (e.g. /app.wasm)",
            )?;
            Module::from_file(Path::new(entry))?
        } else {
            Module::from_layers(layers)?
        };
        let mut grants = PodGrants::from_annotations(spec.annotations().as_ref())?;
        grants.memory = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .and_then(|l| u64::try_from(l).ok())
            .filter(|l| *l > 0)
            .map(ByteSize)
            .or_else(cgroup_memory_limit);
        anyhow::Ok((
            module,
            args.into_iter().skip(1).collect::<Vec<_>>(),
            env,
            grants,
        ))
    })();
    let (module, args, env, grants) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("qyvol: {e:#}");
            return 125;
        }
    };
    // Qyvol's runtime blocks and starts threads of its own: on a thread of its own too.
    let ran = std::thread::scope(|scope| {
        scope
            .spawn(move || run(module, args, env, grants, stop))
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the run panicked")))
    });
    ran.unwrap_or_else(|e| {
        eprintln!("qyvol: {e:#}");
        125
    })
}

/// A module and, when the image has one, its own manifest: read from the container's files,
/// or borrowed from the artifact's layers (a second copy would count against the pod's memory).
pub struct Module<'a> {
    pub wasm: Cow<'a, [u8]>,
    pub qyv: Option<Cow<'a, [u8]>>,
}

impl<'a> Module<'a> {
    /// The module at `path` in the container (`/app.wasm`), and `app.qyv` beside it if there.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let wasm: Cow<'a, [u8]> = Cow::Owned(qyvol_common::read_regular(path, MAX_MODULE)?);
        if !wasm.starts_with(b"\0asm") {
            bail!(
                "`{}` is not WebAssembly (it does not start with `\\0asm`): the qyvol runtime \
                 runs WebAssembly modules and components only",
                path.display()
            );
        }
        let qyv = path.with_extension("qyv");
        let qyv = qyv
            .is_file()
            .then(|| qyvol_common::read_regular(&qyv, image::MAX_TEXT))
            .transpose()?
            .map(Cow::Owned);
        Ok(Self { wasm, qyv })
    }

    /// The module among an image's layers, and its manifest if any.
    pub fn from_layers(layers: &'a [Layer]) -> anyhow::Result<Self> {
        let mut wasm = None;
        let mut qyv = None;
        for layer in layers {
            let bytes = Cow::Borrowed(layer.bytes.as_slice());
            if layer.media_type == MEDIA_QYV {
                qyv = Some(bytes);
            } else if wasm.replace(bytes).is_some() {
                bail!("the image has more than one module layer");
            }
        }
        let wasm = wasm.context("the image has no module layer")?;
        if !wasm.starts_with(b"\0asm") {
            bail!("the image's module layer is not WebAssembly (it does not start with `\\0asm`)");
        }
        Ok(Self { wasm, qyv })
    }
}

/// Runs `module` with `args` and `env` (`K=V`), the container's mounts and memory limit and
/// the annotations' `grants` as the operator's grants; returns the exit code the container
/// reports.
pub fn run(
    module: Module<'_>,
    args: Vec<String>,
    env: Vec<String>,
    grants: PodGrants,
    stop: qyvol_runtime::Stop,
) -> anyhow::Result<i32> {
    let component = wasmparser::Parser::is_component(&module.wasm);
    let qyv = module.qyv.unwrap_or(Cow::Borrowed(
        b"version: 1\nname: app\nentrypoint: app.wasm\nruntime: wasi\n",
    ));
    // The pair as a bundle, so it is opened exactly as any packaged code is.
    let dir = scratch_dir()?;
    let bundle = dir.path().join("app.qyvc");
    qyvol_store::bundle::write(
        &bundle,
        &BundleParts {
            name: "app",
            qyv: &qyv,
            wasm: &module.wasm,
            os: if component { "wasip2" } else { "wasip1" },
            precompiled: None,
        },
    )
    .context("cannot stage the module")?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    check_resolver(&grants.network, &mountinfo)?;
    let op = Operator {
        env: env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect(),
        mounts: container_mounts(&mountinfo),
        memory: grants
            .memory
            .map(|m| guest_share(m, module.wasm.len()))
            .transpose()?,
        network: grants.network.clone(),
        timeout: grants.timeout,
        fuel: grants.fuel,
        ..Operator::default()
    };
    let opened = qyvol_launch::open(&bundle, &op, None, &mut |r| {
        Err::<(), qyvol_launch::LaunchError>(qyvol_launch::LaunchError::from(
            qyvol_store::StoreError::NotFound(qyvol_store::canonical(r)),
        ))
    })?;
    let launch = qyvol_launch::prepare(
        opened,
        &op,
        None,
        args,
        Default::default(),
        qyvol_launch::Runner::Supervised,
    )?;
    if launch.manifest.runtime == qyvol_common::RuntimeKind::WasiHttp {
        let listen = grants
            .listen
            .map_or_else(|| DEFAULT_LISTEN.to_string(), |a| a.to_string());
        return serve(launch, &listen);
    }
    let mut request = launch.request;
    request.stop = Some(stop);
    let how = qyvol_runtime::Compilation {
        cache: None,
        progress: None,
        compiler: qyvol_runtime::Compiler::Cranelift,
    };
    let outcome = qyvol_runtime::run(&launch.wasm, &request, launch.engine, how)?;
    if let Some(why) = reason(&outcome, request.limits.fuel) {
        eprintln!("qyvol: {why}");
    }
    // As `qyvol run` exits and the node records (docs/exit-codes.md).
    Ok(outcome.exit_code())
}

/// Where an HTTP app listens in its pod (the Service `qyvol kube` writes targets it); the
/// `qyvol.dev/listen` annotation may say otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Serves a `wasi-http` app at its route until SIGTERM or SIGINT, which let in-flight requests
/// finish (as `qyvol serve` does): the container then exits 0. One line per request on stderr.
fn serve(launch: qyvol_launch::Launch, listen: &str) -> anyhow::Result<i32> {
    use qyvol_runtime::serve::{AccessEntry, App, Events, ServeOptions, Server};
    struct Log;
    impl Events for Log {
        fn request(&self, e: &AccessEntry<'_>) {
            eprintln!(
                "{} {} {} {:.1}ms",
                e.method,
                qyvol_common::escape_controls(e.path),
                e.status,
                e.duration.as_secs_f64() * 1000.0
            );
        }
        fn draining(&self, in_flight: usize) {
            eprintln!("qyvol: stopping ({in_flight} requests to finish)");
        }
    }
    let route = launch.manifest.http.route.clone();
    let app = App {
        name: launch.manifest.name.to_string(),
        route: route.clone(),
        max_body: qyvol_launch::grants::max_body(
            &launch.manifest,
            qyvol_launch::grants::DEFAULT_MAX_BODY,
        )
        .0,
        concurrency: None,
        wasm: launch.wasm,
        request: launch.request,
        engine: launch.engine,
    };
    let how = qyvol_runtime::Compilation {
        cache: None,
        progress: None,
        compiler: qyvol_runtime::Compiler::Cranelift,
    };
    let server = Server::new(vec![app], how, ServeOptions::default())?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} ({ANN_LISTEN})"))?;
    eprintln!(
        "qyvol: serving {route} on http://{}/",
        listener.local_addr()?
    );
    server.run(listener, std::sync::Arc::new(Log))?;
    Ok(0)
}

/// A stop that SIGTERM or SIGINT sets (`ctr task kill`, a pod's deletion). The guest runs as
/// the container's first process, which the kernel spares the signals it does not handle: so
/// the shim handles them, from the moment this returns, and stops the guest.
pub fn stop_on_signal() -> qyvol_runtime::Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = qyvol_runtime::Stop::new();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let on_signal = stop.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                let _ = ready_tx.send(());
                return;
            };
            let _ = ready_tx.send(());
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            on_signal.stop();
        });
    });
    let _ = ready.recv();
    stop
}

/// A private folder for the staged bundle: a new one at the container's root, whose name the
/// image cannot foresee, else in the runtime's `/dev/shm` when the root is read-only — never the
/// image's `/tmp`, which may be a symlink into a volume.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    let new = |dir: &str| tempfile::Builder::new().prefix(".qyvol-").tempdir_in(dir);
    new("/")
        .or_else(|_| new("/dev/shm"))
        .context("cannot make a scratch folder in the container (its root is read-only and it has no /dev/shm)")
}

/// Why the guest ended, when it did not exit on its own (on the container's stderr, as
/// `qyvol run` says it).
fn reason(outcome: &Outcome, fuel: Option<u64>) -> Option<String> {
    use qyvol_runtime::Resource;
    Some(match outcome {
        Outcome::Exited(_) | Outcome::Stopped => return None,
        Outcome::Trapped { trap, .. } => {
            format!("the guest trapped: {}", qyvol_common::escape_controls(trap))
        }
        Outcome::TimedOut(t) => format!("the guest ran past its time limit ({})", DurationSpec(*t)),
        Outcome::FuelExhausted(_) => {
            format!("the guest used up its fuel ({})", fuel.unwrap_or_default())
        }
        Outcome::LimitExceeded {
            resource: Resource::Memory,
            limit,
        } => format!(
            "the guest needed more memory than its limit ({})",
            ByteSize(*limit)
        ),
        Outcome::LimitExceeded { limit, .. } => {
            format!("the guest needed more table elements than its limit ({limit})")
        }
    })
}

/// The guest's share of the container's memory limit, which counts the runtime too: what the
/// runtime holds now (its own anonymous memory; the binary's pages are the page cache's), room
/// for compiling and holding a module of `module` bytes (about three copies) and a margin stay
/// outside, so that a greedy guest meets Qyvol's limit, with a message, before the kernel's OOM
/// killer. A limit that leaves the guest nothing is refused with what it should be.
fn guest_share(limit: ByteSize, module: usize) -> anyhow::Result<ByteSize> {
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
fn cgroup_memory_limit() -> Option<ByteSize> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|b| *b < 1 << 62))
        .map(ByteSize)
}

/// The mounts the orchestrator added to the container (a pod's volumes, `ctr run --mount`):
/// every mount of `mountinfo` but the root and the system's own (`/proc`, `/sys`, `/dev`,
/// and the files a runtime writes such as `/etc/hosts`). A read-only mount stays read-only.
/// The image cannot add mounts, so these are the operator's grants.
pub fn container_mounts(mountinfo: &str) -> Vec<MountFlag> {
    let system = |p: &str| {
        p == "/"
            || ["/proc", "/sys", "/dev", "/run"]
                .iter()
                .any(|s| p == *s || p.starts_with(&format!("{s}/")))
            || matches!(
                p,
                "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf" | "/run/secrets"
            )
    };
    let mut mounts: Vec<MountFlag> = Vec::new();
    for (point, readonly) in mount_points(mountinfo) {
        if system(&point) || !Path::new(&point).is_dir() {
            continue;
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
    mounts
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
fn check_resolver(grants: &[NetworkGrant], mountinfo: &str) -> anyhow::Result<()> {
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
        let mounts = container_mounts(&info);
        assert_eq!(mounts.len(), 1, "{mounts:?}");
        assert_eq!(mounts[0].host, data);
        assert_eq!(mounts[0].readonly, Some(true));
    }

    #[test]
    fn annotations_grant_what_they_name_and_unknown_qyvol_keys_are_refused() {
        let of = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect();
            PodGrants::from_annotations(Some(&map))
        };
        let g = of(&[
            (ANN_ALLOW_NET, "api.example.com:443, 10.0.0.0/8:5432"),
            (ANN_TIMEOUT, "30s"),
            (ANN_FUEL, "1000"),
            (ANN_LISTEN, "127.0.0.1:9000"),
            ("other.io/key", "ignored"),
        ])
        .expect("grants");
        assert_eq!(g.network.len(), 2);
        assert_eq!(g.timeout.map(|t| t.0.as_secs()), Some(30));
        assert_eq!(g.fuel, Some(1000));
        assert_eq!(g.listen.map(|a| a.port()), Some(9000));
        for key in ["qyvol.dev/timeouts", "QYVOL.DEV/TIMEOUT", "Qyvol.dev/fuel"] {
            let e = of(&[(key, "1s")]).expect_err(key).to_string();
            assert!(e.starts_with(&format!("unknown annotation `{key}`")), "{e}");
        }
        assert!(of(&[(ANN_LISTEN, "everywhere")]).is_err());
    }
}
