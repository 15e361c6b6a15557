//! Integration tests over the real `qyvol` binary: one test binary, one module per area.

#![expect(
    clippy::expect_used,
    reason = "a broken fixture should fail the test loudly"
)]

mod archives;
mod attack;
mod bundle;
mod cache;
mod cli;
mod compose;
mod cosign;
mod dashboard;
mod features;
mod fixture;
mod guests;
mod home;
mod hostile;
mod hostile_registry;
mod inspect;
mod interop;
mod kube;
mod limits;
mod manifests;
mod mounts;
mod network;
mod node;
mod node_state;
mod registry;
mod seed;
mod serve;
mod serve_p3;
mod signing;
mod special_files;
mod state;
mod store;
mod tiering;
mod trust;
mod wasi_p3;
