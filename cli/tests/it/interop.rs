//! Standard tools read what Qyvol writes: skopeo (installed by `.ci/run`) copies a `.qyvc`
//! bundle into a new OCI archive that Qyvol runs, and inspects the local store as an OCI layout.

use std::process::Command;

use crate::fixture::{Scratch, qyvol_in, repo_root, stderr, stdout};

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed (`apt-get install skopeo`; .ci/run does it)")
}

#[test]
fn skopeo_copies_a_bundle_into_an_archive_qyvol_runs() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = s.path("hello.qyvc");
    let built = qyvol_in(home.dir.path())
        .args(["build", "-q", "-o"])
        .arg(&bundle)
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let copy = s.path("copy.qyvc");
    let out = skopeo(&[
        "copy",
        &format!("oci-archive:{}", bundle.display()),
        &format!("oci-archive:{}:copied", copy.display()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&copy)
        .output()
        .expect("run");
    assert_eq!(
        stdout(&run),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&run)
    );
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", bundle.display()),
    ]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest json");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
}

#[test]
fn skopeo_reads_the_local_store_as_an_oci_layout() {
    let home = Scratch::new();
    let built = qyvol_in(home.dir.path())
        .args(["build", "-q", "-t", "localhost:5000/hello:1"])
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let out = skopeo(&[
        "inspect",
        "--raw",
        &format!(
            "oci:{}:localhost:5000/hello:1",
            home.path("store").display()
        ),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("manifest json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
}
