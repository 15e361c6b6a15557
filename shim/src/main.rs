//! `containerd-shim-qyvol-v1`: containerd's runtime `io.containerd.qyvol.v1` (Kubernetes:
//! a RuntimeClass whose handler is `qyvol`). containerd-shim-wasm speaks containerd's shim
//! protocol and sets the container up (youki: namespaces, cgroups, the rootfs and the pod's
//! mounts); inside it, Qyvol's launch path runs the module under the trust boundary
//! (`containerd_shim_qyvol::run`).

use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, Source};
use containerd_shim_wasm::shim::{Cli, Shim, Version, version};

struct QyvolShim;

#[derive(Default)]
struct QyvolSandbox;

impl Shim for QyvolShim {
    type Sandbox = QyvolSandbox;

    fn name() -> &'static str {
        "qyvol"
    }

    fn version() -> Version {
        version!()
    }

    /// The module, and the image's own manifest, which may restrict it (never grant).
    fn supported_layers_types() -> &'static [&'static str] {
        &[
            qyvol_store::bundle::MEDIA_WASM,
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
            qyvol_store::bundle::MEDIA_QYV,
        ]
    }
}

impl Sandbox for QyvolSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        // First of all: a SIGTERM that arrives before the shim listens is lost.
        let stop = containerd_shim_qyvol::stop_on_signal();
        let entry = ctx.entrypoint();
        let module = match entry.source {
            Source::File(path) => containerd_shim_qyvol::Module::from_file(&path),
            Source::Oci(layers) => containerd_shim_qyvol::Module::from_layers(
                layers
                    .iter()
                    .map(|l| (l.config.media_type().to_string(), l.layer.as_slice())),
            ),
        };
        let module = match module {
            Ok(m) => m,
            Err(e) => {
                eprintln!("qyvol: {e:#}");
                return Ok(125);
            }
        };
        let args = ctx.args().iter().skip(1).cloned().collect();
        let env = ctx.envs().to_vec();
        // Qyvol's runtime blocks on its own: off the shim's async runtime.
        let ran = std::thread::spawn(move || containerd_shim_qyvol::run(module, args, env, stop))
            .join()
            .map_err(|_| anyhow::anyhow!("the run panicked"))?;
        // What kept the guest from running goes to the container's own output, with Qyvol's
        // "failed for a reason of its own" (125), not the library's 137 (out of memory).
        Ok(ran.unwrap_or_else(|e| {
            eprintln!("qyvol: {e:#}");
            125
        }))
    }
}

fn main() {
    QyvolShim::run(None);
}
