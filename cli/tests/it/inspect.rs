//! `qyvol inspect`: kind, WASI generation, imports, exports, size and digest, for people and
//! for scripts.

use crate::{guest, qyvol, repo_root, stderr, stdout};

fn json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = qyvol()
        .arg("inspect")
        .arg("--json")
        .args(args)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

#[test]
fn inspect_a_manifest_for_people() {
    let out = qyvol()
        .current_dir(repo_root())
        .args(["inspect", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::with_settings!({ filters => vec![(r"[0-9a-f]{64}", "[sha256]"), (r"\d+\.\d KiB \(\d+ B\)", "[size]")] }, {
        insta::assert_snapshot!("inspect_hello_es", stdout(&out));
    });
}

#[test]
fn inspect_json_describes_a_core_module() {
    let hello = repo_root().join("examples/hello.wasm");
    let doc = json(&[hello.as_os_str()]);
    assert_eq!(doc["kind"], "core-module");
    assert_eq!(doc["wasi"], "preview1");
    assert_eq!(doc["size"], std::fs::metadata(&hello).expect("stat").len());
    assert_eq!(doc["sha256"].as_str().map(str::len), Some(64));
    assert!(
        doc["imports"]
            .as_array()
            .expect("imports")
            .iter()
            .any(|i| i["module"] == "wasi_snapshot_preview1" && i["name"] == "fd_write")
    );
    assert!(
        doc["exports"]
            .as_array()
            .expect("exports")
            .iter()
            .any(|e| e["name"] == "_start" && e["kind"] == "func")
    );
    assert!(doc["manifest"].is_null());

    let via_manifest = json(&[repo_root().join("examples/hello.qyv").as_os_str()]);
    assert_eq!(
        via_manifest["sha256"], doc["sha256"],
        "the manifest's module is the same file"
    );
    assert_eq!(via_manifest["manifest"]["name"], "hello-qyvol");
}

#[test]
fn inspect_json_describes_a_component() {
    let doc = json(&[guest("probe-p2.wasm").as_os_str()]);
    assert_eq!(doc["kind"], "component");
    assert_eq!(doc["wasi"], "0.2");
    let imports = doc["imports"].as_array().expect("imports");
    assert!(
        imports.iter().any(|i| i["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("wasi:filesystem/preopens@0.2"))),
        "{imports:?}"
    );
    assert!(doc["exports"].as_array().expect("exports").iter().any(|e| {
        e["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("wasi:cli/run@0.2"))
    }));
}

#[test]
fn inspect_of_a_non_wasm_file_fails_clearly() {
    let out = qyvol()
        .arg("inspect")
        .arg(repo_root().join("README.md"))
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}
