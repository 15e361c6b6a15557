//! Reading a bundle file: its index and manifest found without trusting the archive's
//! offsets, each blob read in place and checked against its digest.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use qyvol_common::Digest;

use super::{
    ANN_CONTAINERD_NAME, ANN_REF_NAME, BundleError, Descriptor, ImageHead, ImageIndex, ImageSource,
    MAX_METADATA, MEDIA_MANIFEST, MEDIA_WASM_CONFIG, copy_verified,
};

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
