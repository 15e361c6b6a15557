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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use qyvol_common::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

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

/// Writes the bundle to `out` atomically (a temp file renamed into place).
pub fn write(out: &Path, parts: &BundleParts<'_>) -> io::Result<()> {
    write_signed(out, parts, None)
}

/// [`write`], and with `signer` a signature of the bundle's manifest kept in the archive's
/// index (cosign's payload and signature as the manifest descriptor's annotations).
pub fn write_signed(
    out: &Path,
    parts: &BundleParts<'_>,
    signer: Option<&crate::trust::Signer>,
) -> io::Result<()> {
    let wasm = descriptor_with(MEDIA_WASM, parts.wasm, BTreeMap::new());
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": parts.os,
        "layerDigests": [wasm.digest],
    }))
    .map_err(io::Error::other)?;
    // Each blob with its bytes, for the archive to write them.
    let config_desc = descriptor_with(MEDIA_WASM_CONFIG, &config, BTreeMap::new());
    let mut blobs: Vec<(Descriptor, &[u8])> = vec![
        (config_desc.clone(), &config),
        (wasm, parts.wasm),
        (
            descriptor_with(MEDIA_QYV, parts.qyv, BTreeMap::new()),
            parts.qyv,
        ),
    ];
    if let Some(p) = &parts.precompiled {
        let ann = BTreeMap::from([
            (ANN_PLATFORM.to_string(), p.platform.clone()),
            (ANN_ENGINE.to_string(), p.engine.clone()),
            (ANN_WASMTIME.to_string(), p.wasmtime.clone()),
        ]);
        blobs.push((descriptor_with(MEDIA_PRECOMPILED, &p.code, ann), &p.code));
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        config: config_desc,
        layers: blobs[1..].iter().map(|(d, _)| d.clone()).collect(),
        annotations: BTreeMap::from([(ANN_TITLE.to_string(), parts.name.to_string())]),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let digest = sha256_digest(&manifest_bytes);
    let mut index_annotations = BTreeMap::from([(ANN_REF_NAME.to_string(), "latest".to_string())]);
    if let Some(signer) = signer {
        let signature =
            crate::trust::sign_bundle(signer, parts.name, &digest).map_err(io::Error::other)?;
        index_annotations.extend(signature.annotations());
    }
    write_archive(
        out,
        index_annotations,
        &digest,
        &manifest_bytes,
        &blobs.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        &mut |desc| {
            let bytes = blobs
                .iter()
                .find(|(d, _)| d.digest == desc.digest)
                .map_or(&[][..], |(_, b)| *b);
            Ok(Box::new(bytes))
        },
    )
    .map_err(|e| match e {
        BundleError::Io { source, .. } => source,
        other => io::Error::other(other),
    })
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

/// An opened bundle: its verified image manifest, and where each blob lies in the tar.
#[derive(Debug)]
pub struct Bundle {
    head: ImageHead,
    /// The image's name in the archive's index (`io.containerd.image.name`, or a
    /// `org.opencontainers.image.ref.name` that is a whole reference), for `qyvol load`.
    name: Option<String>,
    /// Offset and size of each `blobs/sha256/<hex>` file in the tar.
    blobs: HashMap<Digest, (u64, u64)>,
    signature: Option<crate::trust::Signature>,
}

impl Bundle {
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let io_err = |source| BundleError::Io {
            path: path.to_path_buf(),
            source,
        };
        let format = |reason: String| BundleError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let file = open(path)?;
        let mut archive = tar::Archive::new(file);
        let mut blobs = HashMap::new();
        let mut index_bytes = None;
        let mut layout = false;
        for entry in archive.entries_with_seek().map_err(io_err)? {
            let mut entry = entry.map_err(|e| format(format!("broken tar: {e}")))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| format(e.to_string()))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let size = entry.size();
            match name.as_str() {
                "oci-layout" => layout = true,
                "index.json" => {
                    if size > MAX_METADATA {
                        return Err(format("index.json is too large".into()));
                    }
                    let mut buf = Vec::new();
                    entry.read_to_end(&mut buf).map_err(io_err)?;
                    index_bytes = Some(buf);
                }
                _ => {
                    if let Some(hex) = name.strip_prefix("blobs/sha256/")
                        && let Ok(digest) = Digest::parse(&format!("sha256:{hex}"))
                    {
                        blobs.insert(digest, (entry.raw_file_position(), size));
                    }
                }
            }
        }
        if !layout {
            return Err(format("no `oci-layout` file".into()));
        }
        let index: ImageIndex =
            serde_json::from_slice(&index_bytes.ok_or_else(|| format("no `index.json`".into()))?)
                .map_err(|e| format(format!("bad index.json: {e}")))?;
        let desc = index
            .manifests
            .iter()
            .find(|d| d.media_type == MEDIA_MANIFEST)
            .ok_or_else(|| format("index.json lists no image manifest".into()))?
            .clone();
        if desc.size > MAX_METADATA {
            return Err(format("the image manifest is too large".into()));
        }
        let mut manifest_bytes = Vec::new();
        read_at(path, &blobs, &desc, &mut manifest_bytes)?;
        let head = ImageHead::parse(path, &desc.digest, manifest_bytes)?;
        if head.manifest.config.media_type != MEDIA_WASM_CONFIG {
            return Err(format(format!(
                "config media type `{}` is not a Wasm OCI artifact",
                head.manifest.config.media_type
            )));
        }
        let signature = crate::trust::Signature::from_annotations(&desc.annotations);
        let name = desc
            .annotations
            .get(ANN_CONTAINERD_NAME)
            .or_else(|| {
                desc.annotations
                    .get(ANN_REF_NAME)
                    .filter(|n| n.contains('/') || n.contains(':'))
            })
            .cloned();
        Ok(Self {
            head,
            blobs,
            name,
            signature,
        })
    }

    /// The signature `qyvol build --sign` kept in the archive, if any (unchecked).
    pub fn signature(&self) -> Option<&crate::trust::Signature> {
        self.signature.as_ref()
    }

    /// The image's name as the archive gives it (see [`save`]).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Writes the image `source` as an OCI archive (an image layout in a tar, as `docker save`
/// and `ctr image export` write them) named `name` (a whole reference): containerd's
/// `ctr image import` takes it, and so does [`Bundle::open`] and `qyvol load`. Blobs are
/// streamed through a temporary file each, never held in memory; the archive is written
/// atomically.
pub fn save(
    source: &dyn ImageSource,
    name: &str,
    tag: &str,
    out: &Path,
) -> Result<(), BundleError> {
    let head = source.head();
    let manifest = source.image();
    let blobs: Vec<&Descriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .collect();
    let dir = parent_dir(out);
    write_archive(
        out,
        named(name, tag),
        &head.digest,
        &head.bytes,
        &blobs,
        &mut |desc| {
            let io_err = |source| BundleError::Io {
                path: out.to_path_buf(),
                source,
            };
            let mut blob = tempfile::tempfile_in(dir).map_err(io_err)?;
            source.copy_blob(desc, &mut blob)?;
            blob.seek(SeekFrom::Start(0)).map_err(io_err)?;
            Ok(Box::new(blob))
        },
    )
}

/// The index annotations that name an archive's image: containerd's importer reads the whole
/// name, OCI tools the tag.
fn named(name: &str, tag: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ANN_CONTAINERD_NAME.to_string(), name.to_string()),
        (ANN_REF_NAME.to_string(), tag.to_string()),
    ])
}

/// The folder `out` is written in (its temporary files beside it).
fn parent_dir(out: &Path) -> &Path {
    out.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A tar header for a regular file of `size` bytes, the same for every file Qyvol writes
/// (mode 0644, time 0), so archives of the same image are the same bytes.
fn regular(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// The media types of an ordinary OCI image, for [`save_rootfs`].
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The module's path in an image written by [`save_rootfs`], and its manifest's beside it.
pub const ROOTFS_WASM: &str = "app.wasm";
pub const ROOTFS_QYV: &str = "app.qyv";

/// Writes the image `source` as an ordinary OCI image (any containerd unpacks it, also one
/// older than the Wasm OCI artifact): one filesystem layer holding `/app.wasm` and the image's
/// own manifest as `/app.qyv` (packaged, so it grants nothing), entrypoint `/app.wasm`,
/// platform `linux` and this machine's architecture so the node's containerd takes it. Shims
/// that read a module from the container's files run it (`containerd-shim-qyvol-v1`).
pub fn save_rootfs(
    source: &dyn ImageSource,
    name: &str,
    tag: &str,
    out: &Path,
) -> Result<(), BundleError> {
    let io_err = |source| BundleError::Io {
        path: out.to_path_buf(),
        source,
    };
    let manifest = source.image();
    let pick = |media: &str| manifest.layers.iter().find(|l| l.media_type == media);
    let wasm = pick(MEDIA_WASM).ok_or_else(|| BundleError::Format {
        path: source.location().to_path_buf(),
        reason: "the image has no `application/wasm` layer".into(),
    })?;
    let mut layer = Vec::new();
    {
        let mut tar = tar::Builder::new(&mut layer);
        let mut add = |path: &str, desc: &Descriptor| -> Result<(), BundleError> {
            let mut bytes = Vec::new();
            source.copy_blob(desc, &mut bytes)?;
            tar.append_data(&mut regular(bytes.len() as u64), path, bytes.as_slice())
                .map_err(io_err)
        };
        add(ROOTFS_WASM, wasm)?;
        if let Some(qyv) = pick(MEDIA_QYV) {
            add(ROOTFS_QYV, qyv)?;
        }
        tar.finish().map_err(io_err)?;
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let layer_desc = descriptor_with(MEDIA_OCI_LAYER, &layer, BTreeMap::new());
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": { "Entrypoint": [format!("/{ROOTFS_WASM}")] },
        "rootfs": { "type": "layers", "diff_ids": [layer_desc.digest] },
    }))
    .map_err(|e| io_err(io::Error::other(e)))?;
    let config_desc = descriptor_with(MEDIA_OCI_CONFIG, &config, BTreeMap::new());
    let image = ImageManifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        config: config_desc.clone(),
        layers: vec![layer_desc.clone()],
        annotations: BTreeMap::new(),
    };
    let image_bytes = serde_json::to_vec_pretty(&image).map_err(|e| io_err(io::Error::other(e)))?;
    let config_digest = config_desc.digest.clone();
    write_archive(
        out,
        named(name, tag),
        &sha256_digest(&image_bytes),
        &image_bytes,
        &[&config_desc, &layer_desc],
        &mut |desc| {
            let bytes: &[u8] = if desc.digest == config_digest {
                &config
            } else {
                &layer
            };
            Ok(Box::new(bytes))
        },
    )
}

/// A blob's bytes as [`write_archive`] reads them: from memory, or from a temporary file.
type BlobReader<'b> = Box<dyn io::Read + 'b>;

/// Writes atomically an OCI archive (an image layout in a tar) of one image manifest
/// (`manifest_bytes`, listed in the index with `annotations`) and its `blobs`, each read from
/// what `open` gives for it. The one writer of bundles and archives.
fn write_archive<'b>(
    out: &Path,
    annotations: BTreeMap<String, String>,
    digest: &Digest,
    manifest_bytes: &[u8],
    blobs: &[&Descriptor],
    open: &mut dyn FnMut(&Descriptor) -> Result<BlobReader<'b>, BundleError>,
) -> Result<(), BundleError> {
    let io_err = |source| BundleError::Io {
        path: out.to_path_buf(),
        source,
    };
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        manifests: vec![Descriptor {
            media_type: MEDIA_MANIFEST.into(),
            digest: digest.clone(),
            size: manifest_bytes.len() as u64,
            annotations,
        }],
    };
    let tmp = tempfile::NamedTempFile::new_in(parent_dir(out)).map_err(io_err)?;
    {
        let mut tar = tar::Builder::new(io::BufWriter::new(tmp.as_file()));
        let mut add = |path: &str, size: u64, data: &mut dyn io::Read| {
            tar.append_data(&mut regular(size), path, data)
                .map_err(io_err)
        };
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        add("oci-layout", layout.len() as u64, &mut &layout[..])?;
        let index = serde_json::to_vec_pretty(&index).map_err(|e| io_err(io::Error::other(e)))?;
        add("index.json", index.len() as u64, &mut index.as_slice())?;
        add(
            &format!("blobs/sha256/{}", digest.hex()),
            manifest_bytes.len() as u64,
            &mut &manifest_bytes[..],
        )?;
        let mut seen = std::collections::HashSet::new();
        for desc in blobs {
            if seen.insert(desc.digest.clone()) {
                let mut data = open(desc)?;
                add(
                    &format!("blobs/sha256/{}", desc.digest.hex()),
                    desc.size,
                    &mut data,
                )?;
            }
        }
        tar.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
    }
    tmp.as_file().sync_data().map_err(io_err)?;
    tmp.persist(out).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// Streams the blob `desc` from the tar at `path`, checked against its digest and size.
fn read_at(
    path: &Path,
    blobs: &HashMap<Digest, (u64, u64)>,
    desc: &Descriptor,
    out: &mut dyn Write,
) -> Result<(), BundleError> {
    let io_err = |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let &(offset, size) = blobs.get(&desc.digest).ok_or_else(|| BundleError::Format {
        path: path.to_path_buf(),
        reason: format!("blob `{}` is missing", desc.digest),
    })?;
    if size != desc.size {
        return Err(BundleError::Digest {
            path: path.to_path_buf(),
            digest: desc.digest.clone(),
        });
    }
    let mut file = open(path)?;
    file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
    copy_verified(file.take(size), desc, out, path)
}

impl ImageSource for Bundle {
    fn head(&self) -> &ImageHead {
        &self.head
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![
            self.head
                .shown
                .canonicalize()
                .unwrap_or_else(|_| self.head.shown.clone()),
        ]
    }

    fn copy_blob(&self, desc: &Descriptor, out: &mut dyn Write) -> Result<(), BundleError> {
        read_at(&self.head.shown, &self.blobs, desc, out)
    }
}

pub use qyvol_common::is_bundle_file;

/// Opens the bundle file, refusing anything but a regular file (a FIFO would block).
fn open(path: &Path) -> Result<File, BundleError> {
    match qyvol_common::open_regular(path) {
        Ok((file, _)) => Ok(file),
        Err(qyvol_common::FileError::Open { path, source }) => {
            Err(BundleError::Io { path, source })
        }
        Err(e) => Err(BundleError::NotAFile(e)),
    }
}
