//! What `containerd-shim-qyvol-v1` does inside the container: the module and the image's own
//! manifest become a bundle that Qyvol's launch path opens as packaged code (its manifest
//! limits itself, grants nothing), with the operator's grants taken from the container as
//! the orchestrator set it up — its mounts (the pod's volumes; read-only ones read-only), its
//! memory limit, and its annotations (`qyvol.dev/allow-net`, `qyvol.dev/timeout`,
//! `qyvol.dev/fuel`). Nothing of the image's filesystem is visible to the guest, and no
//! network is granted but what the annotations name. Native code never runs but the pod's
//! sandbox container ([`instance`]).
//!
//! The run path is [`run_container`] and [`run`] (a `wasi-http` app is served by `serve`); what
//! the orchestrator set up is read in `annotations` (the pod's grants) and `container` (its
//! mounts, resolver files and memory limit); `process` readies the shim's own process for a
//! guest.

mod annotations;
mod container;
mod image;
pub mod instance;
mod module;
mod process;
mod run;
mod serve;

pub use annotations::{
    ANN_ALLOW_NET, ANN_FUEL, ANN_LISTEN, ANN_TIMEOUT, DEFAULT_LISTEN, PodGrants,
};
pub use container::{ContainerMounts, container_mounts};
pub use image::Layer;
pub use module::Module;
#[cfg(target_env = "gnu")]
pub use process::pin_name_services;
pub use process::release_inherited_fds;
pub use run::{run, run_container, stop_on_signal};

/// The largest module the shim reads.
const MAX_MODULE: u64 = qyvol_runtime::DEFAULT_MAX_MODULE_SIZE;
