//! What the cache remembers besides code: which layers `qyvol build` wrote, which images were
//! verified, and each wasm file's identity with its inspection.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use qyvol_common::Digest;

use super::seal::{FileId, read_small, write_atomic};
use super::{BUILT, Cache, PathStamp, VERIFIED, kind_name};
use crate::inspect::{ModuleInfo, WasmKind};

impl Cache {
    /// Records that the precompiled layer `layer` is Qyvol's compilation of the wasm with
    /// sha256 `wasm`, for the engine `fingerprint` (called by `qyvol build` for the code it packs).
    pub fn record_built(
        &self,
        layer: &Digest,
        wasm: &str,
        fingerprint: &str,
        kind: WasmKind,
    ) -> io::Result<()> {
        let record = built_record(wasm, fingerprint, kind);
        write_atomic(&self.dir.join(BUILT).join(layer.hex()), record.as_bytes())
    }

    /// Whether this cache's `qyvol build` wrote the layer `layer` from the wasm `wasm` for the
    /// engine `fingerprint`: a layer built here but relabelled for another engine is not.
    pub fn built(&self, layer: &Digest, wasm: &str, fingerprint: &str, kind: WasmKind) -> bool {
        let path = self.dir.join(BUILT).join(layer.hex());
        fs::read(path).is_ok_and(|r| r == built_record(wasm, fingerprint, kind).as_bytes())
    }

    /// Whether every file of an image (`files`, e.g. the bundle) is as it was when all its
    /// blobs were last checked against their digests.
    pub fn verified(&self, image: &Digest, files: &[PathBuf]) -> bool {
        if files.is_empty() {
            return false;
        }
        let Ok(bytes) = fs::read(self.verified_path(image)) else {
            return false;
        };
        let Ok(stamps) = serde_json::from_slice::<Vec<(PathBuf, FileId)>>(&bytes) else {
            return false;
        };
        stamps.len() == files.len()
            && stamps
                .iter()
                .zip(files)
                .all(|((p, id), f)| p == f && fs::metadata(f).is_ok_and(|m| FileId::of(&m) == *id))
    }

    /// Remembers that every blob of `image` was checked, with its files' identity now.
    pub fn record_verified(&self, image: &Digest, files: &[PathBuf]) {
        let stamps: Vec<_> = files
            .iter()
            .filter_map(|f| fs::metadata(f).ok().map(|m| (f.clone(), FileId::of(&m))))
            .collect();
        if stamps.len() == files.len()
            && let Ok(bytes) = serde_json::to_vec(&stamps)
        {
            let _ = write_atomic(&self.verified_path(image), &bytes);
        }
    }

    fn verified_path(&self, image: &Digest) -> PathBuf {
        self.dir
            .join(VERIFIED)
            .join(format!("{}.json", Digest::of(image.as_bytes()).hex()))
    }

    fn stamp_path(&self, path: &Path) -> PathBuf {
        use sha2::Digest;
        let key = hex::encode(sha2::Sha256::digest(path.as_os_str().as_encoded_bytes()));
        self.dir.join("paths").join(format!("{key}.json"))
    }

    /// What was recorded for the wasm file at `path` if it has not changed since.
    pub(crate) fn stamp_get(&self, path: &Path, meta: &fs::Metadata) -> Option<ModuleInfo> {
        let stamp: PathStamp = serde_json::from_slice(&read_small(&self.stamp_path(path))?).ok()?;
        (stamp.path == path && stamp.id == FileId::of(meta)).then_some(stamp.info)
    }

    pub(crate) fn stamp_put(&self, path: &Path, meta: &fs::Metadata, info: &ModuleInfo) {
        let stamp = PathStamp {
            path: path.to_path_buf(),
            id: FileId::of(meta),
            info: info.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&stamp) {
            let _ = write_atomic(&self.stamp_path(path), &bytes);
        }
    }

    /// The inspection of a module known by its sha256 (e.g. a bundle's wasm layer).
    pub fn info_get(&self, digest: &str) -> Option<ModuleInfo> {
        let info: ModuleInfo = serde_json::from_slice(&read_small(
            &self.dir.join("info").join(format!("{digest}.json")),
        )?)
        .ok()?;
        (info.sha256 == digest).then_some(info)
    }

    pub fn info_put(&self, info: &ModuleInfo) {
        if let Ok(bytes) = serde_json::to_vec(info) {
            let _ = write_atomic(
                &self.dir.join("info").join(format!("{}.json", info.sha256)),
                &bytes,
            );
        }
    }
}

fn built_record(wasm: &str, fingerprint: &str, kind: WasmKind) -> String {
    format!("{wasm} {fingerprint} {}", kind_name(kind))
}
