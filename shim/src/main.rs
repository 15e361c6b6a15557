//! `containerd-shim-qyvol-v1`: containerd's runtime `io.containerd.qyvol.v1` (Kubernetes:
//! a RuntimeClass whose handler is `qyvol`). containerd-shimkit speaks containerd's shim
//! protocol; each container is a [`QyvolInstance`], set up by youki and run by Qyvol's launch
//! path under the trust boundary (`containerd_shim_qyvol::run_container`).

use containerd_shim_qyvol::instance::{NAME, QyvolInstance};
use containerd_shimkit::sandbox::cli::shim_main;

fn main() {
    // Before anything looks a name up or forks: the containers are this process's forks.
    if let Err(e) = containerd_shim_qyvol::pin_name_services() {
        eprintln!("containerd-shim-qyvol-v1: {e:#}");
        std::process::exit(1);
    }
    shim_main::<QyvolInstance>(NAME, containerd_shimkit::shim_version!(), None);
}
