//! Signed images against a real registry (`docker-registry`): keys in cosign's format,
//! signatures stored as cosign stores them (`sha256-<hex>.sig`), `qyvol verify`, and the trust
//! policy (`QYVOL_HOME/policy.yaml`) enforced at pull — a refused image leaves nothing in the
//! store.

use std::path::Path;

use crate::fixture::{PASSWORD, Registry, build_and_push, build_and_push_from, keys};
use crate::fixture::{Scratch, qyvol_in, stderr, stdout};

fn sign(home: &Path, key: &Path, reference: &str) {
    let out = qyvol_in(home)
        .arg("sign")
        .arg("--key")
        .arg(key)
        .arg(reference)
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .expect("sign");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn verify(home: &Path, key: &Path, reference: &str) -> std::process::Output {
    qyvol_in(home)
        .args(["verify", "--key"])
        .arg(key)
        .arg(reference)
        .output()
        .expect("verify")
}

#[test]
fn a_key_pair_is_written_in_cosigns_encrypted_format_and_never_over_another() {
    let s = Scratch::new();
    let (key, public) = keys(s.dir.path(), &s, "team");
    let private = std::fs::read_to_string(&key).expect("key");
    assert!(private.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
    assert!(
        std::fs::read_to_string(&public)
            .expect("pub")
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Again with the same prefix: refused, the first pair untouched.
    let out = qyvol_in(s.dir.path())
        .env("QYVOL_KEY_PASSWORD", PASSWORD)
        .args(["key", "generate", "-o"])
        .arg(s.path("team"))
        .output()
        .expect("key generate");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&key).expect("key"), private);
    // An empty password is refused.
    let out = qyvol_in(s.dir.path())
        .env("QYVOL_KEY_PASSWORD", "")
        .args(["key", "generate", "-o"])
        .arg(s.path("empty"))
        .output()
        .expect("key generate");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!s.path("empty.key").exists());
}

#[test]
fn a_signature_verifies_with_its_key_only_and_only_for_the_manifest_it_signs() {
    let registry = Registry::start(None);
    let s = Scratch::new();
    let home = s.path("home");
    let (key, public) = keys(&home, &s, "team");
    let (_, stranger) = keys(&home, &s, "stranger");
    let hello = registry.reference("hello:1");
    let digest = build_and_push(&home, &hello);
    sign(&home, &key, &hello);

    let out = verify(&home, &public, &hello);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("Digest: {digest}")),
        "{}",
        stdout(&out)
    );

    let out = verify(&home, &stranger, &hello);
    assert_eq!(out.status.code(), Some(77));
    assert!(
        stderr(&out).contains("made by none of the required keys"),
        "{}",
        stderr(&out)
    );

    // The tag moved to another module: the signature stays with the manifest it signed.
    let wat = s.wat(
        "other/other.wat",
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 0))))"#,
    );
    let other = s.write(
        "other/other.qyv",
        "version: 1\nname: other\nentrypoint: other.wasm\nruntime: wasi\n",
    );
    std::fs::rename(&wat, s.path("other/other.wasm")).expect("rename");
    build_and_push_from(&home, &other, &hello);
    let out = verify(&home, &public, &hello);
    assert_eq!(out.status.code(), Some(77));
    assert!(
        stderr(&out).contains("has no signature"),
        "{}",
        stderr(&out)
    );

    // The old manifest, pinned, still verifies.
    let pinned = format!("{}@{digest}", registry.reference("hello"));
    let out = verify(&home, &public, &pinned);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_policy_runs_signed_images_and_refuses_unsigned_or_wrongly_signed_ones_storing_nothing() {
    let registry = Registry::start(None);
    let s = Scratch::new();
    let publisher = s.path("publisher");
    let (key, public) = keys(&publisher, &s, "team");
    let (stranger_key, _) = keys(&publisher, &s, "stranger");
    let signed = registry.reference("signed:1");
    let unsigned = registry.reference("unsigned:1");
    let wrong = registry.reference("wrong:1");
    build_and_push(&publisher, &signed);
    let unsigned_digest = build_and_push(&publisher, &unsigned);
    build_and_push(&publisher, &wrong);
    sign(&publisher, &key, &signed);
    sign(&publisher, &stranger_key, &wrong);

    let user = s.path("user");
    std::fs::create_dir_all(&user).expect("home");
    let scope = registry.reference("").trim_end_matches('/').to_string();
    std::fs::write(
        user.join("policy.yaml"),
        format!(
            "default: insecureAcceptAnything\nrules:\n  - scope: {scope}\n    require: signedBy\n    keys: [{}]\n",
            public.display()
        ),
    )
    .expect("policy");

    let out = qyvol_in(&user)
        .args(["run", &signed])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");

    let pinned = format!("{}@{unsigned_digest}", registry.reference("unsigned"));
    for (image, why) in [
        (&unsigned, "it has no signature"),
        (&pinned, "it has no signature"),
        (&wrong, "made by none of the required keys"),
    ] {
        let out = qyvol_in(&user).args(["run", image]).output().expect("run");
        assert_eq!(out.status.code(), Some(77), "{image}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains(&format!("`{image}` is refused by the trust policy"))
                && said.contains(&format!("(rule `{scope}`)"))
                && said.contains(why)
                && said.contains("qyvol sign --key"),
            "{said}"
        );
    }
    // Nothing of the refused images was stored.
    let out = qyvol_in(&user)
        .args(["images", "--json"])
        .output()
        .expect("images");
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let names: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["reference"].as_str())
        .collect();
    assert_eq!(names, [signed.as_str()], "{listed}");
    // Another spelling of the same registry is the same registry.
    let port = scope.rsplit(':').next().expect("port");
    let respelt = format!("localhost:0{port}/unsigned:1");
    let out = qyvol_in(&user)
        .args(["run", &respelt])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));

    // Already stored: it runs again on the signatures checked at its pull.
    let out = qyvol_in(&user)
        .args(["run", &signed])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The same module built here under another name of the signed scope: the signatures stored
    // for these bytes are `signed`'s, not this repository's.
    let local = registry.reference("local:1");
    let out = qyvol_in(&user)
        .args(["build", "-q", "-t", &local])
        .arg(crate::fixture::repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = qyvol_in(&user).args(["run", &local]).output().expect("run");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no checked signature is stored for it"),
        "{}",
        stderr(&out)
    );
    let out = qyvol_in(&user).args(["rmi", &local]).output().expect("rmi");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // As many blobs as a store that pulled only the signed image.
    let control = s.path("control");
    let out = qyvol_in(&control)
        .args(["pull", &signed])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let count = |home: &Path| {
        std::fs::read_dir(home.join("store/blobs/sha256"))
            .expect("blobs")
            .count()
    };
    assert_eq!(
        count(&user),
        count(&control),
        "blobs of refused images were kept"
    );
}

#[test]
fn a_policy_that_cannot_be_followed_is_refused_with_what_to_fix() {
    let s = Scratch::new();
    let home = s.path("home");
    std::fs::create_dir_all(&home).expect("home");
    for (policy, said) in [
        (
            "rules:\n  - scope: localhost:5000\n    require: signedBy\n",
            "requires signedBy but lists no keys",
        ),
        (
            "rules:\n  - scope: localhost:5000\n    require: signedBy\n    keys: [missing.pub]\n",
            "missing.pub",
        ),
        ("default: trustMe\n", "trustMe"),
        (
            "rules:\n  - scope: https://localhost:5000\n    require: reject\n",
            "is not a registry or repository",
        ),
        (
            "rules:\n  - scope: localhost:5000\n    require: reject\n  - scope: LOCALHOST:5000/\n    require: insecureAcceptAnything\n",
            "two rules have the scope `localhost:5000`",
        ),
        ("default: signedBy\n", "default"),
    ] {
        std::fs::write(home.join("policy.yaml"), policy).expect("policy");
        let out = qyvol_in(&home)
            .args(["pull", "localhost:5000/hello:1"])
            .output()
            .expect("pull");
        assert_eq!(out.status.code(), Some(78), "{policy}: {}", stderr(&out));
        assert!(stderr(&out).contains(said), "{policy}: {}", stderr(&out));
        assert!(stderr(&out).contains("policy.yaml"), "{}", stderr(&out));
    }
}

/// `curl` against the registry's API: a manifest read or written by tag.
fn manifest_at(registry: &Registry, repo: &str, tag: &str, put: Option<&[u8]>) -> Vec<u8> {
    let url = format!(
        "http://{}/v2/{repo}/manifests/{tag}",
        registry.reference("").trim_end_matches('/')
    );
    let mut curl = std::process::Command::new("curl");
    curl.args([
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
    ]);
    if let Some(body) = put {
        let file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(file.path(), body).expect("body");
        curl.args([
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.path().display()));
        let out = curl.arg(&url).output().expect("curl (.ci/run installs it)");
        assert!(out.status.success(), "PUT {url}");
        return out.stdout;
    }
    let out = curl.arg(&url).output().expect("curl (.ci/run installs it)");
    assert!(out.status.success(), "GET {url}");
    out.stdout
}

#[test]
fn a_signature_moved_to_another_image_or_altered_is_refused() {
    let registry = Registry::start(None);
    let s = Scratch::new();
    let home = s.path("home");
    let (key, public) = keys(&home, &s, "team");
    let signed = build_and_push(&home, &registry.reference("app:1"));
    sign(&home, &key, &registry.reference("app:1"));
    // Another module in the same repository, unsigned.
    s.wat(
        "two/two.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    std::fs::rename(s.path("two/two.wat"), s.path("two/two.wasm")).expect("rename");
    let manifest = s.write(
        "two/two.qyv",
        "version: 1\nname: two\nentrypoint: two.wasm\nruntime: wasi\n",
    );
    let other = build_and_push_from(&home, &manifest, &registry.reference("app:2"));
    let sig_of = |digest: &str| format!("{}.sig", digest.replacen(':', "-", 1));

    // The first image's signatures put where the second's belong.
    let moved = manifest_at(&registry, "app", &sig_of(&signed), None);
    manifest_at(&registry, "app", &sig_of(&other), Some(&moved));
    let out = verify(&home, &public, &registry.reference("app:2"));
    assert_eq!(out.status.code(), Some(77));
    assert!(
        stderr(&out).contains(&format!(
            "a valid signature for {}@{signed}",
            registry.reference("app")
        )),
        "{}",
        stderr(&out)
    );

    // The signature itself altered.
    let mut altered: serde_json::Value = serde_json::from_slice(&moved).expect("json");
    altered["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        serde_json::Value::from("MEUCIQDsignaturethatisnotone");
    let altered = serde_json::to_vec(&altered).expect("json");
    manifest_at(&registry, "app", &sig_of(&signed), Some(&altered));
    let out = verify(&home, &public, &registry.reference("app:1"));
    assert_eq!(out.status.code(), Some(77));
    assert!(
        stderr(&out).contains("made by none of the required keys"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn push_sign_publishes_a_signed_image_and_a_wrong_password_pushes_nothing() {
    let registry = Registry::start(None);
    let s = Scratch::new();
    let home = s.path("home");
    let (key, public) = keys(&home, &s, "team");
    let reference = registry.reference("pushed:1");
    let out = qyvol_in(&home)
        .args(["build", "-q", "-t", &reference])
        .arg(crate::fixture::repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = qyvol_in(&home)
        .args(["push", "--sign"])
        .arg(&key)
        .arg(&reference)
        .write_stdin("wrong password\n")
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let out = verify(&home, &public, &reference);
    assert_eq!(
        out.status.code(),
        Some(125),
        "nothing was pushed: {}",
        stderr(&out)
    );
    let out = qyvol_in(&home)
        .args(["push", "--sign"])
        .arg(&key)
        .arg(&reference)
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = verify(&home, &public, &reference);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_policy_naming_a_private_key_as_a_signer_is_refused() {
    let s = Scratch::new();
    let home = s.path("home");
    let (key, _) = keys(&home, &s, "team");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(
        home.join("policy.yaml"),
        format!(
            "rules:\n  - scope: localhost:5000\n    require: signedBy\n    keys: [{}]\n",
            key.display()
        ),
    )
    .expect("policy");
    let out = qyvol_in(&home)
        .args(["pull", "localhost:5000/hello:1"])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a public key"),
        "{}",
        stderr(&out)
    );
}
