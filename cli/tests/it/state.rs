//! Apps with state and configuration through `qyvol run`: `wasi:keyvalue` buckets that persist
//! between runs, granted only by the operator, within quotas, one app's invisible to another;
//! `wasi:config` variables and secrets, with declared names required.

use crate::fixture::*;

/// `qyvol run` of the key-value probe with `args`, in `home`: (exit code, stdout, stderr).
fn kv(
    home: &std::path::Path,
    flags: &[&str],
    file: &std::path::Path,
    args: &[&str],
) -> (i32, String, String) {
    let out = qyvol_in(home)
        .env("QYVOL_LANG", "en")
        .args(["run", "-q"])
        .args(flags)
        .arg(file)
        .args(args)
        .output()
        .expect("run");
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

fn probe_manifest(s: &Scratch, name: &str, extra: &str) -> std::path::PathBuf {
    s.guest("kv-probe.wasm");
    s.write(
        &format!("{name}.qyv"),
        format!("name: {name}\nentrypoint: kv-probe.wasm\nruntime: wasi\n{extra}"),
    )
}

#[test]
fn a_granted_bucket_keeps_its_count_between_runs() {
    let s = Scratch::new();
    let app = probe_manifest(&s, "tally", "keyvalue: [counts]\n");
    let first = kv(&s.path("h"), &[], &app, &["incr", "counts", "visits", "3"]);
    assert_eq!(first.1.trim(), "3", "{first:?}");
    let second = kv(&s.path("h"), &[], &app, &["incr", "counts", "visits", "4"]);
    assert_eq!(second.1.trim(), "7", "{second:?}");
    let file = s.path("h/keyvalue/tally.redb");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("the app's store")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "others may not read the store: {mode:o}");
}

#[test]
fn a_bucket_nobody_granted_is_access_denied() {
    let s = Scratch::new();
    let wasm = s.guest("kv-probe.wasm");
    let (code, out, _) = kv(&s.path("h"), &[], &wasm, &["open", "counts"]);
    assert_eq!(out.trim(), "open counts: Error::AccessDenied");
    assert_ne!(code, 0);
    // A grant of one bucket does not open another.
    let (_, out, _) = kv(
        &s.path("h"),
        &["--keyvalue", "counts"],
        &wasm,
        &["open", "other"],
    );
    assert_eq!(out.trim(), "open other: Error::AccessDenied");
    let (_, out, _) = kv(
        &s.path("h"),
        &["--keyvalue", "counts"],
        &wasm,
        &["open", "counts"],
    );
    assert_eq!(out.trim(), "opened counts");
}

#[test]
fn one_apps_keys_are_invisible_to_another_with_the_same_bucket_name() {
    let s = Scratch::new();
    let a = probe_manifest(&s, "alpha", "keyvalue: [shared]\n");
    let b = probe_manifest(&s, "beta", "keyvalue: [shared]\n");
    assert_eq!(
        kv(
            &s.path("h"),
            &[],
            &a,
            &["set", "shared", "k", "alpha-secret"]
        )
        .1
        .trim(),
        "set k"
    );
    assert_eq!(
        kv(&s.path("h"), &[], &b, &["get", "shared", "k"]).1.trim(),
        "(none)"
    );
    assert_eq!(
        kv(&s.path("h"), &[], &a, &["get", "shared", "k"]).1.trim(),
        "alpha-secret"
    );
}

#[test]
fn a_bucket_refuses_writes_past_its_key_quota_and_keeps_what_it_had() {
    let s = Scratch::new();
    let app = probe_manifest(
        &s,
        "filler",
        "keyvalue: [b]\nlimits:\n  keyvalue:\n    max_keys: 25\n",
    );
    let (_, out, err) = kv(&s.path("h"), &[], &app, &["fill", "b", "10"]);
    assert!(
        out.starts_with(
            "stored 25 then: Error::Other(\"bucket `b` is full: it holds its limit of 25 keys"
        ),
        "{out}"
    );
    assert!(
        err.contains("filler: key-value write refused: bucket `b` is full"),
        "the operator is told too: {err}"
    );
    assert_eq!(
        kv(&s.path("h"), &[], &app, &["list", "b"]).1.trim(),
        "25 keys; first Some(\"k00000000\")"
    );
}

#[test]
fn a_bucket_refuses_writes_past_its_byte_quota() {
    let s = Scratch::new();
    let app = probe_manifest(
        &s,
        "bytes",
        "keyvalue: [b]\nlimits:\n  keyvalue:\n    max_bytes: 64KiB\n",
    );
    let (_, out, _) = kv(&s.path("h"), &[], &app, &["fill", "b", "4096"]);
    // Each key is 9 bytes and its value 4,096: 15 fit in 64 KiB, the 16th would not.
    assert!(out.starts_with("stored 15 then: Error::Other(\"bucket `b` is full: this write would take it past its limit of 64KiB"), "{out}");
}

#[test]
fn huge_keys_and_values_are_refused_with_the_limit_named() {
    let s = Scratch::new();
    let wasm = s.guest("kv-probe.wasm");
    let g = ["--keyvalue", "b"];
    assert_eq!(
        kv(&s.path("h"), &g, &wasm, &["setlen", "b", "1025", "1"])
            .1
            .trim(),
        "refused: Error::Other(\"a key of 1025 bytes is refused in bucket `b`: keys are at most 1024 bytes\")"
    );
    assert_eq!(
        kv(&s.path("h"), &g, &wasm, &["setlen", "b", "1024", "1"])
            .1
            .trim(),
        "stored"
    );
    assert_eq!(
        kv(&s.path("h"), &g, &wasm, &["setlen", "b", "8", "1048577"])
            .1
            .trim(),
        "refused: Error::Other(\"a value of 1048577 bytes is refused in bucket `b`: values are at most 1MiB (limits.keyvalue.max_value)\")"
    );
    assert_eq!(
        kv(&s.path("h"), &g, &wasm, &["setlen", "b", "8", "1048576"])
            .1
            .trim(),
        "stored"
    );
}

#[test]
fn binary_values_and_unicode_keys_round_trip_and_a_key_that_is_not_utf8_traps() {
    let s = Scratch::new();
    let wasm = s.guest("kv-probe.wasm");
    let g = ["--keyvalue", "b"];
    assert_eq!(
        kv(&s.path("h"), &g, &wasm, &["binary", "b"]).1.trim(),
        "binary ok"
    );
    let (code, out, err) = kv(&s.path("h"), &g, &wasm, &["badkey", "b"]);
    assert_eq!(code, 134, "{out} {err}");
    assert!(err.contains("invalid utf-8"), "{err}");
    // Nothing was written by the refused call: only the binary test's key is there.
    assert_eq!(
        kv(&s.path("h"), &g, &wasm, &["list", "b"]).1.trim(),
        "1 keys; first Some(\"clé\\0\\u{7f}ñ\")"
    );
}

#[test]
fn batch_operations_read_write_and_delete_together() {
    let s = Scratch::new();
    let wasm = s.guest("kv-probe.wasm");
    let (_, out, _) = kv(&s.path("h"), &["--keyvalue", "b"], &wasm, &["batch", "b"]);
    assert_eq!(
        out,
        "[Some((\"a\", [49])), Some((\"b\", [50])), None]\na after delete: Ok(false)\n"
    );
}

#[test]
fn a_bundles_manifest_only_requests_buckets_and_cannot_raise_its_quota() {
    let s = Scratch::new();
    let app = probe_manifest(
        &s,
        "packed",
        "keyvalue: [b]\nlimits:\n  keyvalue:\n    max_keys: 1000000000\n    max_value: 8\n",
    );
    let bundle = s.path("packed.qyvc");
    build(&s.path("h"), &app, &bundle);
    let (code, out, err) = kv(&s.path("h"), &[], &bundle, &["open", "b"]);
    assert_eq!(out.trim(), "open b: Error::AccessDenied");
    assert_ne!(code, 0);
    assert!(
        err.contains("The package asks for the key-value bucket `b`: not granted; grant it with `--keyvalue b`"),
        "{err}"
    );
    // Granted by the operator, its own lower quota holds (values of at most 8 bytes).
    let (_, out, _) = kv(
        &s.path("h"),
        &["--keyvalue", "b"],
        &bundle,
        &["setlen", "b", "1", "9"],
    );
    assert!(out.contains("values are at most 8B"), "{out}");
    let (_, out, _) = kv(
        &s.path("h"),
        &["--keyvalue", "b"],
        &bundle,
        &["setlen", "b", "1", "8"],
    );
    assert_eq!(out.trim(), "stored");
}

#[test]
fn a_manifest_listing_thousands_of_buckets_is_refused_before_anything_opens() {
    let s = Scratch::new();
    let names: Vec<String> = (0..5000).map(|i| format!("b{i}")).collect();
    let app = probe_manifest(&s, "greedy", &format!("keyvalue: [{}]\n", names.join(", ")));
    let (code, _, err) = kv(&s.path("h"), &[], &app, &["open", "b0"]);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("`keyvalue` lists 5000 names; a manifest may list at most 64"),
        "{err}"
    );
    assert!(!s.path("h/keyvalue").exists(), "no store was opened");
}

#[test]
fn variables_come_from_the_manifest_then_the_operator() {
    let s = Scratch::new();
    let app = probe_manifest(&s, "conf", "config:\n  greeting: Hola\n  name: mundo\n");
    assert_eq!(
        kv(&s.path("h"), &[], &app, &["config", "greeting"])
            .1
            .trim(),
        "greeting=Hola"
    );
    let (_, out, _) = kv(
        &s.path("h"),
        &["--config", "name=Ana"],
        &app,
        &["config", "name"],
    );
    assert_eq!(out.trim(), "name=Ana");
    let (_, out, _) = kv(
        &s.path("h"),
        &["--config", "extra=1"],
        &app,
        &["config-names"],
    );
    assert_eq!(out.trim(), "extra,greeting,name");
}

#[test]
fn declared_variables_and_secrets_nobody_gave_are_named_and_the_run_refused() {
    let s = Scratch::new();
    let app = probe_manifest(
        &s,
        "needy",
        "config:\n  region: ~\nsecrets: [api_key, db_password]\n",
    );
    let (code, out, err) = kv(&s.path("h"), &[], &app, &["config", "region"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("`needy` needs variable `region` (`--config region=VALUE`), secret `api_key` (`--secret api_key=FILE`, or `=-` for stdin), secret `db_password`"),
        "{err}"
    );
    assert!(out.is_empty(), "the guest never ran: {out}");
}

#[test]
fn a_secret_is_read_from_a_file_or_stdin_and_reaches_the_guest_alone() {
    let s = Scratch::new();
    let app = probe_manifest(&s, "secretive", "secrets: [api_key]\n");
    let file = s.write("key.txt", "s3cr3t-value");
    let flag = format!("api_key={}", file.display());
    let (code, out, err) = kv(
        &s.path("h"),
        &["--secret", &flag],
        &app,
        &["config", "api_key"],
    );
    assert_eq!((code, out.trim()), (0, "api_key=s3cr3t-value"), "{err}");
    let out = qyvol_in(&s.path("h"))
        .args(["run", "-q", "--secret", "api_key=-"])
        .arg(&app)
        .args(["config", "api_key"])
        .write_stdin("from-stdin")
        .output()
        .expect("run");
    assert_eq!(stdout(&out).trim(), "api_key=from-stdin");
    // Not a value on the command line.
    let (code, _, err) = kv(
        &s.path("h"),
        &["--secret", "api_key"],
        &app,
        &["config", "api_key"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("never given on the command line"), "{err}");
}

#[test]
fn qyvol_serve_keeps_the_counters_count_across_restarts_of_the_server() {
    let s = Scratch::new();
    let token = s.write("token", "t0k");
    let serve = || {
        let mut cmd = qyvol_std();
        cmd.env("QYVOL_HOME", s.path("h"))
            .args(["serve", "--listen", "127.0.0.1:0", "--secret"])
            .arg(format!("admin_token={}", token.display()))
            .arg(repo_root().join("examples/counter/counter.qyv"));
        Served::spawn(cmd)
    };
    let first = serve();
    assert_eq!(first.get("/").body, "Hola, mundo! You are visitor 1.\n");
    assert_eq!(first.get("/").body, "Hola, mundo! You are visitor 2.\n");
    drop(first);
    let second = serve();
    assert_eq!(second.get("/").body, "Hola, mundo! You are visitor 3.\n");
}

#[test]
fn inspect_names_a_manifests_buckets_variables_and_secrets_but_no_value() {
    let s = Scratch::new();
    let app = probe_manifest(
        &s,
        "shown",
        "keyvalue: [counts]\nconfig:\n  greeting: not-this-value\nsecrets: [api_key]\n",
    );
    let out = qyvol_in(&s.path("h"))
        .env("QYVOL_LANG", "en")
        .args(["inspect", "--json"])
        .arg(&app)
        .output()
        .expect("inspect");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["manifest"]["keyvalue"], serde_json::json!(["counts"]));
    assert_eq!(doc["manifest"]["config"], serde_json::json!(["greeting"]));
    assert_eq!(doc["manifest"]["secrets"], serde_json::json!(["api_key"]));
    let text = qyvol_in(&s.path("h"))
        .env("QYVOL_LANG", "en")
        .arg("inspect")
        .arg(&app)
        .output()
        .expect("inspect");
    let text = stdout(&text);
    assert!(
        text.contains("keyvalue:     counts") && text.contains("secrets:      api_key"),
        "{text}"
    );
    assert!(!text.contains("not-this-value") && !stdout(&out).contains("not-this-value"));
}

#[test]
fn a_damaged_store_is_a_clear_error_without_a_panic_and_the_run_says_whose_store_it_uses() {
    let s = Scratch::new();
    let app = probe_manifest(&s, "fragile", "keyvalue: [b]\n");
    let out = qyvol_in(&s.path("h"))
        .env("QYVOL_LANG", "en")
        .arg("run")
        .arg(&app)
        .args(["set", "b", "k", "v"])
        .output()
        .expect("run");
    assert!(
        stderr(&out).contains(&format!(
            "Buckets of `fragile`: b ({})",
            s.path("h/keyvalue/fragile.redb").display()
        )),
        "{}",
        stderr(&out)
    );
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("h/keyvalue/fragile.redb"))
        .expect("the store");
    file.set_len(1000).expect("truncate");
    let (code, out, err) = kv(&s.path("h"), &[], &app, &["get", "b", "k"]);
    assert_eq!(code, 69, "{out}{err}");
    assert!(
        err.contains("cannot be opened (it is damaged; move it away to start again)"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_store_another_process_holds_is_refused_with_the_reason() {
    let s = Scratch::new();
    let token = s.write("token", "t");
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", s.path("h"))
        .args(["serve", "--listen", "127.0.0.1:0", "--secret"])
        .arg(format!("admin_token={}", token.display()))
        .arg(repo_root().join("examples/counter/counter.qyv"));
    let served = Served::spawn(cmd);
    assert_eq!(served.get("/").status, 200);
    // Another app calling itself `counter`, in the same home, while serve holds the store.
    let app = probe_manifest(&s, "counter", "keyvalue: [counts]\n");
    let (code, _, err) = kv(&s.path("h"), &[], &app, &["get", "counts", "visits"]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("another Qyvol process has it open"), "{err}");
}

#[test]
fn a_secret_typed_where_its_file_goes_is_not_repeated_in_the_error() {
    let s = Scratch::new();
    let app = probe_manifest(&s, "typo", "secrets: [api_key]\n");
    let (code, _, err) = kv(
        &s.path("h"),
        &["--secret", "api_key=hunter2-literal"],
        &app,
        &["config", "api_key"],
    );
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains("secret `api_key`: the file it names cannot be opened"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
