//! Integration tests over the real `qyvol` binary: one test binary, one module per area.

#![expect(
    clippy::expect_used,
    reason = "a broken fixture should fail the test loudly"
)]

mod archives;
mod attack;
mod bundle;
mod cache;
mod cli;
mod cosign;
mod dashboard;
mod guests;
mod home;
mod hostile;
mod hostile_registry;
mod inspect;
mod interop;
mod kube;
mod limits;
mod manifests;
mod mounts;
mod network;
mod node;
mod registry;
mod seed;
mod serve;
mod signing;
mod special_files;
mod store;
mod tiering;
mod trust;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The real binary, with the locale pinned (Spanish unless a test asks otherwise).
pub fn qyvol() -> Command {
    Command::from_std(qyvol_std())
}

/// [`qyvol`] as a plain `std` command, for long-running processes (servers) a test drives.
pub fn qyvol_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qyvol"));
    for var in ["LANG", "LC_ALL", "LC_MESSAGES", "QYVOL_LOG"] {
        cmd.env_remove(var);
    }
    cmd.env("QYVOL_LANG", "es");
    // One compile cache shared by the tests (so it also sees concurrent writers), never the
    // user's own; tests about the cache use their own `QYVOL_HOME`.
    cmd.env(
        "QYVOL_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("qyvol-home"),
    );
    cmd
}

/// `qyvol` with its own `QYVOL_HOME` (its own compile cache).
pub fn qyvol_in(home: &Path) -> Command {
    let mut cmd = qyvol();
    cmd.env("QYVOL_HOME", home);
    cmd
}

/// What [`qyvol_logged`] prints when a module is compiled rather than mapped (not matched by
/// the "recompiling" of a cache entry that failed its check).
pub const COMPILING: &str = "qyvol_runtime::compile: compiling";

/// [`qyvol_in`] logging whether it compiles a module or maps code (`QYVOL_LOG` at debug for
/// the runtime): tests about the cache and bundles read those lines.
pub fn qyvol_logged(home: &Path) -> Command {
    let mut cmd = qyvol_in(home);
    cmd.env("QYVOL_LOG", "qyvol_runtime=debug");
    cmd
}

/// `qyvol inspect --json` of `bundle` as seen from `home`.
pub fn inspect_json(home: &Path, bundle: &Path) -> serde_json::Value {
    let out = qyvol_in(home)
        .args(["inspect", "--json"])
        .arg(bundle)
        .output()
        .expect("inspect");
    serde_json::from_slice(&out.stdout).expect("json")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A committed test guest (`probe-p1.wasm`, `probe-p2.wasm`).
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(name)
}

/// Both builds of the probe guest: the WASI preview 1 module and the WASI 0.2 component.
pub const PROBES: [&str; 2] = ["probe-p1.wasm", "probe-p2.wasm"];

/// A scratch folder for manifests, modules and mounts.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }

    /// Compiles WAT text to `rel` with the `wat` crate.
    pub fn wat(&self, rel: &str, text: &str) -> PathBuf {
        self.write(rel, wat::parse_str(text).expect("valid WAT"))
    }

    /// Copies a committed guest in, so manifests can name it relative to themselves.
    pub fn guest(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        std::fs::copy(guest(name), &to).expect("copy guest");
        to
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).expect("read scratch file")
    }
}

/// examples/hello.wasm with a custom section of `pad` zero bytes appended: the same program,
/// as big as a test needs.
pub fn padded_hello(pad: usize) -> Vec<u8> {
    let mut wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello.wasm");
    let size = u32::try_from(pad + 2).expect("a section under 4 GiB");
    wasm.push(0);
    wasm.extend(leb(size));
    wasm.extend([1, b'x']);
    wasm.resize(wasm.len() + pad, 0);
    wasm
}

/// Unsigned LEB128, as wasm encodes sizes and counts (for tests that write binaries by hand).
pub fn leb(mut n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `program` run as another local user (`nobody`, 65534) when the tests run as root, as CI
/// does: the attacker of the tests about a machine shared with other users. Not root, it runs
/// as this user, which the kernel's port and file rules treat the same way in those tests.
pub fn another_user(program: &str) -> std::process::Command {
    if rustix::process::geteuid().is_root() {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            program,
        ]);
        cmd
    } else {
        std::process::Command::new(program)
    }
}

/// Another local user listening on `addr` (a Python one-liner), until dropped; `Err` with what
/// it printed if it could not.
pub struct Squatter(std::process::Child);

impl Squatter {
    pub fn listen(addr: std::net::SocketAddr) -> Result<Self, String> {
        use std::io::BufRead;
        let family = if addr.is_ipv6() {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let script = format!(
            "import socket,sys\ns=socket.socket(socket.{family})\ns.bind(('{}',{}))\ns.listen()\n\
             print('listening',flush=True)\nsys.stdin.read()\n",
            addr.ip(),
            addr.port()
        );
        let mut child = another_user("/usr/bin/python3")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (Debian's, at /usr/bin/python3)");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        if line.trim() == "listening" {
            return Ok(Self(child));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("the squatter's output");
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A filesystem of `mib` MiB (a tmpfs mounted at `path`), to fill up; unmounted when dropped.
/// Mounting needs root, as CI has; `None` otherwise.
pub struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    pub fn mount(path: &Path, mib: u32) -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            eprintln!(
                "not root: a small filesystem cannot be mounted, so this test checks nothing"
            );
            return None;
        }
        std::fs::create_dir_all(path).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .output()
            .expect("mount");
        assert!(out.status.success(), "mount: {}", stderr(&out));
        Some(Self(path.to_path_buf()))
    }

    /// Writes a file named `name` until the filesystem is full.
    pub fn fill(&self, name: &str) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join(name)).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    pub fn free(&self, name: &str) {
        std::fs::remove_file(self.0.join(name)).expect("remove the filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}
