//! `qyvol save` and `qyvol load`: OCI archives between stores. (containerd itself runs them
//! in `shim/tests/containerd.rs`.)

use std::path::Path;

use crate::{Scratch, qyvol_in, repo_root, stderr, stdout};

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
