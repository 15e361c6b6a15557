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

mod listing;
mod locks;
mod records;
mod seal;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use qyvol_common::Digest;

use crate::engine::Tier;
use crate::inspect::{ModuleInfo, WasmKind};
pub(crate) use locks::{lock_path, open_lock, upgrading};
pub(crate) use seal::write_atomic;
use seal::{FileId, Seal, Sealing, checksum, read_small_with_meta};

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

pub(crate) fn kind_name(kind: WasmKind) -> &'static str {
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
}
