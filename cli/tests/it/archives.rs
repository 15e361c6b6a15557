//! `qyvol save` and `qyvol load`: OCI archives between stores. (containerd itself runs them
//! in `shim/tests/it/ctr.rs` and, through CRI, `shim/tests/it/cri.rs`.)

use crate::fixture::{Scratch, build_tagged, qyvol_in, stderr, stdout};

#[test]
fn save_then_load_brings_an_image_to_another_store_where_it_runs() {
    let s = Scratch::new();
    build_tagged(&s.path("a"), &["localhost:5000/hello:1"]);
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

/// The image `qyvol push` sends (the same manifest `save` writes) as the other runtime shims
/// read it (docs/kubernetes.md cites their source): runwasi's containerd-shim-wasm parses the
/// config as an OCI platform and needs `architecture: wasm` and an `os`, and takes only
/// layers of its module types, one module; containerd-shim-spin takes a single
/// `application/wasm` layer among the layers it knows. Qyvol's manifest and precompiled
/// layers are of types neither takes, so both see exactly one module.
#[test]
fn the_image_qyvol_pushes_is_one_the_runwasi_and_spin_shims_accept() {
    let s = Scratch::new();
    build_tagged(&s.path("home"), &["localhost:5000/hello:1"]);
    let archive = s.path("hello.tar");
    let out = qyvol_in(&s.path("home"))
        .args(["save", "localhost:5000/hello:1", "-o"])
        .arg(&archive)
        .output()
        .expect("save");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut files = std::collections::HashMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).expect("archive"));
    for entry in tar.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        files.insert(path, bytes);
    }
    let json = |path: &str| -> serde_json::Value {
        serde_json::from_slice(&files[path]).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let blob = |digest: &serde_json::Value| {
        format!(
            "blobs/sha256/{}",
            digest
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:")
        )
    };
    let index = json("index.json");
    let manifest = json(&blob(&index["manifests"][0]["digest"]));
    let config = json(&blob(&manifest["config"]["digest"]));
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");

    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().expect("type"))
        .collect();
    let runwasi = [
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
        "application/wasm",
    ];
    let taken_by_runwasi: Vec<_> = types.iter().filter(|t| runwasi.contains(t)).collect();
    assert_eq!(taken_by_runwasi, [&"application/wasm"], "{types:?}");
    // containerd-shim-spin: `application/wasm` (a wkg package, alone), its
    // `application/vnd.wasm.content.layer.v1+wasm`, and spin-oci's own types.
    let taken_by_spin: Vec<_> = types
        .iter()
        .filter(|t| {
            **t == "application/wasm"
                || t.starts_with("application/vnd.wasm.content.")
                || t.starts_with("application/vnd.fermyon.")
        })
        .collect();
    assert_eq!(taken_by_spin, [&"application/wasm"], "{types:?}");
    // What else is there is Qyvol's own.
    assert!(
        types
            .iter()
            .all(|t| *t == "application/wasm" || t.starts_with("application/vnd.qyvol.")),
        "{types:?}"
    );
}
