//! The compiled bundle (`.qyvc`): an OCI image layout in a tar, so it is at once Qyvol's
//! fast-start format and a standard artifact (skopeo, oras and crane read it).
//!
//! ```text
//! oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! index.json                 one image manifest, ref name = the app's name
//! blobs/sha256/<manifest>    config application/vnd.wasm.config.v0+json (CNCF Wasm OCI artifact)
//!                            layers: application/wasm                         the module
//!                                    application/vnd.qyvol.manifest.v1+yaml   the .qyv
//!                                    application/vnd.qyvol.precompiled.v1     native code, annotated
//!                                        dev.qyvol.platform / dev.qyvol.engine / dev.qyvol.wasmtime
//! ```
//!
//! Reading never trusts the tar: only regular files at the layout's paths are indexed, and every
//! blob is checked against its digest and size before use.

mod read;
mod write;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use qyvol_common::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use read::Bundle;
pub use write::{ROOTFS_QYV, ROOTFS_WASM, save, save_rootfs, write, write_signed};

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const MEDIA_WASM: &str = "application/wasm";
pub const MEDIA_QYV: &str = "application/vnd.qyvol.manifest.v1+yaml";
pub const MEDIA_PRECOMPILED: &str = "application/vnd.qyvol.precompiled.v1";
pub const ANN_PLATFORM: &str = "dev.qyvol.platform";
pub const ANN_ENGINE: &str = "dev.qyvol.engine";
pub const ANN_WASMTIME: &str = "dev.qyvol.wasmtime";
const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The whole image name containerd's importer reads (`ctr image import`).
const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";
const ANN_TITLE: &str = "org.opencontainers.image.title";
/// index.json, manifests and configs are small; anything larger is not a bundle of ours.
const MAX_METADATA: u64 = 1024 * 1024;
/// The most layers an image may list.
pub const MAX_LAYERS: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    /// Parsed strictly when deserialized: a descriptor never carries a digest that is not
    /// `sha256:<64 hex>`, so none can become a path outside `blobs/`.
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageIndex {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read bundle `{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: give a .qyvc file")]
    NotAFile(qyvol_common::FileError),
    #[error("`{path}` is not a Qyvol bundle: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error(
        "bundle `{path}` is damaged or tampered with: blob `{digest}` does not match its digest; rebuild it with `qyvol build`"
    )]
    Digest { path: PathBuf, digest: Digest },
}

/// Native code for one platform and engine, to put in a bundle.
#[derive(Debug)]
pub struct Precompiled {
    pub code: Vec<u8>,
    pub platform: String,
    pub engine: String,
    pub wasmtime: String,
}

/// Everything `qyvol build` puts in a bundle.
#[derive(Debug)]
pub struct BundleParts<'a> {
    pub name: &'a str,
    pub qyv: &'a [u8],
    pub wasm: &'a [u8],
    /// `wasip1` for core modules, `wasip2` for components (the CNCF config's `os`).
    pub os: &'a str,
    pub precompiled: Option<Precompiled>,
}

pub fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::of(bytes)
}

pub(crate) fn descriptor_with(
    media_type: &str,
    bytes: &[u8],
    annotations: BTreeMap<String, String>,
) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: sha256_digest(bytes),
        size: bytes.len() as u64,
        annotations,
    }
}

/// Where an image's blobs come from: a bundle file or the local store. Every read is checked
/// against the descriptor's digest and size.
pub trait ImageSource: Send + Sync {
    /// The verified image manifest and where it came from.
    fn head(&self) -> &ImageHead;
    /// Streams a blob to `out`, checking digest and size; on an error `out` holds unverified
    /// bytes and must be discarded.
    fn copy_blob(&self, desc: &Descriptor, out: &mut dyn Write) -> Result<(), BundleError>;

    /// The files the image's blobs are read from, so a check of them all can be remembered
    /// until one of them changes; none for an image held in memory (never remembered).
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The bundle file or image reference, for messages.
    fn location(&self) -> &Path {
        &self.head().shown
    }

    fn image(&self) -> &ImageManifest {
        &self.head().manifest
    }

    fn image_digest(&self) -> &Digest {
        &self.head().digest
    }

    /// The image manifest exactly as stored (its digest is over these bytes).
    fn image_bytes(&self) -> &[u8] {
        &self.head().bytes
    }

    fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, BundleError> {
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0).min(1 << 30));
        self.copy_blob(desc, &mut out)?;
        Ok(out)
    }

    /// The first layer of a media type.
    fn layer(&self, media_type: &str) -> Option<&Descriptor> {
        self.image()
            .layers
            .iter()
            .find(|l| l.media_type == media_type)
    }

    /// Precompiled layers, one per platform and engine.
    fn precompiled(&self) -> Vec<&Descriptor> {
        self.image()
            .layers
            .iter()
            .filter(|l| l.media_type == MEDIA_PRECOMPILED)
            .collect()
    }
}

/// What every image source knows once its manifest is verified.
#[derive(Debug, Clone)]
pub struct ImageHead {
    /// The bundle file or image reference, for messages.
    pub shown: PathBuf,
    pub digest: Digest,
    /// The manifest exactly as stored.
    pub bytes: Vec<u8>,
    pub manifest: ImageManifest,
}

impl ImageHead {
    /// Parses manifest bytes already checked against `digest`.
    pub fn parse(shown: &Path, digest: &Digest, bytes: Vec<u8>) -> Result<Self, BundleError> {
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| BundleError::Format {
                path: shown.to_path_buf(),
                reason: format!("bad image manifest: {e}"),
            })?;
        // A Qyvol image has a few layers (wasm, manifest, one precompiled per platform); a
        // long list only multiplies the work of checking it.
        if manifest.layers.len() > MAX_LAYERS {
            return Err(BundleError::Format {
                path: shown.to_path_buf(),
                reason: format!(
                    "the image lists {} layers; Qyvol reads images of at most {MAX_LAYERS}",
                    manifest.layers.len()
                ),
            });
        }
        Ok(Self {
            shown: shown.to_path_buf(),
            digest: digest.clone(),
            bytes,
            manifest,
        })
    }
}

/// Copies `size` bytes of `reader` to `out` while hashing; fails unless they match `desc`.
pub fn copy_verified(
    mut reader: impl Read,
    desc: &Descriptor,
    out: &mut dyn Write,
    location: &Path,
) -> Result<(), BundleError> {
    let io_err = |source| BundleError::Io {
        path: location.to_path_buf(),
        source,
    };
    let tampered = || BundleError::Digest {
        path: location.to_path_buf(),
        digest: desc.digest.clone(),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > desc.size {
            return Err(tampered());
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err)?;
    }
    if total != desc.size || Digest::from_hasher(hasher) != desc.digest {
        return Err(tampered());
    }
    Ok(())
}

pub use qyvol_common::is_bundle_file;
