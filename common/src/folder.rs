//! Host folders for mounts, opened once: what a guest gets is the handle opened here, and every
//! check is made on that handle, never on a path looked up again. Opening follows no symlink
//! on the way (`openat2` with `RESOLVE_NO_SYMLINKS` on Linux; a component-by-component
//! `O_NOFOLLOW` walk where the kernel lacks it), keeps a manifest's mounts beneath the
//! manifest's folder (`RESOLVE_BENEATH` from a handle on that folder), and refuses procfs,
//! whose folders are Qyvol's own process (its environment, memory and open files) however the
//! path was spelled.

use std::path::Path;

/// Why a host folder cannot be mounted. The text completes "mount host `X`: ...".
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("it does not exist")]
    Missing,
    #[error("it is not a folder")]
    NotAFolder,
    #[error(
        "the path goes through a symlink, and symlinks are not followed to a mount; name the folder itself"
    )]
    Symlink,
    #[error("it leads outside the manifest's folder")]
    Outside,
    #[error(
        "it is on procfs (`/proc`), which exposes processes, Qyvol's own among them (its environment, memory and open files); it is never mounted"
    )]
    Procfs,
    #[error("mounts need a Unix host")]
    Unsupported,
    #[error("{0}")]
    Io(std::io::Error),
}

/// Opens the folder of a mount: `host` itself (absolute, canonicalised by whoever trusted the
/// path), or, when `beneath` is given, `host`'s path below `beneath` opened from a handle on
/// `beneath`, so that neither `..` nor a symlink can lead out of it.
pub fn open_mount(host: &Path, beneath: Option<&Path>) -> Result<Folder, FolderError> {
    match beneath {
        Some(base) => {
            let rel = host.strip_prefix(base).map_err(|_| FolderError::Outside)?;
            Folder::open(base)?.open_beneath(rel)
        }
        None => Folder::open(host),
    }
}

#[cfg(unix)]
pub use unix::Folder;

#[cfg(unix)]
mod unix {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::path::{Component, Path};

    use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
    use rustix::io::Errno;

    use super::FolderError;

    /// How many folders up `is_within` climbs before giving up (deeper than any real path).
    const MAX_DEPTH: usize = 4096;

    /// An opened host folder.
    #[derive(Debug)]
    pub struct Folder(OwnedFd);

    impl AsFd for Folder {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.0.as_fd()
        }
    }

    impl Folder {
        /// Opens `path` following no symlink, not even in its parents: the caller resolved the
        /// path it trusts (`canonicalize`), so a symlink found now is a swap and is refused.
        pub fn open(path: &Path) -> Result<Self, FolderError> {
            open_at(CWD, path, false)
        }

        /// Opens `rel` below this folder, following no symlink and never leaving it by `..`.
        pub fn open_beneath(&self, rel: &Path) -> Result<Self, FolderError> {
            // `host: .` is the folder itself: an empty path opens nothing.
            let rel = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel
            };
            open_at(self.as_fd(), rel, true)
        }

        /// Whether this folder is `other` or lies somewhere inside it, found by climbing `..`
        /// from this handle (so no path spelling or symlink can hide it).
        pub fn is_within(&self, other: &Folder) -> Result<bool, FolderError> {
            let target = stat(other.as_fd())?;
            let mut here = stat(self.as_fd())?;
            let mut current: Option<OwnedFd> = None;
            for _ in 0..MAX_DEPTH {
                if same(&here, &target) {
                    return Ok(true);
                }
                let from = current.as_ref().map_or(self.as_fd(), AsFd::as_fd);
                let parent = rustix::fs::openat(from, "..", flags(), Mode::empty())
                    .map_err(|e| FolderError::Io(e.into()))?;
                let up = stat(parent.as_fd())?;
                if same(&up, &here) {
                    return Ok(false);
                }
                (here, current) = (up, Some(parent));
            }
            Err(FolderError::Io(std::io::Error::other(
                "the folder is nested deeper than any real path",
            )))
        }
    }

    /// Directory handles that only name the folder (`O_PATH` where it exists, so a folder the
    /// user may enter but not list can still be mounted, as wasmtime-wasi itself opens them).
    fn flags() -> OFlags {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let access = OFlags::PATH;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let access = OFlags::RDONLY;
        access | OFlags::DIRECTORY | OFlags::CLOEXEC
    }

    fn stat(fd: BorrowedFd<'_>) -> Result<Stat, FolderError> {
        rustix::fs::fstat(fd).map_err(|e| FolderError::Io(e.into()))
    }

    /// The same folder: the same inode on the same device.
    fn same(a: &Stat, b: &Stat) -> bool {
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    }

    fn open_at(base: BorrowedFd<'_>, path: &Path, beneath: bool) -> Result<Folder, FolderError> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::ResolveFlags;
            let mut resolve = ResolveFlags::NO_SYMLINKS;
            if beneath {
                resolve |= ResolveFlags::BENEATH;
            }
            // `EAGAIN`: a rename elsewhere raced the `..` check; the kernel asks to try again.
            for _ in 0..16 {
                match rustix::fs::openat2(base, path, flags(), Mode::empty(), resolve) {
                    Ok(fd) => return checked(fd),
                    Err(Errno::AGAIN) => continue,
                    // No openat2 (before Linux 5.6, or a seccomp filter that does not know it).
                    Err(Errno::NOSYS | Errno::PERM) => return walk(base, path, beneath),
                    Err(e) => return Err(refusal(e)),
                }
            }
            Err(FolderError::Io(Errno::AGAIN.into()))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        walk(base, path, beneath)
    }

    /// `openat2`'s checks, by hand: one component at a time with `O_NOFOLLOW`, and `..`
    /// going back to the folder it came from (refused at `base` when opening beneath it).
    pub(super) fn walk(
        base: BorrowedFd<'_>,
        path: &Path,
        beneath: bool,
    ) -> Result<Folder, FolderError> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        for component in path.components() {
            let from = stack.last().map_or(base, AsFd::as_fd);
            let next = match component {
                Component::CurDir => continue,
                Component::RootDir if !beneath => {
                    stack.clear();
                    rustix::fs::openat(CWD, "/", flags(), Mode::empty())
                }
                Component::ParentDir if beneath => {
                    stack.pop().ok_or(FolderError::Outside)?;
                    continue;
                }
                Component::ParentDir => rustix::fs::openat(from, "..", flags(), Mode::empty()),
                Component::Normal(name) => {
                    rustix::fs::openat(from, name, flags() | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(|e| match e {
                            // `O_PATH | O_NOFOLLOW` names a symlink instead of failing on it.
                            Errno::NOTDIR if is_symlink(from, name) => Errno::LOOP,
                            e => e,
                        })
                }
                Component::RootDir | Component::Prefix(_) => return Err(FolderError::Outside),
            };
            stack.push(next.map_err(refusal)?);
        }
        match stack.pop() {
            Some(fd) => checked(fd),
            None => {
                checked(rustix::fs::openat(base, ".", flags(), Mode::empty()).map_err(refusal)?)
            }
        }
    }

    fn is_symlink(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> bool {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    }

    /// What was opened must be a folder, and not one of procfs.
    fn checked(fd: OwnedFd) -> Result<Folder, FolderError> {
        let st = stat(fd.as_fd())?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(FolderError::NotAFolder);
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let fs = rustix::fs::fstatfs(&fd).map_err(|e| FolderError::Io(e.into()))?;
            if fs.f_type == rustix::fs::PROC_SUPER_MAGIC {
                return Err(FolderError::Procfs);
            }
        }
        Ok(Folder(fd))
    }

    fn refusal(e: Errno) -> FolderError {
        match e {
            Errno::NOENT => FolderError::Missing,
            Errno::NOTDIR => FolderError::NotAFolder,
            Errno::LOOP => FolderError::Symlink,
            Errno::XDEV => FolderError::Outside,
            e => FolderError::Io(e.into()),
        }
    }
}

/// Without Unix's `*at` calls a folder cannot be opened so that it stays the one checked.
#[cfg(not(unix))]
#[derive(Debug)]
pub struct Folder;

#[cfg(not(unix))]
impl Folder {
    pub fn open(_path: &Path) -> Result<Self, FolderError> {
        Err(FolderError::Unsupported)
    }

    pub fn open_beneath(&self, _rel: &Path) -> Result<Self, FolderError> {
        Err(FolderError::Unsupported)
    }

    pub fn is_within(&self, _other: &Folder) -> Result<bool, FolderError> {
        Err(FolderError::Unsupported)
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    /// Every check runs both ways: through `openat2` (Linux), and through the walk used where
    /// the kernel lacks it.
    #[derive(Debug, Clone, Copy)]
    enum Way {
        Kernel,
        Walk,
    }
    const WAYS: [Way; 2] = [Way::Kernel, Way::Walk];

    fn open(way: Way, path: &Path) -> Result<Folder, FolderError> {
        match way {
            Way::Kernel => Folder::open(path),
            Way::Walk => unix::walk(rustix::fs::CWD, path, false),
        }
    }

    fn beneath(way: Way, base: &Folder, rel: &str) -> Result<Folder, FolderError> {
        match way {
            Way::Kernel => base.open_beneath(Path::new(rel)),
            Way::Walk => unix::walk(base.as_fd(), Path::new(rel), true),
        }
    }

    fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("m/data/config")).expect("mkdir");
        std::fs::create_dir(root.join("outside")).expect("mkdir");
        std::fs::write(root.join("m/file"), "x").expect("write");
        std::os::unix::fs::symlink("data", root.join("m/link")).expect("symlink");
        std::os::unix::fs::symlink("../outside", root.join("m/out")).expect("symlink");
        (tmp, root)
    }

    /// The refusal's name (`Symlink`, `Outside`, ...), or `opened` when it opened.
    fn refusal(r: Result<Folder, FolderError>) -> String {
        match r {
            Ok(_) => "opened".into(),
            Err(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn beneath_a_folder_nothing_outside_it_opens() {
        let (_tmp, root) = tree();
        for way in WAYS {
            let m = open(way, &root.join("m")).expect("open m");
            for (rel, want) in [
                ("data/config", "opened"),
                ("data/../data/./config", "opened"),
                (".", "opened"),
                ("data/..", "opened"),
                ("..", "Outside"),
                ("../outside", "Outside"),
                ("data/../../outside", "Outside"),
                ("/", "Outside"),
            ] {
                assert_eq!(refusal(beneath(way, &m, rel)), want, "{way:?} {rel}");
            }
        }
    }

    #[test]
    fn a_symlink_anywhere_on_the_path_is_refused() {
        let (_tmp, root) = tree();
        for way in WAYS {
            let m = open(way, &root.join("m")).expect("open m");
            for path in ["link", "link/config", "out", "data/../link"] {
                assert_eq!(refusal(beneath(way, &m, path)), "Symlink", "{way:?} {path}");
                let absolute = root.join("m").join(path);
                assert_eq!(refusal(open(way, &absolute)), "Symlink", "{way:?} {path}");
            }
        }
    }

    #[test]
    fn files_and_missing_folders_are_not_mounts() {
        let (_tmp, root) = tree();
        for way in WAYS {
            let m = open(way, &root.join("m")).expect("open m");
            assert_eq!(refusal(beneath(way, &m, "file")), "NotAFolder", "{way:?}");
            assert_eq!(refusal(beneath(way, &m, "nothing")), "Missing", "{way:?}");
            assert_eq!(refusal(open(way, &root.join("m/file"))), "NotAFolder");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn procfs_is_never_a_mount() {
        let mine = format!("/proc/{}", std::process::id());
        for way in WAYS {
            for path in ["/proc", "/proc/1", &mine, &format!("{mine}/task/..")] {
                assert_eq!(
                    refusal(open(way, Path::new(path))),
                    "Procfs",
                    "{way:?} {path}"
                );
            }
            // `/proc/self` is a symlink: refused before procfs is even looked at.
            let self_link = open(way, Path::new("/proc/self"));
            assert_eq!(refusal(self_link), "Symlink", "{way:?}");
        }
    }

    #[test]
    fn within_is_found_from_the_handles() {
        let (_tmp, root) = tree();
        let data = Folder::open(&root.join("m/data")).expect("open");
        let config = Folder::open(&root.join("m/data/config")).expect("open");
        let outside = Folder::open(&root.join("outside")).expect("open");
        let again = Folder::open(&root.join("m/./data")).expect("open");
        assert!(config.is_within(&data).expect("walk"));
        assert!(again.is_within(&data).expect("walk"));
        assert!(!data.is_within(&config).expect("walk"));
        assert!(!outside.is_within(&data).expect("walk"));
    }
}
