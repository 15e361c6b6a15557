//! The shim's side of containerd's task API: one [`QyvolInstance`] per container, set up by
//! youki's libcontainer (namespaces, cgroups, the rootfs and the pod's mounts) with Qyvol's
//! [`QyvolExecutor`] deciding what runs inside.
//!
//! Why not containerd-shim-wasm's own instance: its executor runs an entrypoint that is an
//! executable ELF binary or `#!` script as a plain Linux container before the shim is asked
//! (it must, for a pod's pause container), so an image under the `qyvol` runtime class could
//! run native code; and it hides the container's spec, where the pod's annotations are. Here
//! only the pod's sandbox container may run natively; everything else is WebAssembly under
//! Qyvol's grants or nothing.
//!
//! libcontainer forks, which a threaded process must not do: the container is built and driven
//! from a single-threaded zygote process of its own (containerd-shimkit's `zygote`), which holds
//! it between calls.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use containerd_shim::monitor::{MONITOR, Subject, Subscription, Topic, monitor_subscribe};
use containerd_shimkit::sandbox::sync::WaitableCell;
use containerd_shimkit::sandbox::{Error as ShimError, Instance, InstanceConfig};
use containerd_shimkit::zygote::{WireError, Zygote};
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::image::Layer;

/// The runtime's name: containerd's `io.containerd.qyvol.v1`, youki's state under
/// `/run/containerd/qyvol/<namespace>`.
pub const NAME: &str = "qyvol";

/// What containerd's CRI sets on a pod's containers; `sandbox` is the pause container.
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

pub struct QyvolInstance {
    id: String,
    /// The process that holds the container (see the module's notes).
    zygote: Zygote,
    pid: i32,
    /// The container's exit, taken from the shim's reaper (the container's processes are the
    /// shim's children, reaped by it).
    exits: Mutex<Option<Subscription>>,
    exit_code: WaitableCell<(u32, DateTime<Utc>)>,
}

impl Instance for QyvolInstance {
    async fn new(id: String, cfg: &InstanceConfig) -> Result<Self, ShimError> {
        let layers = crate::image::wasm_layers(&cfg.containerd_address, &cfg.namespace, &id)
            .await
            // The whole chain: containerd shows the message, not its sources.
            .map_err(|e| ShimError::Others(format!("container {id}: {e:#}")))?;
        // Before the process exists, so its exit cannot be missed.
        let exits = monitor_subscribe(Topic::Pid)?;
        let zygote = Zygote::global().spawn();
        let build = Build {
            id: id.clone(),
            cfg: cfg.clone(),
            layers,
        };
        let pid = call(&zygote, build_container, build)?;
        Ok(Self {
            id,
            zygote,
            pid,
            exits: Mutex::new(Some(exits)),
            exit_code: WaitableCell::new(),
        })
    }

    async fn start(&self) -> Result<u32, ShimError> {
        log::info!("starting {}", self.id);
        // An exit code by the time this ends, whatever happens.
        let guard = self.exit_code.clone().set_guard_with(|| (137, Utc::now()));
        let exits = self
            .exits
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .ok_or_else(|| ShimError::FailedPrecondition(format!("{} was started", self.id)))?;
        call(&self.zygote, start_container, ())?;
        let (pid, exit_code) = (self.pid, self.exit_code.clone());
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let code = loop {
                match exits.rx.recv() {
                    Ok(e) if matches!(e.subject, Subject::Pid(p) if p == pid) => {
                        break u32::try_from(e.exit_code).unwrap_or(137);
                    }
                    Ok(_) => {}
                    Err(_) => break 137,
                }
            };
            if let Ok(mut monitor) = MONITOR.lock() {
                let _ = monitor.unsubscribe(exits.id);
            }
            let _ = exit_code.set((code, Utc::now()));
        });
        Ok(u32::try_from(self.pid).unwrap_or_default())
    }

    async fn kill(&self, signal: u32) -> Result<(), ShimError> {
        log::info!("signal {signal} to {}", self.id);
        call(&self.zygote, kill_container, signal)
    }

    async fn delete(&self) -> Result<(), ShimError> {
        log::info!("deleting {}", self.id);
        call(&self.zygote, delete_container, ())
    }

    async fn wait(&self) -> (u32, DateTime<Utc>) {
        *self.exit_code.wait().await
    }
}

/// Runs `f(arg)` in `zygote`, where the container lives.
fn call<A, T>(zygote: &Zygote, f: fn(A) -> Result<T, WireError>, arg: A) -> Result<T, ShimError>
where
    A: Serialize + for<'de> Deserialize<'de> + 'static,
    T: Serialize + for<'de> Deserialize<'de> + 'static,
{
    zygote
        .try_run(f, arg)
        .map_err(|e| ShimError::Others(e.to_string()))?
        .map_err(|e| ShimError::Others(e.to_string()))
}

thread_local! {
    /// The container, in the zygote process.
    static CONTAINER: RefCell<Option<Container>> = const { RefCell::new(None) };
}

#[derive(Serialize, Deserialize)]
struct Build {
    id: String,
    cfg: InstanceConfig,
    layers: Vec<Layer>,
}

fn wire(e: impl std::fmt::Display) -> WireError {
    WireError::from(std::io::Error::other(e.to_string()))
}

/// What youki's libcontainer (0.6) says when it loses a race of its own: the intermediate
/// process clones the container's init and only then sends the main process its pid, so an
/// init quicker than that (a pause process, on a loaded node) reports ready first and the build
/// fails. libcontainer has removed the half-made container by then (a failed cleanup would be
/// appended to this text), so building it again is safe. Seen once in about 450 pod starts
/// under load (bench/cri-density.sh); the kubelet would retry after its back-off.
const YOUKI_READY_RACE: &str = "failed to create container: received unexpected message: InitReady, expected: IntermediateReady(0)";

fn build_container(b: Build) -> Result<i32, WireError> {
    let root = b.cfg.determine_rootdir(NAME).map_err(wire)?;
    let spec = Spec::load(b.cfg.bundle.join("config.json")).map_err(wire)?;
    let executor = QyvolExecutor {
        layers: Arc::new(b.layers),
        sandbox: is_pod_sandbox(&spec),
    };
    let build = || {
        let mut builder = ContainerBuilder::new(b.id.clone(), SyscallType::Linux)
            .with_executor(executor.clone())
            .with_root_path(&root)
            .map_err(Box::new)?;
        if let Ok(f) = b.cfg.open_stdin() {
            builder = builder.with_stdin(f);
        }
        if let Ok(f) = b.cfg.open_stdout() {
            builder = builder.with_stdout(f);
        }
        if let Ok(f) = b.cfg.open_stderr() {
            builder = builder.with_stderr(f);
        }
        builder
            .as_init(&b.cfg.bundle)
            .as_sibling(true)
            .with_systemd(b.cfg.config.systemd_cgroup)
            .build()
            .map_err(Box::new)
    };
    let container = match build() {
        Err(e) if e.to_string() == YOUKI_READY_RACE => {
            log::warn!("{}: {e}; building it again", b.id);
            build()
        }
        built => built,
    }
    .map_err(wire)?;
    let pid = container
        .pid()
        .ok_or_else(|| wire("the container has no process"))?
        .as_raw();
    CONTAINER.with_borrow_mut(|c| *c = Some(container));
    Ok(pid)
}

fn with_container<T>(
    f: impl FnOnce(&mut Container) -> Result<T, WireError>,
) -> Result<T, WireError> {
    CONTAINER.with_borrow_mut(|c| match c {
        Some(c) => f(c),
        None => Err(wire("no container")),
    })
}

fn start_container((): ()) -> Result<(), WireError> {
    with_container(|c| c.start().map_err(wire))
}

fn kill_container(signal: u32) -> Result<(), WireError> {
    let signal = i32::try_from(signal)
        .ok()
        .and_then(|s| Signal::try_from(s).ok())
        .ok_or_else(|| wire(format!("{signal} is not a signal")))?;
    with_container(|c| c.kill(signal, true).map_err(wire))
}

fn delete_container((): ()) -> Result<(), WireError> {
    with_container(|c| c.delete(true).map_err(wire))
}

/// What runs inside the container, once youki has set it up: the pod's sandbox (pause)
/// container as the Linux process it is — Kubernetes needs it, and its image is the node's
/// (containerd's `sandbox_image`), not the pod author's — and anything else as WebAssembly
/// under Qyvol's grants, never as native code.
#[derive(Clone)]
struct QyvolExecutor {
    /// The module and manifest layers of a Wasm OCI artifact; empty for the filesystem form.
    layers: Arc<Vec<Layer>>,
    /// The pod's sandbox (pause) container, run as the Linux process it is.
    sandbox: bool,
}

fn is_pod_sandbox(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(CONTAINER_TYPE))
        .is_some_and(|t| t == "sandbox")
}

impl Executor for QyvolExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        if is_pod_sandbox(spec) {
            return DefaultExecutor {}.validate(spec);
        }
        // What is wrong with a module is said by the run, on the container's stderr; youki
        // would refuse a container without arguments before the run, without a word there.
        let args = spec.process().as_ref().and_then(|p| p.args().as_ref());
        if args.is_none_or(Vec::is_empty) {
            eprintln!(
                "qyvol: the container has no entrypoint: give the module's path (e.g. /app.wasm)"
            );
            std::process::exit(125);
        }
        Ok(())
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if is_pod_sandbox(spec) {
            return DefaultExecutor {}.exec(spec);
        }
        crate::release_inherited_fds();
        std::process::exit(crate::run_container(spec, &self.layers))
    }

    /// The container's variables are the guest's, given to it by the run: the shim's own
    /// environment is not the image's to set (`QYVOL_*`, `TZ`, ... would reach the runtime).
    /// The pause process gets its image's and only those, as under runc, not the shim's.
    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        if self.sandbox {
            return DefaultExecutor {}.setup_envs(envs);
        }
        Ok(())
    }
}
