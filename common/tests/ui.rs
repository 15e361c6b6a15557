//! Golden tests for manifests: each `tests/ui/<case>.qyv` is loaded and the outcome compared with
//! `<case>.out`. Re-bless with `QYVOL_BLESS=1 cargo test -p qyvol-common --test ui`.

use std::path::Path;

use qyvol_common::{LoadOptions, Manifest};

fn outcome(path: &Path) -> String {
    match Manifest::load(path, LoadOptions::default()) {
        Ok(m) => {
            let policy = m.environment.policy();
            let check = m
                .check_policy(&policy)
                .err()
                .map(|v| format!("\npolicy: {v}"))
                .unwrap_or_default();
            format!(
                "ok: name={} runtime={:?} environment={} args={:?} env={:?} mounts={} limits={:?} network=[{}]{} route={} max_body={:?}{check}\n",
                m.name,
                m.runtime,
                m.environment.as_str(),
                m.args,
                m.env,
                m.mounts
                    .iter()
                    .map(|m| format!("{}:{:?}", m.guest.as_str(), m.readonly))
                    .collect::<Vec<_>>()
                    .join(","),
                m.limits,
                m.network
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                m.block_private
                    .map(|b| format!(" block_private={b}"))
                    .unwrap_or_default(),
                m.http.route,
                m.http.max_body,
            )
        }
        Err(e) => format!("error[{:?}]: {e}\n", e.kind),
    }
}

#[test]
fn manifest_cases_match_their_golden_files() {
    let bless = std::env::var_os("QYVOL_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir("tests/ui")
        .expect("tests/ui exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "qyv"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "golden cases went missing");
    let mut failures = Vec::new();
    for case in &cases {
        let got = outcome(case);
        let golden = case.with_extension("out");
        if bless {
            std::fs::write(&golden, &got).expect("write golden file");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("{}:\n  want: {want}  got:  {got}", case.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (QYVOL_BLESS=1 to accept):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn oversized_manifest_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.qyv");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(100 * 1024 * 1024).expect("grow to 100 MB");
    let err = Manifest::load(&path, LoadOptions::default()).expect_err("must be refused");
    assert!(err.to_string().contains("larger than 1MiB"), "{err}");
}

#[cfg(unix)]
#[test]
fn symlinked_host_folder_is_refused_unless_outside_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy("tests/ui/tiny.wasm", dir.path().join("tiny.wasm")).expect("copy");
    std::os::unix::fs::symlink("/etc", dir.path().join("data")).expect("symlink");
    let path = dir.path().join("app.qyv");
    std::fs::write(
        &path,
        "name: a\nentrypoint: tiny.wasm\nruntime: wasi\nmounts: [{ host: data, guest: /data }]\n",
    )
    .expect("write");
    let err = Manifest::load(&path, LoadOptions::default()).expect_err("must be refused");
    assert!(
        err.to_string()
            .ends_with("mount host `data`: the path goes through a symlink, and symlinks are not followed to a mount; name the folder itself"),
        "{err}"
    );
    assert_eq!(err.position.map(|p| p.line), Some(4));
    let ok = Manifest::load(
        &path,
        LoadOptions {
            allow_outside: true,
            ..LoadOptions::default()
        },
    )
    .expect("allowed with the flag");
    assert_eq!(ok.mounts[0].host, Path::new("/etc"));
}
