//! The compile cache: native code for a module, keyed by the sha256 of its wasm bytes and the
//! engine's fingerprint, so a module is compiled once per host and configuration and later
//! runs map the stored code instead.
//!
//! Layout under the cache folder:
//! - `compiled/<fingerprint>/<sha256>.<kind>.cwasm` — code Qyvol compiled itself from the wasm
//!   whose sha256 names it (wasmtime's artifact, as `wasmtime compile` would write it); nothing
//!   else is ever stored under a wasm's digest, so a lookup by digest only finds Qyvol's code;
//! - `compiled/<fingerprint>/<sha256>.<kind>.winch.cwasm` — Winch's code for that wasm, kept
//!   until Cranelift's replaces it (the tiers have different fingerprints: one engine never
//!   maps the other's code);
//! - `compiled/<fingerprint>/<sha256>.<kind>.seal` — its length, xxh3 checksum and file
//!   identity (mtime, ctime, inode), written after it; its own modification time is the entry's last
//!   use (for LRU eviction);
//! - `imported/<fingerprint>/<layer sha256>.<kind>.cwasm` (+ `.seal`) — a bundle's or image's
//!   precompiled code the operator allowed (`--allow-precompiled`), keyed by the digest of that
//!   code, never by the wasm's;
//! - `built/<layer sha256>` — the sha256 of the wasm a precompiled layer `qyvol build` wrote was
//!   compiled from: a bundle carrying that exact layer with that wasm carries Qyvol's own code;
//! - `verified/<sha256 of the image digest>.json` — the identity of the files of a bundle or
//!   image whose every blob was checked against its digest, so it is checked once, not per run;
//! - `paths/<sha256 of the path>.json` — the last seen size and identity of a wasm file with
//!   its digest and inspection, so a warm run does not read or hash the wasm at all.
//!
//! Every write is a temp file renamed into place, so readers see whole files or none, and two
//! processes storing the same entry both succeed. A truncated, corrupted or foreign artifact
//! fails its seal (or wasmtime's own header checks) and is recompiled, never executed.
//!
//! Checking a seal costs a `stat` when the artifact's size, mtime, ctime and inode are the ones
//! sealed (no write has touched it since, so a hit on a 100 MB artifact maps it without reading
//! it); otherwise the whole file is hashed and must match the sealed checksum. The ctime is what
//! makes this hold: anyone can set an mtime back (`touch -d`, `File::set_modified`), but the
//! kernel moves the ctime to now on every write and every such reset.
//!
//! What is not an entry (a file where a folder belongs, a name that is not `<sha256>.<kind>`,
//! a name that is not UTF-8) is skipped by listing and eviction and removed by `clear`. Folders
//! are created with mode 0700; `QYVOL_HOME` itself is checked by `qyvol_common::Home::open`.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use qyvol_common::Digest;

use crate::engine::Tier;
use crate::inspect::{ModuleInfo, WasmKind};

/// Code Qyvol compiled, by wasm digest (`code/` before the trust boundary was drawn held
/// imported code too, and is never read: `cache clear` removes it).
const COMPILED: &str = "compiled";
const IMPORTED: &str = "imported";
const BUILT: &str = "built";
const VERIFIED: &str = "verified";
const OLD_CODE: &str = "code";

/// How stale an entry's last-use time may get before a hit records it again: eviction order
/// needs minutes, not every run's write.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

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
    /// Identity of the artifact file when sealed. Seals from before it carried a ctime do not
    /// parse, so their entry is compiled again and sealed anew.
    id: FileId,
}

impl Seal {
    fn new(len: u64, hash: u64, id: FileId) -> Self {
        Self {
            len,
            xxh3: format!("{hash:016x}"),
            id,
        }
    }
}

/// What changes when a file is written, replaced or has its times reset: a file with the same
/// identity as when it was recorded has not been written since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct FileId {
    len: u64,
    mtime_ns: i128,
    /// Set by the kernel to now on every change, including a reset of the mtime.
    ctime_ns: i128,
    ino: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(meta: &fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            len: meta.len(),
            mtime_ns,
            ctime_ns: 0,
            ino: 0,
        }
    }

    fn of_path(path: &Path) -> io::Result<Self> {
        fs::metadata(path).map(|m| Self::of(&m))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct PathStamp {
    path: PathBuf,
    id: FileId,
    info: ModuleInfo,
}

/// One stored artifact, for `qyvol cache ls`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    pub sha256: String,
    pub kind: String,
    pub fingerprint: String,
    /// The compiler the code came from (`cranelift`, or `winch` for a first run's code).
    pub tier: Tier,
    /// Whether Cranelift is compiling this module in the background right now (Winch's
    /// entries only).
    pub upgrading: bool,
    /// `compiled` (Qyvol's own code) or `imported` (a bundle's code the operator allowed).
    pub origin: &'static str,
    pub size: u64,
    #[serde(skip)]
    pub last_used: SystemTime,
    #[serde(skip)]
    path: PathBuf,
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

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn code_path(&self, fingerprint: &str, digest: &str, kind: WasmKind, tier: Tier) -> PathBuf {
        let tier = match tier {
            Tier::Cranelift => "",
            Tier::Winch => ".winch",
        };
        self.dir
            .join(COMPILED)
            .join(fingerprint)
            .join(format!("{digest}.{}{tier}.cwasm", kind_name(kind)))
    }

    fn imported_path(&self, fingerprint: &str, layer: &Digest, kind: WasmKind) -> PathBuf {
        self.dir.join(IMPORTED).join(fingerprint).join(format!(
            "{}.{}.cwasm",
            layer.hex(),
            kind_name(kind)
        ))
    }

    /// Code Qyvol compiled from the wasm with this sha256, if present and intact; a damaged
    /// artifact is removed.
    pub(crate) fn get(
        &self,
        fingerprint: &str,
        digest: &str,
        kind: WasmKind,
        tier: Tier,
    ) -> Option<PathBuf> {
        self.sealed(self.code_path(fingerprint, digest, kind, tier))
    }

    /// The artifact at `code` if its seal holds; a damaged one is removed.
    fn sealed(&self, code: PathBuf) -> Option<PathBuf> {
        let seal_path = code.with_extension("seal");
        let (bytes, seal_meta) = read_small_with_meta(&seal_path)?;
        let seal: Seal = serde_json::from_slice(&bytes).ok()?;
        let meta = fs::metadata(&code).ok()?;
        let verdict = if FileId::of(&meta) == seal.id {
            Ok(true)
        } else if !meta.is_file() {
            Ok(false)
        } else {
            checksum(&code)
                .map(|(len, hash)| len == seal.len && format!("{hash:016x}") == seal.xxh3)
        };
        match verdict {
            Ok(true) => {
                // Last use, for eviction, at most once a minute (a warm run writes nothing);
                // failing to record it is harmless.
                let stale = seal_meta
                    .modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age > TOUCH_EVERY);
                if stale {
                    let _ = fs::File::options()
                        .write(true)
                        .open(&seal_path)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                }
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
        tier: Tier,
        code: &[u8],
    ) -> io::Result<PathBuf> {
        let path = self.code_path(fingerprint, digest, kind, tier);
        write_atomic(&path, code)?;
        // The identity after the rename, which sets the ctime.
        let seal = Seal::new(
            code.len() as u64,
            xxhash_rust::xxh3::xxh3_64(code),
            FileId::of_path(&path)?,
        );
        write_atomic(
            &path.with_extension("seal"),
            &serde_json::to_vec(&seal).map_err(io::Error::other)?,
        )?;
        self.evict();
        Ok(path)
    }

    /// A bundle's or image's precompiled code (the layer with digest `layer`) that the
    /// operator allowed, stored apart from Qyvol's own code: present and intact, or `None`.
    pub fn imported_get(
        &self,
        fingerprint: &str,
        layer: &Digest,
        kind: WasmKind,
    ) -> Option<PathBuf> {
        self.sealed(self.imported_path(fingerprint, layer, kind))
    }

    /// Stores precompiled code written by `fill` (streamed from a bundle and verified there
    /// against `layer`) among imported code; returns where. `fill` failing leaves nothing.
    pub fn import(
        &self,
        fingerprint: &str,
        layer: &Digest,
        kind: WasmKind,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let path = self.imported_path(fingerprint, layer, kind);
        self.write_sealed(&path, fill)?;
        Ok(path)
    }

    /// Stores a precompiled layer that [`Cache::built`] says is Qyvol's own compilation of the
    /// wasm with sha256 `wasm` under that wasm's digest, as if compiled now. `fill` failing
    /// leaves nothing.
    pub fn import_built(
        &self,
        fingerprint: &str,
        wasm: &str,
        kind: WasmKind,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        self.write_sealed(
            &self.code_path(fingerprint, wasm, kind, Tier::Cranelift),
            fill,
        )
    }

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

    /// Writes what `fill` produces to `path` with its seal; `fill` failing leaves nothing.
    fn write_sealed(
        &self,
        path: &Path,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let path = path.to_path_buf();
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
        let (len, hash) = (writer.len, writer.hasher.digest());
        drop(writer);
        tmp.persist(&path).map_err(|e| e.error)?;
        let seal = Seal::new(len, hash, FileId::of_path(&path)?);
        write_atomic(
            &path.with_extension("seal"),
            &serde_json::to_vec(&seal).map_err(io::Error::other)?,
        )?;
        self.evict();
        Ok(())
    }

    /// Whether Qyvol's own Cranelift code for this wasm and engine is in the cache, intact.
    pub fn contains(&self, fingerprint: &str, digest: &str, kind: WasmKind) -> bool {
        self.get(fingerprint, digest, kind, Tier::Cranelift)
            .is_some()
    }

    /// Winch's code for this wasm, replaced by Cranelift's (removed, if it is there).
    pub(crate) fn remove_tier(&self, fingerprint: &str, digest: &str, kind: WasmKind, tier: Tier) {
        self.remove(&self.code_path(fingerprint, digest, kind, tier));
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

    /// Every stored artifact, most recently used first. Whatever is not an entry is skipped.
    pub fn entries(&self) -> io::Result<Vec<CacheEntry>> {
        let mut out = Vec::new();
        for namespace in [COMPILED, IMPORTED] {
            self.entries_in(namespace, &mut out)?;
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.last_used));
        Ok(out)
    }

    fn entries_in(&self, namespace: &'static str, out: &mut Vec<CacheEntry>) -> io::Result<()> {
        let code = self.dir.join(namespace);
        let fingerprints = match fs::read_dir(&code) {
            Ok(d) => d,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for fp in fingerprints {
            let fp = fp?;
            let Some(fingerprint) = fp
                .file_name()
                .to_str()
                .filter(|n| is_hex(n, 24))
                .map(String::from)
            else {
                continue;
            };
            if !fp.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for file in fs::read_dir(fp.path())? {
                let file = file?;
                let name = file.file_name();
                let Some((sha256, kind, tier)) = name.to_str().and_then(parse_artifact_name) else {
                    continue;
                };
                let Some(meta) = file.metadata().ok().filter(fs::Metadata::is_file) else {
                    continue;
                };
                let last_used = fs::metadata(file.path().with_extension("seal"))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(CacheEntry {
                    upgrading: tier == Tier::Winch
                        && crate::tier::upgrading(self, &fingerprint, sha256, kind),
                    sha256: sha256.into(),
                    kind: kind_name(kind).into(),
                    fingerprint: fingerprint.clone(),
                    tier,
                    origin: namespace,
                    size: meta.len(),
                    last_used,
                    path: file.path(),
                });
            }
        }
        Ok(())
    }

    /// Removes every artifact and record, stray files included; returns the bytes of code
    /// freed. The records of what `qyvol build` produced stay: they are not a cache of anything,
    /// and a bundle built here should still start without compiling after a clear.
    pub fn clear(&self) -> io::Result<u64> {
        let freed = self.entries()?.iter().map(|e| e.size).sum();
        for sub in [COMPILED, IMPORTED, VERIFIED, OLD_CODE, "paths", "info"] {
            let path = self.dir.join(sub);
            let removed = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(e) => Err(e),
            };
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(freed)
    }

    fn evict(&self) {
        self.sweep_abandoned();
        let Ok(entries) = self.entries() else { return };
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        for e in entries.iter().rev() {
            if total <= self.max_bytes {
                break;
            }
            self.remove(&e.path);
            total = total.saturating_sub(e.size);
        }
    }
}

impl Cache {
    /// Removes the temp files of writes that never finished (a process killed between writing
    /// an artifact and renaming it into place): an hour old, no writer is coming back for them.
    fn sweep_abandoned(&self) {
        for namespace in [COMPILED, IMPORTED] {
            let Ok(folders) = fs::read_dir(self.dir.join(namespace)) else {
                continue;
            };
            for folder in folders.flatten() {
                let Ok(files) = fs::read_dir(folder.path()) else {
                    continue;
                };
                for file in files.flatten() {
                    let abandoned = file.file_name().as_encoded_bytes().starts_with(b".tmp")
                        && file
                            .metadata()
                            .ok()
                            .filter(fs::Metadata::is_file)
                            .and_then(|m| m.modified().ok())
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|age| age > ABANDONED);
                    if abandoned {
                        let _ = fs::remove_file(file.path());
                    }
                }
            }
        }
    }
}

/// How old a temp file in the cache must be to count as left by a killed writer.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(3600);

/// `<sha256>.<kind>[.winch].cwasm` → (sha256, kind, tier); anything else is not an artifact.
fn parse_artifact_name(name: &str) -> Option<(&str, WasmKind, Tier)> {
    let (sha256, rest) = name.split_once('.')?;
    let (kind, tier) = match rest {
        "module.cwasm" => (WasmKind::CoreModule, Tier::Cranelift),
        "component.cwasm" => (WasmKind::Component, Tier::Cranelift),
        "module.winch.cwasm" => (WasmKind::CoreModule, Tier::Winch),
        "component.winch.cwasm" => (WasmKind::Component, Tier::Winch),
        _ => return None,
    };
    is_hex(sha256, 64).then_some((sha256, kind, tier))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A small file of the cache's own (seal, stamp, inspection), if it is a regular file.
fn read_small(path: &Path) -> Option<Vec<u8>> {
    read_small_with_meta(path).map(|(bytes, _)| bytes)
}

fn read_small_with_meta(path: &Path) -> Option<(Vec<u8>, fs::Metadata)> {
    let (file, meta) = qyvol_common::open_regular(path).ok()?;
    let mut bytes = Vec::new();
    // Seals and stamps are well under a megabyte; a bigger file is not one of ours.
    file.take(1 << 20).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == meta.len()).then_some((bytes, meta))
}

fn built_record(wasm: &str, fingerprint: &str, kind: WasmKind) -> String {
    format!("{wasm} {fingerprint} {}", kind_name(kind))
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

/// Length and xxh3 of the file at `path`, read through.
fn checksum(path: &Path) -> io::Result<(u64, u64)> {
    let (mut file, _) = qyvol_common::open_regular(path).map_err(io::Error::other)?;
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
    Ok((len, hasher.digest()))
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
