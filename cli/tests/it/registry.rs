//! Push, pull and run by reference against a real CNCF Distribution registry
//! (`docker-registry`, installed by `.ci/run`) on a free loopback port: round trip, pinning by
//! digest, missing tags, a registry that is down, tampered blobs in its storage, htpasswd
//! authentication, Docker's credential file, and a module pushed by another tool (skopeo).

use std::process::Command;

use crate::fixture::{Registry, Scratch, build_and_push, qyvol_in, repo_root, stderr, stdout};

#[test]
fn push_then_run_by_reference_from_an_empty_store() {
    let registry = Registry::start(None);
    let reference = registry.reference("hello:1");
    let digest = build_and_push(Scratch::new().dir.path(), &reference);

    let fresh = Scratch::new();
    let out = qyvol_in(fresh.dir.path())
        .args(["run", &reference])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    assert!(
        stderr(&out).contains(&format!("Digest: {digest}")),
        "{}",
        stderr(&out)
    );
    let list = qyvol_in(fresh.dir.path())
        .args(["images", "--json"])
        .output()
        .expect("images");
    assert!(stdout(&list).contains(&digest), "{}", stdout(&list));

    let pinned = format!("{}@{digest}", registry.reference("hello"));
    let other = Scratch::new();
    let out = qyvol_in(other.dir.path())
        .args(["pull", &pinned])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = qyvol_in(other.dir.path())
        .args(["run", "-q", &pinned])
        .output()
        .expect("run");
    assert_eq!(
        stdout(&out),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_tag_or_a_registry_that_is_down_fails_clearly() {
    let registry = Registry::start(None);
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["pull", &registry.reference("nothing:here")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("manifest unknown"),
        "{}",
        stderr(&out)
    );
    // Down: nothing listens on loopback port 1 (a freed random port could be taken by another
    // test's server in the meantime).
    let out = qyvol_in(home.dir.path())
        .args(["pull", "localhost:1/hello:1"])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("is the registry running and reachable?"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn a_tampered_blob_in_the_registry_is_refused_and_nothing_is_stored() {
    let registry = Registry::start(None);
    let reference = registry.reference("hello:1");
    build_and_push(Scratch::new().dir.path(), &reference);
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");
    let blob = registry.blob(&qyvol_store::bundle::sha256_digest(&wasm));
    let mut bytes = std::fs::read(&blob).expect("the registry stores the wasm blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&blob, bytes).expect("tamper");

    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["pull", &reference])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sha256:"),
        "names the blob: {}",
        stderr(&out)
    );
    let list = qyvol_in(home.dir.path())
        .args(["images", "--json"])
        .output()
        .expect("images");
    assert_eq!(stdout(&list).trim(), "[]");
    let blobs = std::fs::read_dir(home.path("store/blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "nothing stored");
}

#[test]
fn authentication_with_login_and_with_dockers_credential_file() {
    let registry = Registry::start(Some(("ana", "s3cret")));
    let reference = registry.reference("private:1");
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["build", "-q", "-t", &reference])
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0));
    let out = qyvol_in(home.dir.path())
        .args(["push", &reference])
        .output()
        .expect("push");
    assert_ne!(out.status.code(), Some(0), "anonymous push is refused");
    assert!(stderr(&out).contains("qyvol login"), "{}", stderr(&out));

    let registry_host = format!("localhost:{}", registry.port);
    let out = qyvol_in(home.dir.path())
        .args(["login", &registry_host, "-u", "ana"])
        .write_stdin("wrong\n")
        .output()
        .expect("login");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the credentials"),
        "{}",
        stderr(&out)
    );
    assert!(!home.path("auth.json").exists());

    let out = qyvol_in(home.dir.path())
        .args(["login", &registry_host, "-u", "ana"])
        .write_stdin("s3cret\n")
        .output()
        .expect("login");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = qyvol_in(home.dir.path())
        .args(["push", &reference])
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Docker's own login file works too.
    let docker = Scratch::new();
    let auth = qyvol_common_base64("ana:s3cret");
    docker.write(
        "config.json",
        format!(r#"{{"auths":{{"{registry_host}":{{"auth":"{auth}"}}}}}}"#),
    );
    let fresh = Scratch::new();
    let out = qyvol_in(fresh.dir.path())
        .env("DOCKER_CONFIG", docker.dir.path())
        .args(["run", "-q", &reference])
        .output()
        .expect("run");
    assert_eq!(
        stdout(&out),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&out)
    );
}

fn qyvol_common_base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes an OCI layout tagged `1` holding one image: `config` and `layer` of `layer_type`.
fn oci_layout(layout: &Scratch, config: (&str, &[u8]), layer: (&str, &[u8])) {
    let blob = |bytes: &[u8]| {
        let digest = qyvol_store::bundle::sha256_digest(bytes);
        layout.write(
            &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
            bytes,
        );
        (digest, bytes.len())
    };
    let ((cd, cs), (ld, ls)) = (blob(config.1), blob(layer.1));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{}","digest":"{cd}","size":{cs}}},"layers":[{{"mediaType":"{}","digest":"{ld}","size":{ls}}}]}}"#,
        config.0, layer.0
    );
    let (md, ms) = blob(manifest.as_bytes());
    layout.write("oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#);
    layout.write(
        "index.json",
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"1"}}}}]}}"#),
    );
}

fn skopeo_push(layout: &Scratch, reference: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1", layout.dir.path().display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Modules pushed by other tools (skopeo, from plain OCI layouts with no Qyvol manifest) are
/// pulled with a synthesised manifest and run: a Wasm artifact layer, and a plain image whose
/// one gzipped filesystem layer holds the .wasm.
#[test]
fn modules_pushed_by_skopeo_without_a_qyvol_manifest_run() {
    let registry = Registry::start(None);
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");

    let artifact = Scratch::new();
    oci_layout(
        &artifact,
        (
            "application/vnd.wasm.config.v0+json",
            br#"{"architecture":"wasm","os":"wasip1"}"#,
        ),
        ("application/vnd.wasm.content.layer.v1+wasm", &wasm),
    );
    skopeo_push(&artifact, &registry.reference("greeter:1"));

    let rootfs = Scratch::new();
    rootfs.write("app/hello.wasm", &wasm);
    let tgz = rootfs.path("layer.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(rootfs.path("app"))
        .arg("hello.wasm")
        .status()
        .expect("tar");
    assert!(status.success());
    let image = Scratch::new();
    oci_layout(
        &image,
        (
            "application/vnd.oci.image.config.v1+json",
            br#"{"architecture":"wasm","os":"wasip1","rootfs":{"type":"layers","diff_ids":[]}}"#,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &std::fs::read(&tgz).expect("layer"),
        ),
    );
    skopeo_push(&image, &registry.reference("plain-image:1"));

    for (name, shown) in [("greeter:1", "greeter"), ("plain-image:1", "plain-image")] {
        let home = Scratch::new();
        let out = qyvol_in(home.dir.path())
            .args(["run", &registry.reference(name)])
            .output()
            .expect("run");
        assert_eq!(
            stdout(&out),
            "👋 ¡Hola desde Qyvol WASI!\n",
            "{name}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(&format!("🔧 Cargando módulo: {shown}")),
            "{}",
            stderr(&out)
        );
    }
}

/// Per-blob progress bars on a terminal (a pty from `script`), nothing of them on a pipe.
#[test]
fn pulls_show_progress_on_a_terminal_only() {
    let registry = Registry::start(None);
    let reference = registry.reference("hello:1");
    build_and_push(Scratch::new().dir.path(), &reference);
    let piped = Scratch::new();
    let out = qyvol_in(piped.dir.path())
        .args(["pull", &reference])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("[==="),
        "no bars on a pipe: {}",
        stderr(&out)
    );

    let tty = Scratch::new();
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} pull {reference}", env!("CARGO_BIN_EXE_qyvol")),
            "/dev/null",
        ])
        .env("QYVOL_HOME", tty.dir.path())
        .env("QYVOL_LANG", "en")
        .output()
        .expect("script (util-linux) runs qyvol on a pty");
    assert!(out.status.success(), "{}", stdout(&out));
    let screen = stdout(&out);
    assert!(
        screen.contains("[==============================]"),
        "{screen}"
    );
    assert!(screen.contains("Digest: sha256:"), "{screen}");
}

/// A bundle is a standard OCI archive: skopeo copies it into the registry and `qyvol pull`
/// takes it back, precompiled layer and all.
#[test]
fn skopeo_copies_a_bundle_into_the_registry_and_qyvol_pulls_it() {
    let registry = Registry::start(None);
    let (home, s) = (Scratch::new(), Scratch::new());
    let bundle = s.path("hello.qyvc");
    let out = qyvol_in(home.dir.path())
        .args(["build", "-q", "-o"])
        .arg(&bundle)
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reference = registry.reference("from-skopeo:1");
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", bundle.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = Scratch::new();
    let out = qyvol_in(fresh.dir.path())
        .args(["pull", &reference])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = qyvol_in(fresh.dir.path())
        .args(["run", "-q", &reference])
        .output()
        .expect("run");
    assert_eq!(
        stdout(&out),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "{}",
        stderr(&out)
    );
}
