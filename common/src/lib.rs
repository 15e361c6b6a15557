//! Shared model of Qyvol: the `.qyv` manifest (parsing, validation, path resolution) and the
//! policies behind each environment. Nothing here knows about wasmtime, tokio or the network, so
//! every crate (and every tool that reads manifests) can depend on it cheaply.

mod digest;
mod error;
mod folder;
mod home;
mod manifest;
mod network;
mod policy;
mod types;
mod yaml;

pub use digest::{Digest, DigestError};
pub use error::{ErrorKind, ManifestError};
pub use folder::{Folder, FolderError, open_mount};
pub use home::Home;
pub use manifest::{
    BuildSpec, HttpSpec, LoadOptions, MANIFEST_MAX_BYTES, Manifest, Mount, Packaged,
    RequestedMount, Requests, ResolvedLimits,
};
pub use network::{GrantKind, HostPattern, NetworkGrant, Route};
pub use policy::{Environment, Policy, PolicyViolation};
pub use types::{AppName, ByteSize, DurationSpec, GuestPath, RuntimeKind, parse_env_pair};

/// The bytes every WebAssembly binary (core module or component) starts with.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Whether `path` looks like a tar archive (a `.qyvc` bundle) rather than a manifest or a module.
pub fn is_bundle_file(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 262];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && &header[257..262] == b"ustar"
}
