//! The compile cache: hit, miss, corruption, foreign artifacts, concurrent writers, eviction,
//! an artifact edited with its mtime put back (HOSTILE row 36), stray and oddly named files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::{
    COMPILING, Guarded, Scratch, guest, qyvol_in, qyvol_std, repo_root, stderr, stdout,
};

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
            Guarded::spawn(
                qyvol_std()
                    .env("QYVOL_HOME", home.dir.path())
                    .args(["run", "-q"])
                    .arg(guest("probe-p1.wasm"))
                    .args(["exit", "5"]),
                Duration::from_secs(120),
            )
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().code(), Some(5));
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

/// Runs `module` (the probe with `exit 0`) with `QYVOL_HOME=home` and a cache cap, checking it
/// exits 0.
fn run_module(home: &Path, module: &Path, cap: Option<u64>) {
    let mut cmd = qyvol_in(home);
    if let Some(cap) = cap {
        cmd.env("QYVOL_CACHE_MAX", cap.to_string());
    }
    let out = cmd
        .args(["run", "-q"])
        .arg(module)
        .args(["exit", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The artifact in `home` that is not among `before`, i.e. the one the last run stored.
fn new_artifact(home: &Path, before: &[PathBuf]) -> PathBuf {
    let mut new: Vec<_> = artifacts(home)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new.remove(0)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").len()
}

#[test]
fn the_least_recently_used_entry_is_evicted_not_the_oldest() {
    let s = Scratch::new();
    let hello = repo_root().join("examples/hello.wasm");
    let probe = guest("probe-p1.wasm");
    let tiny = s.wat("tiny.wasm", r#"(module (func (export "_start")))"#);

    // The sizes of hello's and tiny's code, from a home of their own.
    let sizing = Scratch::new();
    run_module(sizing.dir.path(), &hello, None);
    let hello_size = size(&artifacts(sizing.dir.path())[0]);
    let before = artifacts(sizing.dir.path());
    run_module(sizing.dir.path(), &tiny, None);
    let tiny_size = size(&new_artifact(sizing.dir.path(), &before));

    let home = Scratch::new();
    let home = home.dir.path();
    run_module(home, &hello, None);
    let old = artifacts(home);
    run_module(home, &probe, None);
    let newer = new_artifact(home, &old);
    // Last use is recorded at most once a minute: the entries were last used 20 and 10
    // minutes ago, hello's first.
    let ago = |path: &Path, minutes: u64| {
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(60 * minutes);
        std::fs::File::options()
            .write(true)
            .open(path.with_extension("seal"))
            .and_then(|f| f.set_modified(when))
            .expect("backdate the seal");
    };
    ago(&old[0], 20);
    ago(&newer, 10);
    // The oldest entry is used again; the newer one is not.
    run_module(home, &hello, None);
    // Room for hello and tiny, not for the probe as well.
    let before = artifacts(home);
    run_module(home, &tiny, Some(hello_size + tiny_size));
    let stored = new_artifact(home, &before);
    let mut want = vec![old[0].clone(), stored];
    want.sort();
    assert_eq!(
        artifacts(home),
        want,
        "the recently used old entry stays, the unused newer one ({}) goes",
        newer.display()
    );
}

#[test]
fn an_artifact_edited_in_place_with_its_mtime_restored_is_recompiled_not_mapped() {
    use std::os::unix::fs::MetadataExt;
    let home = Scratch::new();
    let logged_hello = || {
        let out = crate::fixture::qyvol_logged(home.dir.path())
            .current_dir(repo_root())
            .args(["run", "-q", "examples/hello.qyv"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
        stderr(&out)
    };
    assert!(logged_hello().contains(COMPILING), "the first run compiles");
    let path = artifacts(home.dir.path()).remove(0);
    let good = std::fs::read(&path).expect("read");
    let sealed = std::fs::metadata(&path).expect("stat");
    let warm = logged_hello();
    assert!(
        !warm.contains(COMPILING),
        "an untouched entry is mapped: {warm}"
    );

    // Same length, same inode, other bytes in the code; then the mtime put back.
    let mut edited = good.clone();
    let mid = edited.len() / 2;
    for b in &mut edited[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&path, &edited).expect("edit in place");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    // Every reset moves the ctime to now; repeat it until now is past the clock tick in which
    // the seal was taken (timestamps are as coarse as the kernel's tick).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        file.set_modified(sealed.modified().expect("mtime"))
            .expect("restore mtime");
        let now = std::fs::metadata(&path).expect("stat");
        if (now.ctime(), now.ctime_nsec()) != (sealed.ctime(), sealed.ctime_nsec()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ctime never moved"
        );
    }
    let now = std::fs::metadata(&path).expect("stat");
    assert_eq!(
        (now.len(), now.ino(), now.modified().ok()),
        (sealed.len(), sealed.ino(), sealed.modified().ok()),
        "the edit kept size, inode and mtime"
    );

    let after = logged_hello();
    assert!(
        after.contains(COMPILING),
        "the edited code was mapped: {after}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), good, "stored again");
}

#[test]
fn cache_ls_lists_the_entries_among_odd_names_and_stray_files() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let home = Scratch::new();
    run_hello(home.dir.path());
    let real = artifacts(home.dir.path()).remove(0);
    let fingerprint = real.parent().expect("fingerprint folder");
    let sha256 = real
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('.'))
        .map(|(sha, _)| sha.to_string())
        .expect("artifact name");
    let lists_only_the_entry = || {
        let ls = qyvol_in(home.dir.path())
            .env("QYVOL_LANG", "en")
            .args(["cache", "ls"])
            .output()
            .expect("ls");
        assert_eq!(ls.status.code(), Some(0), "{}", stderr(&ls));
        let lines: Vec<String> = stdout(&ls).lines().map(String::from).collect();
        assert_eq!(lines.len(), 2, "header and one entry: {lines:?}");
        assert!(
            lines[1].starts_with(&format!("{}  module", &sha256[..12])),
            "{lines:?}"
        );
        let ls = qyvol_in(home.dir.path())
            .args(["cache", "ls", "--json"])
            .output()
            .expect("ls");
        assert_eq!(ls.status.code(), Some(0), "{}", stderr(&ls));
        let entries: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("json");
        assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
        assert_eq!(entries[0]["sha256"], sha256.as_str());
    };
    // Not `<sha256>.<kind>.cwasm`: a name with a character across byte 12, a name that is not
    // UTF-8, another pattern, and a folder with an artifact's name.
    std::fs::write(fingerprint.join("añññññññ.module.cwasm"), b"x").expect("write");
    std::fs::write(
        fingerprint.join(OsStr::from_bytes(b"\xff\xfe.module.cwasm")),
        b"x",
    )
    .expect("write");
    std::fs::write(fingerprint.join("notes.txt"), b"x").expect("write");
    std::fs::create_dir(fingerprint.join(format!("{}.module.cwasm", "0".repeat(64))))
        .expect("mkdir");
    lists_only_the_entry();
    // A file where a fingerprint folder belongs, and a folder whose name is not UTF-8.
    let code = home.path("cache/compiled");
    std::fs::write(code.join("stray"), b"x").expect("write");
    std::fs::create_dir(code.join(OsStr::from_bytes(b"\xff"))).expect("mkdir");
    lists_only_the_entry();
}

#[test]
fn a_stray_file_in_the_cache_does_not_stop_eviction() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    std::fs::write(home.path("cache/compiled/stray"), b"x").expect("write");
    // A cap below any artifact: storing the probe's code evicts every entry.
    run_module(home.dir.path(), &guest("probe-p1.wasm"), Some(1));
    assert_eq!(artifacts(home.dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn cache_clear_removes_stray_files_where_folders_belong() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    std::fs::remove_dir_all(home.path("cache/paths")).expect("rm paths");
    std::fs::write(home.path("cache/paths"), b"x").expect("write");
    std::fs::write(home.path("cache/info"), b"x").expect("write");
    std::fs::write(home.path("cache/compiled/stray"), b"x").expect("write");
    let out = qyvol_in(home.dir.path())
        .env("QYVOL_LANG", "en")
        .args(["cache", "clear"])
        .output()
        .expect("clear");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Cache cleared: "),
        "{}",
        stdout(&out)
    );
    for sub in ["code", "paths", "info"] {
        assert!(!home.path(&format!("cache/{sub}")).exists(), "{sub} left");
    }
    run_hello(home.dir.path());
    assert_eq!(artifacts(home.dir.path()).len(), 1);
}

#[test]
fn a_temp_file_a_killed_writer_left_an_hour_ago_is_swept_when_code_is_stored() {
    let home = Scratch::new();
    run_hello(home.dir.path());
    let folder = artifacts(home.dir.path())[0]
        .parent()
        .expect("fingerprint folder")
        .to_path_buf();
    let old = folder.join(".tmpKILLED");
    let fresh = folder.join(".tmpWRITING");
    for f in [&old, &fresh] {
        std::fs::write(f, vec![0u8; 4096]).expect("write");
    }
    let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(hours_ago))
        .expect("backdate");
    // Storing the probe's code is what sweeps.
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(guest("probe-p1.wasm"))
        .args(["exit", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!old.exists(), "the abandoned temp file is removed");
    assert!(
        fresh.exists(),
        "a temp file a writer may still rename is kept"
    );
}
