//! The `QYVOL_HOME` layout: `store/` (modules), `cache/` (precompiled code, safe to delete),
//! `node/` (the node's state). Default: `$XDG_DATA_HOME/qyvol`, else `~/.local/share/qyvol`.
//!
//! Qyvol maps native code from `cache/` and `store/` and runs it, so whoever can write there can
//! make Qyvol execute anything. Like ssh with `~/.ssh`, [`Home::open`] refuses a home, cache or
//! store folder that another user owns (root excepted) or that group or others may write, with
//! the command that fixes it; the sticky bit is no excuse (it stops others deleting entries, not
//! planting new ones). Missing folders are created with mode 0700.

use std::path::{Path, PathBuf};

use crate::file::create_private_dir;

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot create `{path}`: {source}; point QYVOL_HOME at a folder you can write")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a folder: move it away, or point QYVOL_HOME at a folder of your own")]
    NotAFolder { path: PathBuf },
    #[error(
        "`{path}` can be written by other users (mode {mode:04o}), who could make Qyvol run their native code: run `chmod go-w {}`",
        shell_word(.path)
    )]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error(
        "`{path}` belongs to another user (uid {owner}; you are uid {uid}), who could make Qyvol run their native code: run `sudo chown $USER {}`, or point QYVOL_HOME at a folder of your own",
        shell_word(.path)
    )]
    NotYours { path: PathBuf, owner: u32, uid: u32 },
}

impl Home {
    /// `QYVOL_HOME`, or the platform data folder: created if missing, checked as described above.
    pub fn open() -> Result<Self, HomeError> {
        let home = Self { root: root() };
        let uid = current_uid();
        for dir in [home.root.clone(), home.cache(), home.store()] {
            let meta = match std::fs::metadata(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    create_private_dir(&dir).and_then(|()| std::fs::metadata(&dir))
                }
                other => other,
            }
            .map_err(|source| HomeError::Create {
                path: dir.clone(),
                source,
            })?;
            check_private(&dir, &meta, uid)?;
        }
        Ok(home)
    }

    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }

    /// Where each app run here keeps its key-value buckets (`APP.redb`).
    pub fn keyvalue(&self) -> PathBuf {
        self.root.join("keyvalue")
    }

    /// The trust policy: which images need which keys (`qyvol trust`). The store finds it
    /// beside itself (`trust_policy_beside`).
    pub fn trust_policy(&self) -> PathBuf {
        self.root.join(TRUST_POLICY)
    }
}

/// The trust policy's file name, in `QYVOL_HOME`.
const TRUST_POLICY: &str = "policy.yaml";

/// The trust policy of the home whose store is at `store` (see [`Home::store`]).
pub fn trust_policy_beside(store: &std::path::Path) -> PathBuf {
    store.parent().unwrap_or(store).join(TRUST_POLICY)
}

fn root() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("QYVOL_HOME")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("qyvol")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/qyvol")))
        .unwrap_or_else(|| std::env::temp_dir().join("qyvol"))
}

/// Refuses a folder that `uid` (or root) does not own or that group or others may write.
fn check_private(dir: &Path, meta: &std::fs::Metadata, uid: u32) -> Result<(), HomeError> {
    if !meta.is_dir() {
        return Err(HomeError::NotAFolder {
            path: dir.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != uid && meta.uid() != 0 {
            return Err(HomeError::NotYours {
                path: dir.to_path_buf(),
                owner: meta.uid(),
                uid,
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(HomeError::WritableByOthers {
                path: dir.to_path_buf(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn current_uid() -> u32 {
    #[expect(unsafe_code, reason = "geteuid has no preconditions and cannot fail")]
    // SAFETY: geteuid(2) only reads the calling process's effective user id.
    unsafe {
        libc::geteuid()
    }
}

#[cfg(not(unix))]
fn current_uid() -> u32 {
    0
}

/// `path` as one shell word, quoted when it has characters a shell would split or expand.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_another_user_is_refused_with_the_chown_to_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        // As root, give the folder away; otherwise look at our own folder as someone else.
        let me = current_uid();
        let uid = if me == 0 {
            std::os::unix::fs::chown(dir.path(), Some(65534), None).expect("chown");
            0
        } else {
            me + 1
        };
        let meta = std::fs::metadata(dir.path()).expect("stat");
        let err = check_private(dir.path(), &meta, uid).expect_err("refused");
        assert!(matches!(err, HomeError::NotYours { .. }), "{err:?}");
        let shown = dir.path().display();
        assert!(
            err.to_string()
                .contains(&format!("run `sudo chown $USER {shown}`")),
            "{err}"
        );
    }

    #[test]
    fn root_owned_private_folders_and_our_own_are_accepted() {
        let meta = std::fs::metadata("/").expect("stat /");
        assert!(check_private(Path::new("/"), &meta, current_uid() + 1).is_ok());
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = std::fs::metadata(dir.path()).expect("stat");
        assert!(check_private(dir.path(), &meta, current_uid()).is_ok());
    }

    #[test]
    fn paths_with_spaces_or_quotes_are_quoted_for_the_shell() {
        assert_eq!(
            shell_word(Path::new("/home/ana/.qyvol")),
            "/home/ana/.qyvol"
        );
        assert_eq!(shell_word(Path::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(shell_word(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }
}
