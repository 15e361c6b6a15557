//! Writing bundles: the OCI image layout as one tar archive, signed or not, and the
//! containerd-ready archive `qyvol save` makes.

use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use qyvol_common::Digest;

use super::{
    ANN_CONTAINERD_NAME, ANN_ENGINE, ANN_PLATFORM, ANN_REF_NAME, ANN_TITLE, ANN_WASMTIME,
    BundleError, BundleParts, Descriptor, ImageIndex, ImageManifest, ImageSource, MEDIA_MANIFEST,
    MEDIA_PRECOMPILED, MEDIA_QYV, MEDIA_WASM, MEDIA_WASM_CONFIG, descriptor_with, sha256_digest,
};

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
