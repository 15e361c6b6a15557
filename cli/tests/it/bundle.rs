//! The compiled bundle: build → run round trip with no compilation, a foreign engine
//! fingerprint, `--no-precompiled`, tampered blobs, build commands, inspection.

use std::path::Path;

// Every run here says whether it compiled or mapped code.
use crate::fixture::qyvol_logged as qyvol_in;
use crate::fixture::{COMPILING, Scratch, repo_root, stderr, stdout};

/// Builds `examples/hello.qyv` into `dir/hello.qyvc` with its own home, then empties the cache.
fn build_hello(home: &Path, dir: &Path) -> std::path::PathBuf {
    let out = dir.join("hello.qyvc");
    let built = qyvol_in(home)
        .arg("build")
        .arg(repo_root().join("examples/hello.qyv"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("build");
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    assert!(
        stderr(&built).contains("📦 Paquete escrito: "),
        "{}",
        stderr(&built)
    );
    let cleared = qyvol_in(home)
        .args(["cache", "clear"])
        .output()
        .expect("clear");
    assert_eq!(cleared.status.code(), Some(0));
    out
}

fn flip_inside(file: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(file).expect("read bundle");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("blob inside the tar")
        + needle.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(file, bytes).expect("write bundle");
}

#[test]
fn a_bundle_runs_from_its_precompiled_code_without_compiling() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    let out = qyvol_in(home.dir.path())
        .arg("run")
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    let err = stderr(&out);
    assert!(err.contains("🔧 Cargando módulo: hello-qyvol"), "{err}");
    assert!(err.contains("mapped precompiled code"), "{err}");
    assert!(
        !err.contains("compiling"),
        "the bundle's code was used: {err}"
    );
    // Without the cache nothing records what was built here: the wasm is compiled.
    let again = qyvol_in(home.dir.path())
        .args(["run", "-q", "--no-cache"])
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(stdout(&again), "👋 ¡Hola desde Qyvol WASI!\n");
    assert!(stderr(&again).contains(COMPILING), "{}", stderr(&again));
}

#[test]
fn a_foreign_engine_fingerprint_compiles_from_the_wasm() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    // Fuel metering is another engine configuration: the bundle's code does not fit it.
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q", "--fuel", "100000000"])
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    assert!(stderr(&out).contains(COMPILING), "{}", stderr(&out));
}

#[test]
fn no_precompiled_compiles_from_the_wasm_even_a_bundle_built_here() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q", "--no-precompiled"])
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    assert!(stderr(&out).contains(COMPILING), "{}", stderr(&out));
}

#[test]
fn a_tampered_wasm_blob_is_refused() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello.wasm");
    flip_inside(&bundle, &wasm[wasm.len() / 2..wasm.len() / 2 + 64]);
    let out = qyvol_in(home.dir.path())
        .arg("run")
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("damaged or tampered with: blob `sha256:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_tampered_precompiled_blob_is_refused_and_not_cached() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    // The precompiled layer is an ELF object; flip a byte well inside it.
    let bytes = std::fs::read(&bundle).expect("read");
    let elf = bytes
        .windows(4)
        .position(|w| w == b"\x7fELF")
        .expect("precompiled code inside");
    let mut tampered = bytes.clone();
    tampered[elf + 4096] ^= 0x01;
    std::fs::write(&bundle, tampered).expect("write");
    let out = qyvol_in(home.dir.path())
        .arg("run")
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("damaged or tampered"),
        "{}",
        stderr(&out)
    );
    let ls = qyvol_in(home.dir.path())
        .args(["cache", "ls", "--json"])
        .output()
        .expect("ls");
    assert_eq!(stdout(&ls).trim(), "[]", "nothing unverified was stored");
    // A damaged bundle is damaged whatever part of it would be used.
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q", "--no-precompiled"])
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
}

#[test]
fn truncated_or_foreign_files_are_not_bundles() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    let bytes = std::fs::read(&bundle).expect("read");
    std::fs::write(&bundle, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = qyvol_in(home.dir.path())
        .arg("run")
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn build_runs_the_manifests_build_command_first() {
    let (home, s) = (Scratch::new(), Scratch::new());
    s.guest("probe-p1.wasm");
    let m = s.write(
        "app.qyv",
        "name: probe\nentrypoint: built/probe.wasm\nruntime: wasi\nargs: [exit, \"9\"]\nbuild: { command: \"mkdir -p built && cp probe-p1.wasm built/probe.wasm && echo built-it\" }\n",
    );
    let out = qyvol_in(home.dir.path())
        .arg("build")
        .arg(&m)
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "built-it\n",
        "the command's output streams through"
    );
    let run = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(s.path("probe.qyvc"))
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(9), "{}", stderr(&run));
}

#[test]
fn build_fails_clearly_when_the_output_is_not_produced() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let m = s.write("app.qyv", "name: app\nentrypoint: app.wasm\nruntime: wasi\nbuild: { command: \"true\", output: out/app.wasm }\n");
    let out = qyvol_in(home.dir.path())
        .arg("build")
        .arg(&m)
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    assert!(stderr(&out).contains("did not produce"), "{}", stderr(&out));
    assert!(stderr(&out).contains("build.output"), "{}", stderr(&out));
    let m = s.write(
        "bad.qyv",
        "name: app\nentrypoint: app.wasm\nruntime: wasi\nbuild: { command: \"exit 3\" }\n",
    );
    let out = qyvol_in(home.dir.path())
        .arg("build")
        .arg(&m)
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(!s.path("app.qyvc").exists());
}

#[test]
fn inspect_shows_layers_and_precompiled_platforms() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = build_hello(home.dir.path(), s.dir.path());
    let out = qyvol_in(home.dir.path())
        .args(["inspect", "--json"])
        .arg(&bundle)
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["manifest"]["name"], "hello-qyvol");
    assert_eq!(
        doc["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let media: Vec<_> = doc["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        media,
        [
            "application/wasm",
            "application/vnd.qyvol.manifest.v1+yaml",
            "application/vnd.qyvol.precompiled.v1"
        ]
    );
    assert_eq!(doc["precompiled"][0]["matches_this_host"], true);
    assert_eq!(doc["precompiled"][0]["wasmtime"], "49.0.5");
}

#[test]
fn a_component_bundle_round_trips() {
    let (home, s) = (Scratch::new(), Scratch::new());
    s.guest("probe-p2.wasm");
    let m = s.write(
        "app.qyv",
        "name: comp\nentrypoint: probe-p2.wasm\nruntime: wasi\n",
    );
    let out = qyvol_in(home.dir.path())
        .args(["build", "-q"])
        .arg(&m)
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(s.path("comp.qyvc"))
        .args(["args", "x"])
        .output()
        .expect("run");
    assert_eq!(stdout(&run), "comp\nargs\nx\n", "{}", stderr(&run));
}

#[test]
fn a_sandboxed_bundle_is_precompiled_for_its_time_limit() {
    // Sandbox runs have a default time limit, so their code carries epoch checks; the bundle
    // must be precompiled for that engine, not for the plain one.
    let (home, s) = (Scratch::new(), Scratch::new());
    std::fs::copy(
        repo_root().join("examples/hello.wasm"),
        s.path("hello.wasm"),
    )
    .expect("copy");
    let m = s.write(
        "app.qyv",
        "name: boxed\nentrypoint: hello.wasm\nruntime: wasi\nenvironment: sandbox\n",
    );
    let out = qyvol_in(home.dir.path())
        .args(["build", "-q"])
        .arg(&m)
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    qyvol_in(home.dir.path())
        .args(["cache", "clear"])
        .output()
        .expect("clear");
    let run = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(s.path("boxed.qyvc"))
        .output()
        .expect("run");
    assert_eq!(
        stdout(&run),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&run)
    );
    assert!(!stderr(&run).contains("compiling"), "{}", stderr(&run));
}
