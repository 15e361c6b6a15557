//! Opening the files a user names (FILE, a manifest's entrypoint, a bundle) so that only a
//! regular file is ever read. A FIFO blocks `open` until a writer comes and `read` until it
//! writes, a device such as `/dev/zero` never ends, and a folder fails far from its cause; each
//! is refused at once, naming what it is.
//!
//! The path is checked with `stat` first, so a device is never opened (opening one can have
//! effects); then it is opened with `O_NONBLOCK | O_NOCTTY` and the handle checked with `fstat`,
//! so a file swapped for a FIFO or a device between the two cannot block or take the terminal.
//! `O_NONBLOCK` does not change reads of regular files.

use std::fmt;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// What a path that is not a regular file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFile {
    Folder,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    /// Anything else that is not a regular file.
    Other,
}

impl SpecialFile {
    fn of(meta: &Metadata) -> Option<Self> {
        let ty = meta.file_type();
        if ty.is_file() {
            return None;
        }
        if ty.is_dir() {
            return Some(Self::Folder);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if ty.is_fifo() {
                return Some(Self::Fifo);
            }
            if ty.is_char_device() {
                return Some(Self::CharDevice);
            }
            if ty.is_block_device() {
                return Some(Self::BlockDevice);
            }
            if ty.is_socket() {
                return Some(Self::Socket);
            }
        }
        Some(Self::Other)
    }
}

impl fmt::Display for SpecialFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Folder => "a folder",
            Self::Fifo => "a FIFO",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Socket => "a socket",
            Self::Other => "not a regular file",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot open `{path}`: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("`{path}` is {kind}, not a file")]
    NotAFile { path: PathBuf, kind: SpecialFile },
}

impl FileError {
    /// Whether the path does not exist (as opposed to existing as something unreadable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed), with its metadata.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), FileError> {
    let open_err = |source| FileError::Open {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |meta: &Metadata| match SpecialFile::of(meta) {
        Some(kind) => Err(FileError::NotAFile {
            path: path.to_path_buf(),
            kind,
        }),
        None => Ok(()),
    };
    refuse(&std::fs::metadata(path).map_err(open_err)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    refuse(&meta)?;
    Ok((file, meta))
}

/// Reads the regular file at `path` whole, refusing one larger than `cap` bytes. A FIFO or
/// device is refused before it is opened, so the read cannot block on one. Errors keep the
/// kind of the underlying failure (`NotFound` for a missing file) and name the path.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, _) = open_regular(path).map_err(|e| match &e {
        FileError::Open { source, .. } => io::Error::new(source.kind(), e.to_string()),
        FileError::NotAFile { .. } => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display())))?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "`{}` is larger than {}",
                path.display(),
                crate::ByteSize(cap)
            ),
        ));
    }
    Ok(bytes)
}

/// Reads the first `N` bytes of `path` if it is a regular file at least that long.
pub fn read_head<const N: usize>(path: &Path) -> Option<[u8; N]> {
    use std::io::Read;
    let (mut file, _) = open_regular(path).ok()?;
    let mut head = [0u8; N];
    file.read_exact(&mut head).ok()?;
    Some(head)
}

/// Creates `dir` and any missing parents with mode 0700 (only their owner may enter them).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(all(test, unix))]
mod tests {
    #![expect(clippy::expect_used, reason = "a broken fixture should fail loudly")]

    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo failed");
    }

    fn refused_as(path: &Path) -> SpecialFile {
        match open_regular(path) {
            Err(FileError::NotAFile { kind, .. }) => kind,
            other => panic!("{} was not refused as special: {other:?}", path.display()),
        }
    }

    #[test]
    fn fifos_devices_and_folders_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        assert_eq!(refused_as(&fifo), SpecialFile::Fifo);
        assert_eq!(refused_as(Path::new("/dev/zero")), SpecialFile::CharDevice);
        assert_eq!(refused_as(Path::new("/dev/null")), SpecialFile::CharDevice);
        assert_eq!(refused_as(dir.path()), SpecialFile::Folder);
        // Through a symlink, what counts is what it points at.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
        assert_eq!(refused_as(&link), SpecialFile::Fifo);
        assert_eq!(
            open_regular(&fifo).err().map(|e| e.to_string()),
            Some(format!("`{}` is a FIFO, not a file", fifo.display()))
        );
        assert_eq!(read_head::<4>(&fifo), None);
    }

    #[test]
    fn a_regular_file_opens_and_a_missing_one_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"\0asm\x01").expect("write");
        let (_, meta) = open_regular(&file).expect("open");
        assert_eq!(meta.len(), 5);
        assert_eq!(read_head::<4>(&file), Some(*b"\0asm"));
        assert_eq!(read_head::<8>(&file), None, "shorter than asked");
        let missing = open_regular(&dir.path().join("nope")).expect_err("missing");
        assert!(missing.is_not_found(), "{missing}");
    }

    #[test]
    fn private_dirs_are_created_with_mode_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a/b");
        create_private_dir(&deep).expect("create");
        for d in [dir.path().join("a"), deep] {
            let mode = std::fs::metadata(&d).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
    }
}
