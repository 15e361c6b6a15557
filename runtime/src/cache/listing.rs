//! Listing, clearing and evicting the cache's entries (least recently used first, past the
//! size limit), and sweeping writes that never finished.

use std::fs;
use std::io;
use std::time::SystemTime;

use super::locks::upgrading;
use super::{COMPILED, Cache, CacheEntry, IMPORTED, OLD_CODE, VERIFIED, kind_name};
use crate::engine::Tier;
use crate::inspect::WasmKind;

impl Cache {
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
                    upgrading: tier == Tier::Winch && upgrading(self, &fingerprint, sha256, kind),
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

    pub(super) fn evict(&self) {
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
    pub(super) fn sweep_abandoned(&self) {
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
