//! The local module repository under `QYVOL_HOME/store`: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`), so every module ever built or pulled is addressed by
//! content and tagged by reference, and standard tools can read the folder.
//!
//! Safety under concurrency and crashes: blobs are written to `tmp/` and renamed into
//! `blobs/` only once verified; `index.json` is rewritten (temp + rename) under an exclusive
//! lock on `.lock`, and only after every blob it names is in place. So a crash leaves at worst
//! an unreferenced temp file (removed by `prune`), never a reference to a half blob.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::bundle::{
    BundleError, Descriptor, ImageHead, ImageManifest, ImageSource, MEDIA_MANIFEST, copy_verified,
};
use serde::{Deserialize, Serialize};

pub mod bundle;
pub mod credentials;
mod registry;
mod staging;
pub mod trust;

pub use credentials::Credentials;
pub use oci_spec::distribution::Reference;
pub use registry::{
    DEFAULT_TIMEOUT, Progress, Remote, SignatureRecord, TIMEOUT_VAR, check_login, repository,
    timeout_from_env,
};

const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANN_CREATED: &str = "org.opencontainers.image.created";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store `{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "`{0}` is not a valid reference: write it like `registry/name:tag`, e.g. `localhost:5000/hello:1`"
    )]
    BadReference(String),
    #[error("no image `{0}` in the local store: see `qyvol images`")]
    NotFound(String),
    #[error(
        "the local store is damaged: {0}; run `qyvol prune`, then build or pull the image again"
    )]
    Damaged(String),
    #[error(transparent)]
    Blob(#[from] BundleError),
    #[error("registry {0}")]
    Registry(String),
    /// Refused by the trust policy or a signature check.
    #[error("{0}")]
    Untrusted(String),
    #[error("{0}")]
    Policy(String),
}

/// Parses a reference with Docker's defaults (`docker.io`, `library/`, `:latest`).
pub fn parse_reference(s: &str) -> Result<Reference, StoreError> {
    if s.is_empty() || s.len() > 4096 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StoreError::BadReference(s.chars().take(80).collect()));
    }
    let r = s
        .parse::<Reference>()
        .map_err(|_| StoreError::BadReference(s.to_string()))?;
    // Docker's grammar: repository components are lowercase letters, digits and separators.
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    };
    if !r.repository().split('/').all(component_ok) {
        return Err(StoreError::BadReference(s.to_string()));
    }
    Ok(r)
}

/// The name a reference is stored under: `registry/repository[:tag][@digest]`.
pub fn canonical(r: &Reference) -> String {
    r.whole()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// One tagged image, for `qyvol images`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageEntry {
    pub reference: String,
    pub digest: String,
    /// Manifest, config and layers.
    pub size: u64,
    /// Seconds since the Unix epoch when it was tagged.
    pub created: u64,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating when needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let store = Self {
            root: root.to_path_buf(),
        };
        let io_err = |source| StoreError::Io {
            path: root.to_path_buf(),
            source,
        };
        fs::create_dir_all(root.join("blobs/sha256")).map_err(io_err)?;
        fs::create_dir_all(root.join("tmp")).map_err(io_err)?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io(&self, path: &Path) -> impl Fn(io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            path: path.clone(),
            source,
        }
    }

    /// Where a blob lives: only a digest that parses strictly becomes a path.
    fn blob_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let digest =
            qyvol_common::Digest::parse(digest).map_err(|e| StoreError::Damaged(e.to_string()))?;
        Ok(self.root.join("blobs/sha256").join(digest.hex()))
    }

    /// Holds the store's exclusive lock while `f` runs.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let path = self.root.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(self.io(&path))?;
        lock.lock().map_err(self.io(&path))?;
        let result = f();
        let _ = lock.unlock();
        result
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let mut tmp =
            tempfile::NamedTempFile::new_in(self.root.join("tmp")).map_err(self.io(path))?;
        tmp.write_all(bytes).map_err(self.io(path))?;
        tmp.as_file().sync_data().map_err(self.io(path))?;
        self.persist(tmp, path)
    }

    /// Renames a complete temp file (already synced) to `dest`.
    fn persist(&self, tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), StoreError> {
        tmp.persist(dest).map_err(|e| StoreError::Io {
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    fn read_index(&self) -> Result<Index, StoreError> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Damaged(format!("`index.json` is not valid: {e}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index {
                schema_version: 2,
                media_type: Some("application/vnd.oci.image.index.v1+json".into()),
                manifests: vec![],
            }),
            Err(e) => Err(self.io(&path)(e)),
        }
    }

    fn write_index(&self, index: &Index) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec_pretty(index).map_err(|e| StoreError::Damaged(e.to_string()))?;
        self.write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Copies a blob in from `source`, verified on the way; a blob already present is kept.
    fn put_blob(&self, source: &dyn ImageSource, desc: &Descriptor) -> Result<(), StoreError> {
        let dest = self.blob_path(&desc.digest)?;
        if dest.exists() {
            return Ok(());
        }
        let tmp = tempfile::NamedTempFile::new_in(self.root.join("tmp")).map_err(self.io(&dest))?;
        let mut out = io::BufWriter::new(tmp.as_file());
        source.copy_blob(desc, &mut out)?;
        out.flush().map_err(self.io(&dest))?;
        drop(out);
        tmp.as_file().sync_data().map_err(self.io(&dest))?;
        self.persist(tmp, &dest)
    }

    /// Stores every blob of `source`'s image and tags it `reference`.
    pub fn import(
        &self,
        source: &dyn ImageSource,
        reference: &Reference,
    ) -> Result<String, StoreError> {
        let image = source.image();
        for desc in std::iter::once(&image.config).chain(&image.layers) {
            self.put_blob(source, desc)?;
        }
        self.tag_manifest(source.image_bytes(), reference)
    }

    /// Stores an image manifest whose blobs are all in place, and tags it `reference`.
    fn tag_manifest(
        &self,
        manifest_bytes: &[u8],
        reference: &Reference,
    ) -> Result<String, StoreError> {
        let digest = crate::bundle::sha256_digest(manifest_bytes);
        let dest = self.blob_path(&digest)?;
        if !dest.exists() {
            self.write_atomic(&dest, manifest_bytes)?;
        }
        let desc = Descriptor {
            media_type: MEDIA_MANIFEST.into(),
            digest: digest.clone(),
            size: manifest_bytes.len() as u64,
            annotations: BTreeMap::new(),
        };
        self.set_tag(&desc, reference)?;
        Ok(digest.to_string())
    }

    fn set_tag(&self, desc: &Descriptor, reference: &Reference) -> Result<(), StoreError> {
        let name = canonical(reference);
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.locked(|| {
            let mut index = self.read_index()?;
            index
                .manifests
                .retain(|m| m.annotations.get(ANN_REF_NAME) != Some(&name));
            let mut entry = desc.clone();
            entry.annotations = BTreeMap::from([
                (ANN_REF_NAME.to_string(), name.clone()),
                (ANN_CREATED.to_string(), created.to_string()),
            ]);
            index.manifests.push(entry);
            self.write_index(&index)
        })
    }

    /// The index entry for `reference`: by its name, or for `repo@sha256:...` by digest among
    /// the entries of that repository.
    fn find(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        let name = canonical(reference);
        let repo = format!("{}/{}", reference.registry(), reference.repository());
        let matches = |m: &Descriptor| {
            let entry = m
                .annotations
                .get(ANN_REF_NAME)
                .map(String::as_str)
                .unwrap_or_default();
            match (reference.tag(), reference.digest()) {
                (None, Some(digest)) => m.digest == digest && entry.starts_with(&repo),
                _ => entry == name,
            }
        };
        self.read_index()?
            .manifests
            .into_iter()
            .find(matches)
            .ok_or(StoreError::NotFound(name))
    }

    /// The stored image for `reference`, its manifest verified.
    pub fn image(&self, reference: &Reference) -> Result<StoredImage, StoreError> {
        let desc = self.find(reference)?;
        let path = self.blob_path(&desc.digest)?;
        let file = File::open(&path).map_err(|_| {
            StoreError::Damaged(format!(
                "blob `{}` of `{}` is missing",
                desc.digest,
                canonical(reference)
            ))
        })?;
        let mut bytes = Vec::new();
        copy_verified(file, &desc, &mut bytes, &path).map_err(|_| {
            StoreError::Damaged(format!("blob `{}` does not match its digest", desc.digest))
        })?;
        let head = ImageHead::parse(Path::new(&canonical(reference)), &desc.digest, bytes)
            .map_err(|e| StoreError::Damaged(format!("manifest `{}`: {e}", desc.digest)))?;
        Ok(StoredImage {
            store: self.clone(),
            head,
        })
    }

    /// Every tagged image.
    pub fn list(&self) -> Result<Vec<ImageEntry>, StoreError> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for m in index.manifests {
            let reference = m.annotations.get(ANN_REF_NAME).cloned().unwrap_or_default();
            let created = m
                .annotations
                .get(ANN_CREATED)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let layers: u64 = self
                .blob_path(&m.digest)
                .ok()
                .and_then(|p| fs::read(p).ok())
                .and_then(|b| serde_json::from_slice::<ImageManifest>(&b).ok())
                .map_or(0, |im| {
                    im.config.size + im.layers.iter().map(|l| l.size).sum::<u64>()
                });
            out.push(ImageEntry {
                reference,
                digest: m.digest.to_string(),
                size: m.size + layers,
                created,
            });
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Tags the image `src` also as `dst`.
    pub fn tag(&self, src: &Reference, dst: &Reference) -> Result<(), StoreError> {
        let desc = self.find(src)?;
        self.set_tag(&desc, dst)
    }

    /// Removes the tag `reference` (its blobs stay until `prune`).
    pub fn remove(&self, reference: &Reference) -> Result<String, StoreError> {
        let name = canonical(reference);
        self.locked(|| {
            let mut index = self.read_index()?;
            let before = index.manifests.len();
            let digest = index
                .manifests
                .iter()
                .find(|m| m.annotations.get(ANN_REF_NAME) == Some(&name))
                .map(|m| m.digest.to_string());
            index
                .manifests
                .retain(|m| m.annotations.get(ANN_REF_NAME) != Some(&name));
            if index.manifests.len() == before {
                return Err(StoreError::NotFound(name.clone()));
            }
            self.write_index(&index)?;
            Ok(digest.unwrap_or_default())
        })
    }

    /// Removes blobs no tag reaches and leftover temp files; returns the bytes freed.
    pub fn prune(&self) -> Result<u64, StoreError> {
        self.locked(|| {
            let index = self.read_index()?;
            let mut keep = HashSet::new();
            for m in &index.manifests {
                keep.insert(m.digest.clone());
                if let Some(im) = self
                    .blob_path(&m.digest)
                    .ok()
                    .and_then(|p| fs::read(p).ok())
                    .and_then(|b| serde_json::from_slice::<ImageManifest>(&b).ok())
                {
                    keep.insert(im.config.digest.clone());
                    keep.extend(im.layers.iter().map(|l| l.digest.clone()));
                }
            }
            let mut freed = 0;
            for dir in [self.root.join("blobs/sha256"), self.root.join("tmp")] {
                for entry in fs::read_dir(&dir).map_err(self.io(&dir))?.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let is_tmp = dir.ends_with("tmp");
                    if is_tmp || !keep.contains(format!("sha256:{name}").as_str()) {
                        freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
            Ok(freed)
        })
    }
}

/// An image in the store, read like a bundle.
#[derive(Debug)]
pub struct StoredImage {
    store: Store,
    head: ImageHead,
}

impl ImageSource for StoredImage {
    fn head(&self) -> &ImageHead {
        &self.head
    }

    fn files(&self) -> Vec<PathBuf> {
        let image = &self.head.manifest;
        std::iter::once(&image.config)
            .chain(&image.layers)
            .filter_map(|d| self.store.blob_path(&d.digest).ok())
            .collect()
    }

    fn copy_blob(&self, desc: &Descriptor, out: &mut dyn Write) -> Result<(), BundleError> {
        let damaged = |reason: String| BundleError::Format {
            path: self.store.root.clone(),
            reason,
        };
        let path = self
            .store
            .blob_path(&desc.digest)
            .map_err(|e| damaged(e.to_string()))?;
        let file = File::open(&path).map_err(|_| damaged(format!("blob `{}` is missing from the local store; run `qyvol prune` and pull or build again", desc.digest)))?;
        copy_verified(file, desc, out, &path).map_err(|e| match e {
            BundleError::Digest { digest, .. } => damaged(format!("blob `{digest}` in the local store is damaged (it does not match its digest); remove it with `qyvol rmi` and `qyvol prune`, then pull or build again")),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_dockers_grammar_and_defaults() {
        let r = parse_reference("localhost:5000/hello:1").expect("valid");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("localhost:5000", "hello", Some("1"))
        );
        assert_eq!(
            canonical(&parse_reference("hello").expect("valid")),
            "docker.io/library/hello:latest"
        );
        let pinned = parse_reference("ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").expect("valid");
        assert!(pinned.digest().is_some());
        for bad in [
            "",
            "Hello:1",
            "a b",
            "x\u{1b}[2J",
            "localhost:5000/UPPER:1",
            "a//b",
        ] {
            assert!(parse_reference(bad).is_err(), "{bad:?}");
        }
    }
}
