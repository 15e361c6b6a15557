//! The compile cache: hit, miss, corruption, foreign artifacts, concurrent writers, eviction.

use std::path::{Path, PathBuf};

use crate::{Scratch, guest, qyvol_in, repo_root, stderr, stdout};

fn artifacts(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(fps) = std::fs::read_dir(home.join("cache/compiled")) {
        for fp in fps.flatten() {
            for f in std::fs::read_dir(fp.path()).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "cwasm") {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

fn run_hello(home: &Path) {
    let out = qyvol_in(home)
        .current_dir(repo_root())
        .args(["run", "-q", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
}

#[test]
fn a_second_run_maps_the_stored_code_instead_of_compiling() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    let stored = artifacts(home.dir.path());
    assert_eq!(stored.len(), 1, "one artifact after the first run");
    let before = std::fs::metadata(&stored[0])
        .expect("stat")
        .modified()
        .expect("mtime");
    run_hello(home.dir.path());
    assert_eq!(artifacts(home.dir.path()), stored, "a hit adds nothing");
    let after = std::fs::metadata(&stored[0])
        .expect("stat")
        .modified()
        .expect("mtime");
    assert_eq!(before, after, "a hit does not rewrite the artifact");

    let ls = qyvol_in(home.dir.path())
        .args(["cache", "ls", "--json"])
        .output()
        .expect("ls");
    let entries: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("json");
    assert_eq!(entries.as_array().map(Vec::len), Some(1));
    assert_eq!(entries[0]["kind"], "module");
}

#[test]
fn another_module_or_engine_setting_is_a_miss() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(guest("probe-p2.wasm"))
        .args(["exit", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(artifacts(home.dir.path()).len(), 2);
    // Fuel metering changes the generated code: a separate entry under another fingerprint.
    let out = qyvol_in(home.dir.path())
        .current_dir(repo_root())
        .args(["run", "-q", "--fuel", "100000000", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = artifacts(home.dir.path());
    assert_eq!(all.len(), 3);
    let fingerprints: std::collections::BTreeSet<_> =
        all.iter().filter_map(|p| p.parent()).collect();
    assert_eq!(fingerprints.len(), 2);
}

#[test]
fn a_changed_wasm_file_at_the_same_path_is_not_served_stale_code() {
    let home = Scratch::new();
    let s = Scratch::new();
    let wasm = s.path("app.wasm");
    std::fs::copy(repo_root().join("examples/hello.wasm"), &wasm).expect("copy");
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&wasm)
        .output()
        .expect("run");
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    std::fs::copy(guest("probe-p1.wasm"), &wasm).expect("replace the module");
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&wasm)
        .args(["exit", "7"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(7),
        "the new module ran: {}",
        stderr(&out)
    );
}

#[test]
fn corrupted_or_truncated_artifacts_are_recompiled_not_run() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    let path = artifacts(home.dir.path()).remove(0);
    let good = std::fs::read(&path).expect("read");

    // Same size, other bytes in the middle (in the code).
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&path, &flipped).expect("corrupt");
    run_hello(home.dir.path());
    assert_eq!(
        std::fs::read(&path).expect("read"),
        good,
        "recompiled and stored again"
    );

    std::fs::write(&path, &good[..good.len() / 3]).expect("truncate");
    run_hello(home.dir.path());
    assert_eq!(std::fs::read(&path).expect("read"), good);

    std::fs::write(&path, b"").expect("empty");
    run_hello(home.dir.path());
    assert_eq!(std::fs::read(&path).expect("read"), good);
}

#[test]
fn a_foreign_artifact_with_a_valid_seal_is_refused_by_wasmtime_and_recompiled() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    let native = artifacts(home.dir.path()).remove(0);
    // Code compiled with fuel metering, dropped under the plain engine's key with its seal.
    let out = qyvol_in(home.dir.path())
        .current_dir(repo_root())
        .args(["run", "-q", "--fuel", "100000000", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let foreign = artifacts(home.dir.path())
        .into_iter()
        .find(|p| p != &native)
        .expect("fuel artifact");
    let good = std::fs::read(&native).expect("read");
    std::fs::copy(&foreign, &native).expect("swap code");
    std::fs::copy(
        foreign.with_extension("seal"),
        native.with_extension("seal"),
    )
    .expect("swap seal");
    run_hello(home.dir.path());
    assert_eq!(
        std::fs::read(&native).expect("read"),
        good,
        "recompiled for this engine"
    );
}

#[test]
fn concurrent_first_runs_of_one_module_all_succeed() {
    let home = Scratch::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_qyvol"))
                .env("QYVOL_HOME", home.dir.path())
                .args(["run", "-q"])
                .arg(guest("probe-p1.wasm"))
                .args(["exit", "5"])
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().expect("wait").code(), Some(5));
    }
    assert_eq!(artifacts(home.dir.path()).len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(artifacts(home.dir.path())[0].parent().expect("dir"))
        .expect("ls")
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().contains(".module."))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(guest("probe-p1.wasm"))
        .args(["exit", "5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(5));
}

#[test]
fn no_cache_writes_nothing_and_clear_removes_everything() {
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .current_dir(repo_root())
        .args(["run", "-q", "--no-cache", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(artifacts(home.dir.path()).is_empty());
    run_hello(home.dir.path());
    assert_eq!(artifacts(home.dir.path()).len(), 1);
    let out = qyvol_in(home.dir.path())
        .env("QYVOL_LANG", "en")
        .args(["cache", "clear"])
        .output()
        .expect("clear");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with("Cache cleared: "),
        "{}",
        stdout(&out)
    );
    assert!(artifacts(home.dir.path()).is_empty());
}

#[test]
fn the_least_recently_used_entries_are_evicted_past_the_cap() {
    let probe = |home: &Path, cap: Option<u64>| {
        let mut cmd = qyvol_in(home);
        if let Some(cap) = cap {
            cmd.env("QYVOL_CACHE_MAX", cap.to_string());
        }
        let out = cmd
            .args(["run", "-q"])
            .arg(guest("probe-p1.wasm"))
            .args(["exit", "0"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
    };
    let sizing = Scratch::new();
    probe(sizing.dir.path(), None);
    let probe_size = std::fs::metadata(&artifacts(sizing.dir.path())[0])
        .expect("stat")
        .len();

    let home = Scratch::new();
    run_hello(home.dir.path());
    let hello = artifacts(home.dir.path());
    let hello_size = std::fs::metadata(&hello[0]).expect("stat").len();
    // Room for either artifact, not for both.
    let cap = hello_size.max(probe_size) + 1024;
    assert!(cap < hello_size + probe_size);
    probe(home.dir.path(), Some(cap));
    let left = artifacts(home.dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left, hello, "the older entry went");
}
