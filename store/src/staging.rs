//! Blobs on their way into the store from a stream (a registry, a layer being unpacked): written
//! to `tmp/` as they arrive and hashed on the way, so memory stays bounded whatever their size;
//! renamed into `blobs/` only once the whole image checked out. A staged blob that is dropped
//! instead removes its temp file.

use std::io::{self, BufWriter, Write};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::{Store, StoreError};

/// A blob being written: refuses to grow past `limit` bytes.
pub(crate) struct Staging {
    file: BufWriter<NamedTempFile>,
    hasher: Sha256,
    written: u64,
    limit: u64,
}

/// A complete blob in `tmp/`, with the digest and size of what was written.
#[derive(Debug)]
pub(crate) struct Staged {
    file: NamedTempFile,
    pub digest: qyvol_common::Digest,
    pub size: u64,
}

impl Write for Staging {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.written + data.len() as u64 > self.limit {
            return Err(io::Error::other(format!(
                "a blob grew past its {} bytes",
                self.limit
            )));
        }
        let n = self.file.write(data)?;
        self.hasher.update(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Staging {
    /// Flushes and syncs the file; the digest is over every byte written.
    pub(crate) fn finish(self) -> io::Result<Staged> {
        let file = self
            .file
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.as_file().sync_data()?;
        Ok(Staged {
            file,
            digest: qyvol_common::Digest::from_hasher(self.hasher),
            size: self.written,
        })
    }
}

impl Staged {
    /// Reads the staged bytes from the start.
    pub(crate) fn open(&self) -> io::Result<std::fs::File> {
        self.file.reopen()
    }
}

impl Store {
    /// A new blob in `tmp/`, at most `limit` bytes.
    pub(crate) fn stage(&self, limit: u64) -> Result<Staging, StoreError> {
        let dir = self.root().join("tmp");
        let file = NamedTempFile::new_in(&dir).map_err(self.io(&dir))?;
        Ok(Staging {
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            written: 0,
            limit,
        })
    }

    /// Moves a staged blob into `blobs/` under its digest (a blob already there is kept).
    pub(crate) fn commit(&self, staged: Staged) -> Result<(), StoreError> {
        let dest = self.blob_path(&staged.digest)?;
        if dest.exists() {
            return Ok(());
        }
        self.persist(staged.file, &dest)
    }
}
