//! Seals: how a stored file proves it is whole and unchanged (length, checksum, identity),
//! and atomic writes that readers see whole or not at all.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Seal {
    pub(super) len: u64,
    pub(super) xxh3: String,
    /// Identity of the artifact file when sealed. Seals from before it carried a ctime do not
    /// parse, so their entry is compiled again and sealed anew.
    pub(super) id: FileId,
}

impl Seal {
    pub(super) fn new(len: u64, hash: u64, id: FileId) -> Self {
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
pub(super) struct FileId {
    pub(super) len: u64,
    pub(super) mtime_ns: i128,
    /// Set by the kernel to now on every change, including a reset of the mtime.
    pub(super) ctime_ns: i128,
    pub(super) ino: u64,
}

impl FileId {
    #[cfg(unix)]
    pub(super) fn of(meta: &fs::Metadata) -> Self {
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
    pub(super) fn of(meta: &fs::Metadata) -> Self {
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

    pub(super) fn of_path(path: &Path) -> io::Result<Self> {
        fs::metadata(path).map(|m| Self::of(&m))
    }
}

/// A small file of the cache's own (seal, stamp, inspection), if it is a regular file.
pub(super) fn read_small(path: &Path) -> Option<Vec<u8>> {
    read_small_with_meta(path).map(|(bytes, _)| bytes)
}

pub(super) fn read_small_with_meta(path: &Path) -> Option<(Vec<u8>, fs::Metadata)> {
    let (file, meta) = qyvol_common::open_regular(path).ok()?;
    let mut bytes = Vec::new();
    // Seals and stamps are well under a megabyte; a bigger file is not one of ours.
    file.take(1 << 20).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == meta.len()).then_some((bytes, meta))
}

/// The largest write to a cache file. Linux (ext4 and others with large folios) keeps a file
/// written in big pieces in page-cache folios as big as each write, up to 2 MiB, and a process
/// that maps the file then maps a whole folio on each page it touches. Compiled code is mapped
/// by every run: written in 64 KiB pieces (the kernel's fault-around window) a run maps about
/// what it executes. A warm yosys run peaked at 120 MiB, 98 MiB of it code it never touched;
/// its code written in pieces, 48 MiB (bench/results.md at 4ad9960).
pub(super) const PIECE: usize = 64 * 1024;

/// A writer that seals what passes through it.
pub(super) struct Sealing<W: Write> {
    pub(super) inner: W,
    pub(super) hasher: xxhash_rust::xxh3::Xxh3,
    pub(super) len: u64,
}

impl<W: Write> Write for Sealing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(&buf[..buf.len().min(PIECE)])?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Length and xxh3 of the file at `path`, read through.
pub(super) fn checksum(path: &Path) -> io::Result<(u64, u64)> {
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
    for piece in bytes.chunks(PIECE) {
        tmp.write_all(piece)?;
    }
    // No fsync: after a crash a short or empty artifact fails its seal and is recompiled.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
