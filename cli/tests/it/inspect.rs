//! `qyvol inspect`: kind, WASI generation, imports, exports, size and digest, for people and
//! for scripts.

use crate::fixture::{guest, qyvol, repo_root, stderr, stdout};

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

/// A manifest for the p2 probe (it imports files, sockets, HTTP and its environment) with a
/// read-only folder and a variable, and `extra` lines.
fn probe_manifest(s: &crate::fixture::Scratch, extra: &str) -> std::path::PathBuf {
    std::fs::copy(guest("probe-p2.wasm"), s.path("probe.wasm")).expect("copy");
    std::fs::create_dir_all(s.path("data")).expect("data");
    s.write(
        "app.qyv",
        format!(
            "version: 1\nname: probe\nentrypoint: probe.wasm\nruntime: wasi\nenv:\n  TOKEN: secret\nmounts:\n  - host: data\n    guest: /data\n    readonly: true\n{extra}"
        ),
    )
}

#[test]
fn inspect_policy_puts_the_grants_beside_what_the_module_imports() {
    let s = crate::fixture::Scratch::new();
    let app = probe_manifest(&s, "");
    let out = qyvol()
        .env("QYVOL_HOME", s.path("home"))
        .args(["inspect", "--policy"])
        .arg(&app)
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let data = s.path("data").canonicalize().expect("data");
    assert_eq!(
        stdout(&out),
        format!(
            "Lo que puede hacer probe (entorno native):\n  Carpetas: /data (solo lectura, {})\n  Puede conectarse a: nada\n  Puede escuchar en: nada\n  Variables: TOKEN\n  Límites: nada\n  El módulo importa: sistema de archivos, sockets, HTTP saliente, entorno\n  ⚠ importa red (sockets o HTTP) pero no tiene permiso de red: esas llamadas se rechazarán\n",
            data.display()
        )
    );
    // The variable's value is never shown.
    assert!(!stdout(&out).contains("secret"));

    let policy = |app: &std::path::Path| {
        let out = qyvol()
            .env("QYVOL_HOME", s.path("home"))
            .args(["inspect", "--policy", "--json"])
            .arg(app)
            .output()
            .expect("inspect");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json")
    };
    let doc = policy(&app);
    assert_eq!(doc["folders"][0]["guest"], "/data");
    assert_eq!(doc["folders"][0]["writable"], false);
    assert_eq!(doc["variables"], serde_json::json!(["TOKEN"]));
    assert_eq!(
        doc["notes"],
        serde_json::json!(["network-imported-not-granted"])
    );

    // Granted network: the note goes; the environment's limits show.
    let granted = probe_manifest(
        &s,
        "environment: edge\nnetwork:\n  allow:\n    - api.example.com:443\n",
    );
    let doc = policy(&granted);
    assert_eq!(doc["connect"], serde_json::json!(["api.example.com:443"]));
    assert_eq!(doc["notes"], serde_json::json!([]));
    assert_eq!(doc["environment"], "edge");
    assert!(doc["memory"].as_u64().is_some(), "{doc}");

    // A module that cannot use what it is given.
    std::fs::copy(
        repo_root().join("examples/hello.wasm"),
        s.path("hello.wasm"),
    )
    .expect("copy");
    let unused = s.write(
        "hello.qyv",
        "version: 1\nname: hello\nentrypoint: hello.wasm\nruntime: wasi\nnetwork:\n  allow:\n    - api.example.com:443\nmounts:\n  - host: data\n    guest: /data\n",
    );
    let doc = policy(&unused);
    assert_eq!(
        doc["notes"],
        serde_json::json!([
            "network-granted-not-imported",
            "folders-granted-not-imported"
        ])
    );
}
