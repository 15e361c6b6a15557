//! Qyvol images on containerd: Debian's `containerd` (installed by `.ci/run`), started by each
//! test on a private root, state folder and socket, driven with `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Scratch, qyvol_in, repo_root, stderr, stdout};

/// A containerd of the test's own, killed when dropped.
pub(crate) struct Containerd {
    child: Child,
    dir: Scratch,
}

impl Containerd {
    pub(crate) fn start() -> Self {
        let dir = Scratch::new();
        let config = dir.write(
            "config.toml",
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_apparmor = true\n",
                dir.path("root").display(),
                dir.path("state").display(),
                dir.path("sock").display()
            ),
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("containerd is installed (.ci/run installs it)");
        let ctd = Self { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ctd.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ctd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path("sock")
    }

    /// `ctr` against this containerd, in the `qyvol` namespace.
    pub(crate) fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", "qyvol"])
            .args(args)
            .output()
            .expect("ctr is installed with containerd")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `qyvol build -t reference` of the hello example into `home`.
fn build(home: &Path, reference: &str) {
    let out = qyvol_in(home)
        .args(["build", "-q", "-t", reference])
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn save_then_load_brings_an_image_to_another_store_where_it_runs() {
    let s = Scratch::new();
    build(&s.path("a"), "localhost:5000/hello:1");
    let archive = s.path("hello.tar");
    let out = qyvol_in(&s.path("a"))
        .args(["save", "localhost:5000/hello:1", "-o"])
        .arg(&archive)
        .output()
        .expect("save");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = qyvol_in(&s.path("b"))
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .expect("load");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Imagen cargada: localhost:5000/hello:1 (sha256:"),
        "{}",
        stdout(&out)
    );
    let out = qyvol_in(&s.path("b"))
        .args(["run", "-q", "localhost:5000/hello:1"])
        .output()
        .expect("run");
    assert_eq!(
        stdout(&out),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&out)
    );

    // Under another name, with -t.
    let out = qyvol_in(&s.path("c"))
        .args(["load", "-t", "registry.lan/team/hello:2", "-i"])
        .arg(&archive)
        .output()
        .expect("load -t");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = qyvol_in(&s.path("c"))
        .args(["images", "--json"])
        .output()
        .expect("images");
    assert!(
        stdout(&out).contains("registry.lan/team/hello:2"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn load_of_something_that_is_not_an_archive_says_so() {
    let s = Scratch::new();
    let junk = s.write("junk.tar", b"not a tar at all");
    let out = qyvol_in(&s.path("home"))
        .args(["load", "-i"])
        .arg(&junk)
        .output()
        .expect("load");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("junk.tar"), "{}", stderr(&out));
    let out = qyvol_in(&s.path("home"))
        .args(["images", "--json"])
        .output()
        .expect("images");
    assert_eq!(stdout(&out).trim(), "[]");
}

#[test]
fn ctr_imports_the_archive_qyvol_saves_under_its_name() {
    let ctd = Containerd::start();
    let s = Scratch::new();
    build(&s.path("home"), "localhost:5000/hello:1");
    let archive = s.path("hello.tar");
    let out = qyvol_in(&s.path("home"))
        .args(["save", "localhost:5000/hello:1", "-o"])
        .arg(&archive)
        .output()
        .expect("save");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The Wasm OCI artifact needs containerd >= 1.6.25 / 1.7.7 to unpack; any containerd
    // stores it.
    let out = ctd.ctr(&[
        "image",
        "import",
        "--no-unpack",
        "--all-platforms",
        &archive.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctd.ctr(&["image", "ls", "-q"]);
    assert_eq!(
        stdout(&out).trim(),
        "localhost:5000/hello:1",
        "{}",
        stderr(&out)
    );
}
