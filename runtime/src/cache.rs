//! The compile cache: native code for a module, keyed by the sha256 of its wasm bytes and the
//! engine's fingerprint, so a module is compiled once per host and configuration and later
//! runs map the stored code instead.
//!
//! Layout under the cache folder:
//! - `code/<fingerprint>/<sha256>.<kind>.cwasm` — wasmtime's precompiled artifact, as
//!   `wasmtime compile` would write it;
//! - `code/<fingerprint>/<sha256>.<kind>.seal` — its length, xxh3 checksum and file identity
//!   (mtime, inode), written after it; its own modification time is the entry's last use (for
//!   LRU eviction);
//! - `paths/<sha256 of the path>.json` — the last seen size, mtime and inode of a wasm file
//!   with its digest and inspection, so a warm run does not read or hash the wasm at all.
//!
//! Every write is a temp file renamed into place, so readers see whole files or none, and two
//! processes storing the same entry both succeed. A truncated, corrupted or foreign artifact
//! fails its seal (or wasmtime's own header checks) and is recompiled, never executed.
//!
//! Checking a seal costs a `stat` when the artifact's size, mtime and inode are the ones sealed
//! (no write has touched it since, so a hit on a 100 MB artifact maps it without reading it);
//! otherwise the whole file is hashed and must match the sealed checksum.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::inspect::{ModuleInfo, WasmKind};

/// The default cap on the cache's size; the least recently used entries go first.
pub const DEFAULT_CACHE_MAX: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Seal {
    len: u64,
    xxh3: String,
    /// Identity of the artifact file when sealed: (mtime in ns, inode).
    #[serde(default)]
    id: Option<(u128, u64)>,
}

impl Seal {
    fn of(bytes_len: u64, hash: u64) -> Self {
        Self {
            len: bytes_len,
            xxh3: format!("{hash:016x}"),
            id: None,
        }
    }

    fn same_content(&self, other: &Seal) -> bool {
        self.len == other.len && self.xxh3 == other.xxh3
    }

    /// Records the identity of the file the seal was computed for.
    fn identify(mut self, path: &Path) -> Self {
        self.id = fs::metadata(path).ok().map(|m| {
            let (_, mtime, ino) = file_id(&m);
            (mtime, ino)
        });
        self
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct PathStamp {
    path: PathBuf,
    len: u64,
    mtime_ns: u128,
    ino: u64,
    info: ModuleInfo,
}

/// One stored artifact, for `qyvol cache ls`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    pub sha256: String,
    pub kind: String,
    pub fingerprint: String,
    pub size: u64,
    #[serde(skip)]
    pub last_used: SystemTime,
}

fn kind_name(kind: WasmKind) -> &'static str {
    match kind {
        WasmKind::CoreModule => "module",
        WasmKind::Component => "component",
    }
}

impl Cache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn code_path(&self, fingerprint: &str, digest: &str, kind: WasmKind) -> PathBuf {
        self.dir
            .join("code")
            .join(fingerprint)
            .join(format!("{digest}.{}.cwasm", kind_name(kind)))
    }

    /// The artifact for this key, if present and intact; a damaged one is removed.
    pub(crate) fn get(&self, fingerprint: &str, digest: &str, kind: WasmKind) -> Option<PathBuf> {
        let code = self.code_path(fingerprint, digest, kind);
        let seal_path = code.with_extension("seal");
        let seal: Seal = serde_json::from_slice(&fs::read(&seal_path).ok()?).ok()?;
        let meta = fs::metadata(&code).ok()?;
        let (len, mtime, ino) = file_id(&meta);
        let untouched = len == seal.len && seal.id == Some((mtime, ino));
        let verdict = if untouched {
            Ok(true)
        } else {
            checksum(&code).map(|actual| actual.same_content(&seal))
        };
        match verdict {
            Ok(true) => {
                // Last use, for eviction; failing to record it is harmless.
                let _ = fs::File::options()
                    .write(true)
                    .open(&seal_path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Some(code)
            }
            Ok(false) => {
                tracing::warn!(path = %code.display(), "cache entry failed its seal; recompiling");
                self.remove(&code);
                None
            }
            Err(_) => None,
        }
    }

    /// Stores `code` for this key and evicts old entries past the size cap.
    pub(crate) fn put(
        &self,
        fingerprint: &str,
        digest: &str,
        kind: WasmKind,
        code: &[u8],
    ) -> io::Result<PathBuf> {
        let path = self.code_path(fingerprint, digest, kind);
        write_atomic(&path, code)?;
        let seal = Seal::of(code.len() as u64, xxhash_rust::xxh3::xxh3_64(code)).identify(&path);
        write_atomic(
            &path.with_extension("seal"),
            &serde_json::to_vec(&seal).map_err(io::Error::other)?,
        )?;
        self.evict();
        Ok(path)
    }

    /// Stores code written by `fill` (e.g. streamed from a bundle and verified there) under
    /// this key. `fill` returning an error leaves nothing behind.
    pub fn import(
        &self,
        fingerprint: &str,
        digest: &str,
        kind: WasmKind,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let path = self.code_path(fingerprint, digest, kind);
        let dir = path.parent().unwrap_or(Path::new("."));
        qyvol_common::create_private_dir(dir)?;
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut writer = Sealing {
            inner: io::BufWriter::new(tmp.as_file()),
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            len: 0,
        };
        fill(&mut writer)?;
        writer.inner.flush()?;
        let seal = Seal::of(writer.len, writer.hasher.digest());
        drop(writer);
        tmp.persist(&path).map_err(|e| e.error)?;
        let seal = seal.identify(&path);
        write_atomic(
            &path.with_extension("seal"),
            &serde_json::to_vec(&seal).map_err(io::Error::other)?,
        )?;
        self.evict();
        Ok(())
    }

    /// Whether an intact entry exists for this key.
    pub fn contains(&self, fingerprint: &str, digest: &str, kind: WasmKind) -> bool {
        self.get(fingerprint, digest, kind).is_some()
    }

    /// Removes an entry that wasmtime refused (foreign or from another engine build).
    pub(crate) fn remove(&self, code: &Path) {
        let _ = fs::remove_file(code.with_extension("seal"));
        let _ = fs::remove_file(code);
    }

    fn stamp_path(&self, path: &Path) -> PathBuf {
        use sha2::Digest;
        let key = hex::encode(sha2::Sha256::digest(path.as_os_str().as_encoded_bytes()));
        self.dir.join("paths").join(format!("{key}.json"))
    }

    /// What was recorded for the wasm file at `path` if it has not changed since.
    pub(crate) fn stamp_get(&self, path: &Path, meta: &fs::Metadata) -> Option<ModuleInfo> {
        let stamp: PathStamp =
            serde_json::from_slice(&fs::read(self.stamp_path(path)).ok()?).ok()?;
        let (len, mtime_ns, ino) = file_id(meta);
        (stamp.path == path && stamp.len == len && stamp.mtime_ns == mtime_ns && stamp.ino == ino)
            .then_some(stamp.info)
    }

    pub(crate) fn stamp_put(&self, path: &Path, meta: &fs::Metadata, info: &ModuleInfo) {
        let (len, mtime_ns, ino) = file_id(meta);
        let stamp = PathStamp {
            path: path.to_path_buf(),
            len,
            mtime_ns,
            ino,
            info: info.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&stamp) {
            let _ = write_atomic(&self.stamp_path(path), &bytes);
        }
    }

    /// The inspection of a module known by its sha256 (e.g. a bundle's wasm layer).
    pub fn info_get(&self, digest: &str) -> Option<ModuleInfo> {
        let info: ModuleInfo = serde_json::from_slice(
            &fs::read(self.dir.join("info").join(format!("{digest}.json"))).ok()?,
        )
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

    /// Every stored artifact, most recently used first.
    pub fn entries(&self) -> io::Result<Vec<CacheEntry>> {
        let mut out = Vec::new();
        let code = self.dir.join("code");
        let fingerprints = match fs::read_dir(&code) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for fp in fingerprints {
            let fp = fp?;
            for file in fs::read_dir(fp.path())? {
                let path = file?.path();
                if path.extension().is_none_or(|e| e != "cwasm") {
                    continue;
                }
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                let (sha256, kind) = name.split_once('.').unwrap_or((name, ""));
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let last_used = fs::metadata(path.with_extension("seal"))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(CacheEntry {
                    sha256: sha256.into(),
                    kind: kind.into(),
                    fingerprint: fp.file_name().to_string_lossy().into(),
                    size,
                    last_used,
                });
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.last_used));
        Ok(out)
    }

    /// Removes everything; returns the bytes freed.
    pub fn clear(&self) -> io::Result<u64> {
        let freed = self.entries()?.iter().map(|e| e.size).sum();
        for sub in ["code", "paths", "info"] {
            match fs::remove_dir_all(self.dir.join(sub)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(freed)
    }

    fn evict(&self) {
        let Ok(entries) = self.entries() else { return };
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        for e in entries.iter().rev() {
            if total <= self.max_bytes {
                break;
            }
            let code = self.code_path(
                &e.fingerprint,
                &e.sha256,
                if e.kind == "component" {
                    WasmKind::Component
                } else {
                    WasmKind::CoreModule
                },
            );
            self.remove(&code);
            total = total.saturating_sub(e.size);
        }
    }
}

/// A writer that seals what passes through it.
struct Sealing<W: Write> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
    len: u64,
}

impl<W: Write> Write for Sealing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn file_id(meta: &fs::Metadata) -> (u64, u128, u64) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0;
    (meta.len(), mtime, ino)
}

fn checksum(path: &Path) -> io::Result<Seal> {
    let mut file = fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok(Seal::of(len, hasher.digest()))
}

/// Writes `bytes` to a temp file beside `path` and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    qyvol_common::create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    // No fsync: after a crash a short or empty artifact fails its seal and is recompiled.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
