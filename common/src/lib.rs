//! Shared model of Qyvol: the `.qyv` manifest (parsing, validation, path resolution) and the
//! policies behind each environment. Nothing here knows about wasmtime, tokio or the network, so
//! every crate (and every tool that reads manifests) can depend on it cheaply.

pub mod bundle;
mod error;
mod home;
mod manifest;
mod network;
mod policy;
mod types;
mod yaml;

pub use error::{ErrorKind, ManifestError};
pub use home::Home;
pub use manifest::{
    BuildSpec, HttpSpec, LoadOptions, MANIFEST_MAX_BYTES, Manifest, Mount, ResolvedLimits,
};
pub use network::{GrantKind, HostPattern, NetworkGrant, Route, is_private};
pub use policy::{Environment, Policy, PolicyViolation};
pub use types::{AppName, ByteSize, DurationSpec, GuestPath, RuntimeKind, parse_env_pair};

/// The bytes every WebAssembly binary (core module or component) starts with.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";
