//! Shared model of Qyvol: the `.qyv` manifest (parsing, validation, path resolution) and the
//! policies behind each environment. Nothing here knows about wasmtime, tokio or the network, so
//! every crate (and every tool that reads manifests) can depend on it cheaply.

mod compose;
mod digest;
mod error;
mod file;
mod folder;
mod home;
mod lang;
mod manifest;
mod network;
mod policy;
mod state;
mod types;
pub mod yaml;

pub use compose::{COMPOSE_FILE, Compose, ComposeApp};
pub use digest::{Digest, DigestError};
pub use error::{ErrorKind, ManifestError};
pub use file::{FileError, SpecialFile, create_private_dir, open_regular, read_head, read_regular};
pub use folder::{Folder, FolderError, open_mount};
pub use home::{Home, HomeError, trust_policy_beside};
pub use lang::Lang;
pub use manifest::{
    BuildSpec, HttpSpec, LoadOptions, MANIFEST_MAX_BYTES, MAX_STATE_NAMES, Manifest, Mount,
    Packaged, RequestedMount, Requests, ResolvedLimits, StateSpec,
};
pub use network::{GrantKind, HostPattern, NetworkGrant, Route, is_private};
pub use policy::{Environment, Policy, PolicyViolation};
pub use state::{
    ConfigKey, KvLimits, KvQuotas, MAX_CONFIG_VALUE, Secret, config_value, parse_config_pair,
};
pub use types::{
    AppName, ByteSize, DurationSpec, GuestPath, RuntimeKind, parse_env_file, parse_env_pair,
};

/// The bytes every WebAssembly binary (core module or component) starts with.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Whether `path` looks like a tar archive (a `.qyvc` bundle) rather than a manifest or a module.
pub fn is_bundle_file(path: &std::path::Path) -> bool {
    read_head::<262>(path).is_some_and(|header| &header[257..262] == b"ustar")
}

/// Makes text that a module, a guest or a file name controls safe to show on a terminal or in
/// a page: control characters (ANSI and OSC escapes among them) are shown escaped, never
/// interpreted.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod escape_tests {
    #[test]
    fn escapes_are_shown_not_interpreted() {
        assert_eq!(super::escape_controls("memory"), "memory");
        assert_eq!(
            super::escape_controls("a\u{1b}]0;pwned\u{7}b"),
            "a\\u{1b}]0;pwned\\u{7}b"
        );
    }
}
