//! The run path: the container's process and arguments become a bundle that Qyvol's launch
//! path opens, run as a command (or served, for a `wasi-http` app) until it ends or is stopped.

use std::borrow::Cow;
use std::path::Path;

use anyhow::Context;
use qyvol_common::ByteSize;
use qyvol_launch::Operator;
use qyvol_store::bundle::BundleParts;

use crate::annotations::{DEFAULT_LISTEN, PodGrants};
use crate::container::{cgroup_memory_limit, check_resolver, container_mounts, guest_share};
use crate::image::Layer;
use crate::module::Module;
use crate::serve::serve;

/// The container's process as Qyvol runs it (inside the container, once it is set up): the
/// module from the artifact's `layers` or at the entrypoint's path in the filesystem, the
/// process's arguments and variables, the annotations' grants. Returns the exit code; what
/// keeps the guest from running is said on the container's stderr, with 125.
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
    let mounts = container_mounts(&mountinfo);
    for file in &mounts.files {
        eprintln!(
            "qyvol: the volume at {file} is a file, not a folder, and is not given to the guest \
             (WebAssembly guests are given folders: mount the folder that holds it)"
        );
    }
    let op = Operator {
        env: env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect(),
        mounts: mounts.granted,
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
    // Why it ended, in the words `qyvol run` uses, in the language of the shim's environment.
    if let Some(why) = outcome.explain(qyvol_common::Lang::of_process()) {
        eprintln!("qyvol: {why}");
    }
    // As `qyvol run` exits and the node records (docs/exit-codes.md).
    Ok(outcome.exit_code())
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
