//! The local store: `build -t`, `images`, `run REF`, `tag`, `rmi`, `prune`, concurrent writers,
//! and damage detection (HOSTILE row 23).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::{
    Guarded, Scratch, build_tagged, images, qyvol_in, qyvol_std, repo_root, stderr, stdout,
};

/// Port 1 on loopback has no registry: a reference missing from the store fails to pull.
const REF: &str = "localhost:1/hello:1";

fn run_ref(home: &Path, reference: &str) -> std::process::Output {
    qyvol_in(home)
        .args(["run", "-q", reference])
        .output()
        .expect("run")
}

fn blobs(home: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(home.join("store/blobs/sha256"))
        .expect("blobs")
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn build_tag_run_rmi_prune() {
    let home = Scratch::new();
    let h = home.dir.path();
    build_tagged(h, &[REF]);
    let list = images(h);
    assert_eq!(list[0]["reference"], REF);
    assert!(
        list[0]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert!(
        !home.path("hello.qyvc").exists()
            && !repo_root().join("examples/hello-qyvol.qyvc").exists(),
        "-t alone writes no bundle file"
    );

    let out = run_ref(h, REF);
    assert_eq!(
        stdout(&out),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&out)
    );

    let tagged = qyvol_in(h)
        .args(["tag", REF, "localhost:1/hello:latest"])
        .output()
        .expect("tag");
    assert_eq!(tagged.status.code(), Some(0), "{}", stderr(&tagged));
    let list = images(h);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(list[0]["digest"], list[1]["digest"]);

    let rmi = qyvol_in(h).args(["rmi", REF]).output().expect("rmi");
    assert_eq!(rmi.status.code(), Some(0));
    assert_eq!(
        stdout(&run_ref(h, "localhost:1/hello:latest")),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "the other tag still runs"
    );
    let before = blobs(h).len();
    let prune = qyvol_in(h)
        .env("QYVOL_LANG", "en")
        .arg("prune")
        .output()
        .expect("prune");
    assert_eq!(
        stdout(&prune),
        "Reclaimed space: 0B\n",
        "everything is still referenced"
    );
    assert_eq!(blobs(h).len(), before);

    qyvol_in(h)
        .args(["rmi", "localhost:1/hello:latest"])
        .output()
        .expect("rmi");
    let prune = qyvol_in(h)
        .env("QYVOL_LANG", "en")
        .arg("prune")
        .output()
        .expect("prune");
    assert!(
        stdout(&prune).starts_with("Reclaimed space: ") && !stdout(&prune).contains(" 0B"),
        "{}",
        stdout(&prune)
    );
    assert!(blobs(h).is_empty());
    // Gone from the store, so `run` tries to pull it, as `docker run` does: no registry there.
    let out = run_ref(h, REF);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("is the registry running and reachable?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rmi_of_an_unknown_reference_and_bad_references_fail_clearly() {
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["rmi", "localhost:5000/nope:1"])
        .output()
        .expect("rmi");
    assert_eq!(out.status.code(), Some(66));
    let out = qyvol_in(home.dir.path())
        .args(["tag", "localhost:5000/nope:1", "Bad Ref!"])
        .output()
        .expect("tag");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = qyvol_in(home.dir.path())
        .args(["build", "-t", "UPPER/case:1"])
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a valid reference"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn concurrent_builds_into_one_store_keep_every_tag() {
    let home = Scratch::new();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Guarded::spawn(
                qyvol_std()
                    .env("QYVOL_HOME", home.dir.path())
                    .args(["build", "-q", "-t", &format!("localhost:5000/hello:{i}")])
                    .arg(repo_root().join("examples/hello.qyv")),
                Duration::from_secs(120),
            )
        })
        .collect();
    for mut c in children {
        assert!(c.wait().success());
    }
    let list = images(home.dir.path());
    let refs: Vec<_> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["reference"].as_str())
        .collect();
    assert_eq!(
        refs,
        [
            "localhost:5000/hello:0",
            "localhost:5000/hello:1",
            "localhost:5000/hello:2",
            "localhost:5000/hello:3"
        ]
    );
    let tmp: Vec<_> = std::fs::read_dir(home.path("store/tmp"))
        .expect("tmp")
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
}

#[test]
fn a_damaged_blob_in_the_store_is_refused_with_a_repair_hint() {
    let home = Scratch::new();
    let h = home.dir.path();
    build_tagged(h, &[REF]);
    // Flip a byte in the wasm layer (the blob whose bytes are hello.wasm's).
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");
    let blob = blobs(h)
        .into_iter()
        .find(|b| std::fs::read(b).is_ok_and(|x| x == wasm))
        .expect("wasm blob");
    let mut bytes = wasm.clone();
    bytes[wasm.len() / 2] ^= 0x01;
    std::fs::write(&blob, &bytes).expect("flip");
    // A fresh cache, so the wasm has to be read.
    let out = run_ref(h, REF);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("qyvol prune"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    // A truncated image manifest is caught before anything else.
    let home2 = Scratch::new();
    build_tagged(home2.dir.path(), &[REF]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home2.path("store/index.json")).expect("index"))
            .expect("json");
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .trim_start_matches("sha256:")
        .to_string();
    let manifest = home2.path(&format!("store/blobs/sha256/{digest}"));
    let m = std::fs::read(&manifest).expect("manifest");
    std::fs::write(&manifest, &m[..m.len() / 2]).expect("truncate");
    let out = run_ref(home2.dir.path(), REF);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
}
