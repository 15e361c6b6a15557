//! What `containerd-shim-qyvol-v1` does inside the container: the module and the image's own
//! manifest become a bundle that Qyvol's launch path opens as packaged code (its manifest
//! limits itself, grants nothing), with the operator's grants taken from the container as
//! the orchestrator set it up — its mounts (the pod's volumes; read-only ones read-only) and
//! its memory limit. Nothing of the image's filesystem is visible to the guest, and no
//! network is granted.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use qyvol_common::{ByteSize, GuestPath};
use qyvol_launch::{MountFlag, Operator};
use qyvol_runtime::Outcome;
use qyvol_store::bundle::{BundleParts, MEDIA_QYV};

/// The largest module the shim reads.
const MAX_MODULE: u64 = qyvol_runtime::DEFAULT_MAX_MODULE_SIZE;

/// A module and, when the image has one, its own manifest.
pub struct Module {
    pub wasm: Vec<u8>,
    pub qyv: Option<Vec<u8>>,
}

impl Module {
    /// The module at `path` in the container (`/app.wasm`), and `app.qyv` beside it if there.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let read = |p: &Path| -> anyhow::Result<Vec<u8>> {
            let (file, _) = qyvol_common::open_regular(p)?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_MODULE + 1), &mut bytes)
                .with_context(|| format!("cannot read `{}`", p.display()))?;
            if bytes.len() as u64 > MAX_MODULE {
                bail!("`{}` is larger than {}", p.display(), ByteSize(MAX_MODULE));
            }
            Ok(bytes)
        };
        let wasm = read(path)?;
        let qyv = path.with_extension("qyv");
        let qyv = qyv.is_file().then(|| read(&qyv)).transpose()?;
        Ok(Self { wasm, qyv })
    }

    /// The module among an image's layers (media type, bytes), and its manifest if any.
    pub fn from_layers<'a>(
        layers: impl IntoIterator<Item = (String, &'a [u8])>,
    ) -> anyhow::Result<Self> {
        let mut wasm = None;
        let mut qyv = None;
        for (media, bytes) in layers {
            if media == MEDIA_QYV {
                qyv = Some(bytes.to_vec());
            } else if wasm.replace(bytes.to_vec()).is_some() {
                bail!("the image has more than one module layer");
            }
        }
        Ok(Self {
            wasm: wasm.context("the image has no module layer")?,
            qyv,
        })
    }
}

/// Runs `module` with `args` and `env` (`K=V`), the container's mounts and memory limit as the
/// operator's grants; returns the exit code the container reports.
pub fn run(
    module: Module,
    args: Vec<String>,
    env: Vec<String>,
    stop: qyvol_runtime::Stop,
) -> anyhow::Result<i32> {
    let component = matches!(
        containerd_shim_wasm::sandbox::context::WasmBinaryType::from_bytes(&module.wasm),
        Some(containerd_shim_wasm::sandbox::context::WasmBinaryType::Component)
    );
    let qyv = module.qyv.unwrap_or_else(|| {
        let runtime = "wasi";
        format!("version: 1\nname: app\nentrypoint: app.wasm\nruntime: {runtime}\n").into_bytes()
    });
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
    let op = Operator {
        env: env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect(),
        mounts: container_mounts(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        ),
        memory: cgroup_memory_limit(),
        ..Operator::default()
    };
    let opened = qyvol_launch::open(&bundle, &op, None, &mut |r| {
        Err::<(), qyvol_launch::LaunchError>(qyvol_launch::LaunchError::from(
            qyvol_store::StoreError::NotFound(qyvol_store::canonical(r)),
        ))
    })?;
    let http = opened.manifest.runtime == qyvol_common::RuntimeKind::WasiHttp;
    let launch = qyvol_launch::prepare(opened, &op, None, args, Default::default())?;
    if http {
        let listen = env
            .iter()
            .find_map(|kv| kv.strip_prefix("QYVOL_LISTEN="))
            .unwrap_or(DEFAULT_LISTEN)
            .to_string();
        return serve(launch, &listen);
    }
    let mut request = launch.request;
    request.stop = Some(stop);
    let how = qyvol_runtime::Compilation {
        cache: None,
        progress: None,
    };
    let outcome = qyvol_runtime::run(&launch.wasm, &request, how)?;
    Ok(exit_code(&outcome))
}

/// Where an HTTP app listens in its pod (the Service `qyvol kube` writes targets it); the
/// container's `QYVOL_LISTEN` may say otherwise.
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
        wasm: launch.wasm,
        request: launch.request,
    };
    let how = qyvol_runtime::Compilation {
        cache: None,
        progress: None,
    };
    let server = Server::new(vec![app], how, ServeOptions::default())?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} (QYVOL_LISTEN)"))?;
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
/// image cannot foresee (its `/tmp` may be a symlink into a volume), else in the temp folder
/// when the root is read-only.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".qyvol-")
        .tempdir_in("/")
        .or_else(|_| tempfile::tempdir())
        .context("cannot make a scratch folder in the container (is its root read-only?)")
}

/// The exit code a container reports for an outcome, as `qyvol run` exits
/// (docs/exit-codes.md).
pub fn exit_code(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Exited(code) => *code,
        Outcome::Trapped { .. } => 134,
        Outcome::TimedOut(_) | Outcome::FuelExhausted(_) => 124,
        Outcome::LimitExceeded { .. } => 137,
        Outcome::Stopped => 143,
    }
}

/// The container's memory limit (cgroup v2's `memory.max` as the container sees it).
fn cgroup_memory_limit() -> Option<ByteSize> {
    std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
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
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let point = unescape(point);
        if system(&point) || !Path::new(&point).is_dir() {
            continue;
        }
        let Ok(guest) = point.parse::<GuestPath>() else {
            continue;
        };
        let readonly = options.split(',').any(|o| o == "ro");
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
    fn outcomes_exit_as_qyvol_run_does() {
        assert_eq!(exit_code(&Outcome::Exited(3)), 3);
        assert_eq!(exit_code(&Outcome::Stopped), 143);
        assert_eq!(
            exit_code(&Outcome::TimedOut(std::time::Duration::ZERO)),
            124
        );
    }
}
