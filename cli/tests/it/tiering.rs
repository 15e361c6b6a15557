//! Tiered first runs: a big module's first run on Winch, Cranelift's code compiled by a detached
//! helper after the run exits, `--compiler`, the precompiled layer winning, and the helper
//! refusing bytes that are not the module it was named for.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fixture::{
    COMPILING, Scratch, padded_hello, qyvol_in, qyvol_logged, repo_root, stderr, stdout,
};

const HELLO: &str = "👋 ¡Hola desde Qyvol WASI!\n";

/// examples/hello.wasm grown past the tiering threshold (1 MiB): the same program, big enough
/// that `auto` starts it on Winch.
fn big_hello(s: &Scratch) -> PathBuf {
    s.write("big.wasm", padded_hello(1200 * 1024))
}

/// `qyvol __tier-up` run by hand on `home`'s cache for a module named by `sha256`, given `wasm`.
fn helper(home: &Path, sha256: &str, wasm: Vec<u8>) -> std::process::Output {
    qyvol_in(home)
        .arg("__tier-up")
        .arg(home.join("cache"))
        .arg("1000000000")
        .arg("module")
        .arg(sha256)
        .args(["-", "-", "concurrent", "cranelift"])
        .write_stdin(wasm)
        .output()
        .expect("helper")
}

fn entries(home: &Path) -> Vec<serde_json::Value> {
    let ls = qyvol_in(home)
        .args(["cache", "ls", "--json"])
        .output()
        .expect("ls");
    assert_eq!(ls.status.code(), Some(0), "{}", stderr(&ls));
    serde_json::from_slice::<serde_json::Value>(&ls.stdout)
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn tiers(home: &Path) -> Vec<String> {
    let mut t: Vec<String> = entries(home)
        .iter()
        .map(|e| e["tier"].as_str().unwrap_or("?").to_string())
        .collect();
    t.sort();
    t
}

/// Waits for the background helper to leave Cranelift's code as the only entry: the helper
/// runs at idle priority, so this polls the cache's state (never a fixed sleep) with a
/// generous deadline for a loaded machine.
fn await_cranelift(home: &Path) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let now = tiers(home);
        if now == ["cranelift"] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the helper never replaced Winch's code: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_big(home: &Path, big: &Path, flags: &[&str]) -> String {
    let out = qyvol_logged(home)
        .args(["run", "-q"])
        .args(flags)
        .arg(big)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), HELLO);
    stderr(&out)
}

#[test]
fn a_big_modules_first_run_is_on_winch_and_a_helper_leaves_cranelift_code_after_it_exits() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    let first = run_big(home.dir.path(), &big, &[]);
    assert!(
        first.contains(COMPILING) && first.contains("tier=\"winch\""),
        "{first}"
    );
    assert!(
        first.contains("compiling with cranelift in the background"),
        "{first}"
    );
    // The run has exited; the helper goes on without it.
    await_cranelift(home.dir.path());
    let second = run_big(home.dir.path(), &big, &[]);
    assert!(!second.contains(COMPILING), "{second}");
    assert!(
        second.contains("mapped precompiled code") && second.contains("tier=\"cranelift\""),
        "{second}"
    );
}

#[test]
fn compiler_cranelift_stores_optimised_code_before_the_run_exits() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    let log = run_big(home.dir.path(), &big, &["--compiler", "cranelift"]);
    assert!(log.contains("tier=\"cranelift\""), "{log}");
    assert!(!log.contains("in the background"), "{log}");
    assert_eq!(tiers(home.dir.path()), ["cranelift"]);
}

#[test]
fn winch_code_left_without_a_helper_is_tiered_up_by_the_next_auto_run() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    let log = run_big(home.dir.path(), &big, &["--compiler", "winch"]);
    assert!(
        log.contains(COMPILING) && log.contains("tier=\"winch\""),
        "{log}"
    );
    assert!(!log.contains("in the background"), "{log}");
    let ls = qyvol_in(home.dir.path())
        .env("QYVOL_LANG", "en")
        .args(["cache", "ls"])
        .output()
        .expect("ls");
    let text = stdout(&ls);
    assert!(
        text.lines().next().is_some_and(|h| h.contains("COMPILER")),
        "{text}"
    );
    assert!(
        text.lines().nth(1).is_some_and(|l| l.contains(" winch ")),
        "{text}"
    );
    assert_eq!(entries(home.dir.path())[0]["upgrading"], false);

    // `auto` maps Winch's code at once and starts the helper the winch run never did.
    let next = run_big(home.dir.path(), &big, &[]);
    assert!(!next.contains(COMPILING), "{next}");
    assert!(
        next.contains("mapped precompiled code") && next.contains("tier=\"winch\""),
        "{next}"
    );
    assert!(next.contains("in the background"), "{next}");
    await_cranelift(home.dir.path());
}

#[test]
fn small_modules_compile_on_cranelift_without_a_helper() {
    let home = Scratch::new();
    let out = qyvol_logged(home.dir.path())
        .args(["run", "-q"])
        .arg(repo_root().join("examples/hello.wasm"))
        .output()
        .expect("run");
    assert_eq!(stdout(&out), HELLO);
    let log = stderr(&out);
    assert!(
        log.contains(COMPILING) && log.contains("tier=\"cranelift\""),
        "{log}"
    );
    assert!(!log.contains("in the background"), "{log}");
    assert_eq!(tiers(home.dir.path()), ["cranelift"]);
}

#[test]
fn a_bundles_precompiled_code_wins_over_both_tiers() {
    let (home, s) = (Scratch::new(), Scratch::new());
    big_hello(&s);
    let manifest = s.write(
        "big.qyv",
        "name: big\nentrypoint: big.wasm\nruntime: wasi\n",
    );
    let built = qyvol_in(home.dir.path())
        .arg("build")
        .arg(&manifest)
        .output()
        .expect("build");
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let cleared = qyvol_in(home.dir.path())
        .args(["cache", "clear"])
        .output()
        .expect("clear");
    assert_eq!(cleared.status.code(), Some(0));
    let log = run_big(home.dir.path(), &s.path("big.qyvc"), &[]);
    assert!(!log.contains(COMPILING), "{log}");
    assert!(!log.contains("tier=\"winch\""), "{log}");
    assert_eq!(tiers(home.dir.path()), ["cranelift"]);
}

#[test]
fn the_helper_refuses_bytes_that_are_not_the_module_it_was_named_for() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    let out = helper(
        home.dir.path(),
        &"ab".repeat(32),
        std::fs::read(&big).expect("read"),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("sha256"), "{}", stderr(&out));
    assert!(entries(home.dir.path()).is_empty());

    let usage = qyvol_in(home.dir.path())
        .args(["__tier-up", "only-one"])
        .output()
        .expect("helper");
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    assert!(stderr(&usage).contains("usage:"), "{}", stderr(&usage));
}

#[test]
fn an_unknown_compiler_is_a_usage_error_naming_the_choices() {
    let out = crate::fixture::qyvol()
        .args(["run", "--compiler", "llvm"])
        .arg(repo_root().join("examples/hello.wasm"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("auto") && err.contains("cranelift") && err.contains("winch"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

/// Where the helpers of the module behind `home`'s Winch entry count their tries.
fn attempts_file(home: &Path) -> PathBuf {
    let winch = entries(home)
        .into_iter()
        .find(|e| e["tier"] == "winch")
        .expect("a winch entry");
    home.join("cache/tiering").join(format!(
        "{}.module.{}.attempts",
        winch["sha256"].as_str().expect("sha256"),
        winch["fingerprint"].as_str().expect("fingerprint")
    ))
}

#[test]
fn a_module_whose_helpers_died_three_times_stays_on_winch_without_a_new_helper() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    run_big(home.dir.path(), &big, &["--compiler", "winch"]);
    let attempts = attempts_file(home.dir.path());
    // Three helpers counted themselves and never finished (killed by their memory limit, say).
    std::fs::create_dir_all(attempts.parent().expect("tiering")).expect("mkdir");
    std::fs::write(&attempts, "3").expect("write attempts");
    let log = run_big(home.dir.path(), &big, &[]);
    assert!(log.contains("tier=\"winch\""), "{log}");
    assert!(!log.contains("in the background"), "{log}");
    assert_eq!(tiers(home.dir.path()), ["winch"]);
}

#[test]
fn the_helper_follows_no_symlink_planted_for_its_locks() {
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    let victim = s.write("victim.txt", "keep me\n");
    let tiering = home.path("cache/tiering");
    std::fs::create_dir_all(&tiering).expect("mkdir");
    std::os::unix::fs::symlink(&victim, tiering.join("slot.lock")).expect("symlink");
    let wasm = std::fs::read(&big).expect("read");
    let sha256 = crate::fixture::inspect_json(home.dir.path(), &big)["sha256"]
        .as_str()
        .expect("sha256")
        .to_string();
    let out = helper(home.dir.path(), &sha256, wasm);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me\n");
    assert!(entries(home.dir.path()).is_empty());
}

#[test]
fn a_pipe_the_caller_passed_in_closes_when_the_run_exits_not_when_its_helper_does() {
    use std::io::Read;
    let (home, s) = (Scratch::new(), Scratch::new());
    let big = big_hello(&s);
    // Holding the compilation slot keeps the helper waiting until this test lets it go.
    let tiering = home.path("cache/tiering");
    std::fs::create_dir_all(&tiering).expect("mkdir");
    let slot = std::fs::File::create(tiering.join("slot.lock")).expect("slot");
    slot.lock().expect("lock the slot");
    // fd 9 is a copy of the shell's stdout (our pipe), inherited by qyvol without CLOEXEC.
    let mut shell = std::process::Command::new("bash")
        .arg("-c")
        .arg("\"$QYVOL\" run -q \"$1\" 9>&1 >/dev/null 2>&1; echo done")
        .arg("bash")
        .arg(&big)
        .env("QYVOL", env!("CARGO_BIN_EXE_qyvol"))
        .env("QYVOL_HOME", home.dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("bash");
    let mut pipe = shell.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let text = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the pipe stayed open after qyvol exited: its helper kept fd 9");
    assert_eq!(text, "done\n");
    shell.wait().expect("wait");
    assert_eq!(tiers(home.dir.path()), ["winch"]);
    drop(slot);
    await_cranelift(home.dir.path());
}
