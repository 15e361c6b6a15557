//! The trust boundary, attacked (HOSTILE rows 32-34 and damaged bundles): a bundle or image is
//! untrusted, so its hand-made native code never runs (under `run`, `serve`, `pull` + `run`)
//! unless the operator allows it and never poisons later runs; its manifest grants itself no
//! folder and no network; its digests never become paths; and damage is reported even when the
//! cache could serve its code.

use std::path::{Path, PathBuf};

use qyvol_store::bundle::{
    ANN_ENGINE, ANN_PLATFORM, ANN_WASMTIME, Bundle, BundleParts, ImageSource, MEDIA_QYV,
    MEDIA_WASM, Precompiled,
};

use crate::fixture::Served;
use crate::fixture::qyvol_logged as logged;
use crate::fixture::{
    HELLO, Scratch, build, hello_bundle, inspect_json, qyvol_in, qyvol_std, repo_root, stderr,
    stdout,
};

/// Where the `.text` section of an ELF file (wasmtime's artifact) lies: offset and size.
fn text_section(elf: &[u8]) -> (usize, usize) {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().expect("4 bytes")) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes")) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF artifact");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let section = |i: usize| shoff + i * shentsize;
    let names = u64_at(section(shstrndx) + 24);
    (0..shnum)
        .find(|&i| {
            let name = names + u32_at(section(i));
            elf[name..].starts_with(b".text\0")
        })
        .map(|i| (u64_at(section(i) + 24), u64_at(section(i) + 32)))
        .expect("a .text section")
}

/// An attacker's copy of `bundle`: its precompiled code's `.text` filled with `int3`, native
/// code that kills the host process if it ever runs, and every digest made right again.
/// Returns the digest of the original precompiled layer.
fn with_hand_made_code(bundle: &Path, out: &Path) -> String {
    let source = Bundle::open(bundle).expect("a bundle");
    let read = |media: &str| {
        source
            .read_blob(source.layer(media).expect("layer"))
            .expect("blob")
    };
    let layer = source.precompiled()[0].clone();
    let mut code = source.read_blob(&layer).expect("precompiled blob");
    let (offset, size) = text_section(&code);
    assert!(size > 0, "code to patch");
    code[offset..offset + size].fill(0xcc);
    let annotation = |key: &str| layer.annotations[key].clone();
    let (qyv, wasm) = (read(MEDIA_QYV), read(MEDIA_WASM));
    let kind = if wasm[4..8] == [1, 0, 0, 0] {
        "wasip1"
    } else {
        "wasip2"
    };
    qyvol_store::bundle::write(
        out,
        &BundleParts {
            name: "evil",
            qyv: &qyv,
            wasm: &wasm,
            os: kind,
            precompiled: Some(Precompiled {
                code,
                platform: annotation(ANN_PLATFORM),
                engine: annotation(ANN_ENGINE),
                wasmtime: annotation(ANN_WASMTIME),
            }),
        },
    )
    .expect("write the hand-made bundle");
    layer.digest.to_string()
}

/// The digest of a bundle's precompiled layer.
fn precompiled_digest(bundle: &Path) -> String {
    Bundle::open(bundle).expect("a bundle").precompiled()[0]
        .digest
        .to_string()
}

/// A hand-made bundle of hello, made by an attacker's machine (its own home).
fn evil_hello(s: &Scratch) -> (PathBuf, String) {
    let attacker = Scratch::new();
    let honest = hello_bundle(attacker.dir.path(), s);
    let evil = s.path("evil.qyvc");
    let original = with_hand_made_code(&honest, &evil);
    (evil, original)
}

#[test]
fn hand_made_native_code_in_a_bundle_runs_only_when_allowed_and_never_poisons_the_cache() {
    let (s, victim) = (Scratch::new(), Scratch::new());
    let (evil, original) = evil_hello(&s);
    let home = victim.dir.path();

    for round in ["cold", "warm"] {
        let out = logged(home).arg("run").arg(&evil).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{round}: {}", stderr(&out));
        assert_eq!(stdout(&out), HELLO, "{round}");
        assert!(
            stderr(&out).contains("se compila su wasm"),
            "{round}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("mapped allowed precompiled code"),
            "{round}"
        );
    }

    // The patch is real: allowed, the hand-made code runs and takes the process down.
    let out = logged(home)
        .args(["run", "--allow-precompiled"])
        .arg(&evil)
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(stdout(&out), HELLO);

    // Nothing of it reached Qyvol's own code: the plain module and the example still run, and a
    // build here packs Qyvol's compilation, byte for byte the honest machine's.
    for target in ["examples/hello.wasm", "examples/hello.qyv"] {
        let out = logged(home)
            .args(["run", "-q"])
            .arg(repo_root().join(target))
            .output()
            .expect("run");
        assert_eq!(stdout(&out), HELLO, "{target}: {}", stderr(&out));
    }
    let rebuilt = s.path("rebuilt.qyvc");
    build(home, &repo_root().join("examples/hello.qyv"), &rebuilt);
    assert_eq!(precompiled_digest(&rebuilt), original);
}

#[test]
fn serve_never_runs_a_bundles_hand_made_code() {
    let (s, attacker, victim) = (Scratch::new(), Scratch::new(), Scratch::new());
    let honest = s.path("http.qyvc");
    build(
        attacker.dir.path(),
        &repo_root().join("examples/http-hello/http-hello.qyv"),
        &honest,
    );
    let evil = s.path("evil-http.qyvc");
    with_hand_made_code(&honest, &evil);
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", victim.dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&evil);
    let served = Served::spawn(cmd);
    let reply = served.get("/hello/x");
    assert_eq!(reply.status, 200, "{}", served.log());
    assert_eq!(reply.body, "¡Hola desde Qyvol! GET /hello/x\n");
}

/// `http-hello` without a time limit (the native environment caps none: its code needs no
/// epoch checks to run as a command, and has them to be served) built into a bundle by another
/// machine (its own home): code this home did not build, which runs only when allowed.
fn foreign_http_bundle(s: &Scratch) -> PathBuf {
    let other = Scratch::new();
    std::fs::copy(
        repo_root().join("examples/http-hello/http-hello.wasm"),
        s.path("http-hello.wasm"),
    )
    .expect("copy the handler");
    s.write(
        "http-hello.qyv",
        "version: 1\nname: http-hello\nentrypoint: http-hello.wasm\nruntime: wasi-http\n\
         environment: native\nhttp:\n  route: /hello/...\n",
    );
    let bundle = s.path("http.qyvc");
    build(other.dir.path(), &s.path("http-hello.qyv"), &bundle);
    bundle
}

#[test]
fn serve_maps_a_bundles_allowed_precompiled_code_instead_of_compiling() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let bundle = foreign_http_bundle(&s);
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", home.dir.path())
        .env("QYVOL_LOG", "qyvol_runtime=debug")
        .args(["serve", "--allow-precompiled", "--listen", "127.0.0.1:0"])
        .arg(&bundle);
    let served = Served::spawn(cmd);
    let reply = served.get("/hello/x");
    assert_eq!(reply.status, 200, "{}", served.log());
    assert_eq!(reply.body, "¡Hola desde Qyvol! GET /hello/x\n");
    let log = served.log();
    // The layer was made for the engine serve runs (epochs on), so wasmtime takes it as is.
    assert!(log.contains("mapped allowed precompiled code"), "{log}");
    assert!(
        !log.contains("refused the bundle's precompiled code"),
        "{log}"
    );
}

#[test]
fn deploy_maps_a_bundles_allowed_precompiled_code_instead_of_compiling() {
    let s = Scratch::new();
    let bundle = foreign_http_bundle(&s);
    let node = crate::fixture::Node::start(&s.path("home"), &[]);
    let path = bundle.to_str().expect("utf-8");
    let precompiled = |name: &str| {
        let text = node.ok(&["inspect", name, "--json"]);
        let view: serde_json::Value = serde_json::from_str(&text).expect("inspect json");
        view["spec"]["precompiled"].as_str().map(PathBuf::from)
    };
    node.ok(&["deploy", "--name", "compiled", path]);
    assert_eq!(precompiled("compiled"), None, "not allowed: compiled");
    node.ok(&["rm", "-f", "compiled"]);

    node.ok(&["deploy", "--allow-precompiled", "--name", "allowed", path]);
    assert_eq!(
        node.get("/hello/x"),
        (200, "¡Hola desde Qyvol! GET /hello/x\n".into())
    );
    // The layer was imported for the engine the node runs it on: wasmtime took it, so it was
    // not deleted as code for another engine.
    let layer = precompiled("allowed").expect("the allowed layer is the app's code");
    assert!(
        layer.is_file(),
        "{} was refused and deleted",
        layer.display()
    );
}

#[test]
fn an_image_pulled_with_hand_made_code_is_compiled_from_its_wasm() {
    let registry = crate::fixture::Registry::start(None);
    let (s, victim) = (Scratch::new(), Scratch::new());
    let (evil, _) = evil_hello(&s);
    let reference = registry.reference("evil:1");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", evil.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "{}", stderr(&out));
    let home = victim.dir.path();
    let out = qyvol_in(home)
        .args(["pull", &reference])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for _ in 0..2 {
        let out = logged(home)
            .args(["run", &reference])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), HELLO);
    }
    let doc = inspect_json(home, &evil);
    assert_eq!(doc["precompiled_trust"], "untrusted", "{doc}");
}

#[test]
fn a_bundle_built_here_is_trusted_and_inspect_says_so() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let bundle = hello_bundle(home.dir.path(), &s);
    qyvol_in(home.dir.path())
        .args(["cache", "clear"])
        .assert()
        .success();
    let out = logged(home.dir.path())
        .arg("run")
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(stdout(&out), HELLO, "{}", stderr(&out));
    assert!(!stderr(&out).contains("compiling"), "{}", stderr(&out));
    let doc = inspect_json(home.dir.path(), &bundle);
    assert_eq!(doc["precompiled_trust"], "built-here", "{doc}");
    // Another home did not build it.
    let other = Scratch::new();
    let doc = inspect_json(other.dir.path(), &bundle);
    assert_eq!(doc["precompiled_trust"], "untrusted", "{doc}");
}

/// A bundle of the probe guest whose own manifest asks for `extra` (mounts, network).
fn probe_bundle(s: &Scratch, guest: &str, args: &str, extra: &str) -> PathBuf {
    let author = Scratch::new();
    author.guest(guest);
    let m = author.write(
        "app.qyv",
        format!("name: greedy\nentrypoint: {guest}\nruntime: wasi\nargs: {args}\n{extra}"),
    );
    let bundle = s.path("greedy.qyvc");
    build(Scratch::new().dir.path(), &m, &bundle);
    bundle
}

#[test]
fn a_bundles_manifest_mounting_its_folder_writes_nothing_without_the_operators_mount() {
    let s = Scratch::new();
    let bundle = probe_bundle(
        &s,
        "probe-p1.wasm",
        "[write, /data/pwned, owned]",
        "mounts:\n  - { host: ., guest: /data, readonly: false }\n",
    );
    let out = qyvol_in(Scratch::new().dir.path())
        .arg("run")
        .arg(&bundle)
        .current_dir(s.dir.path())
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!s.path("pwned").exists(), "the bundle wrote beside itself");
    assert!(
        stderr(&out).contains("🔒 El paquete pide montar `.` en `/data`: no se concede"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("--mount HOST:/data"),
        "{}",
        stderr(&out)
    );
    let doc = inspect_json(Scratch::new().dir.path(), &bundle);
    assert_eq!(doc["requests"]["mounts"][0], ".:/data:rw", "{doc}");

    // The operator grants it: then, and only where they say, it writes.
    let granted = Scratch::new();
    let out = qyvol_in(Scratch::new().dir.path())
        .arg("run")
        .arg("--mount")
        .arg(format!("{}:/data", granted.dir.path().display()))
        .arg(&bundle)
        .current_dir(s.dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(granted.read("pwned"), "owned");
    assert!(!s.path("pwned").exists());
}

#[test]
fn a_bundles_manifest_grants_itself_no_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr").to_string();
    // Answers the one connection that gets through, as the probe expects.
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut conn, _)) = listener.accept() {
            let mut asked = String::new();
            let _ = conn.read_to_string(&mut asked);
            let _ = conn.write_all(b"pong");
        }
    });
    let s = Scratch::new();
    let bundle = probe_bundle(
        &s,
        "probe-p2.wasm",
        &format!("[connect, \"{addr}\"]"),
        &format!("network:\n  allow: [\"{addr}\"]\n"),
    );
    let out = qyvol_in(Scratch::new().dir.path())
        .arg("run")
        .arg(&bundle)
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("--allow-net '{addr}'")),
        "{}",
        stderr(&out)
    );
    let out = qyvol_in(Scratch::new().dir.path())
        .args(["run", "-q", "--allow-net", &addr])
        .arg(&bundle)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "connected: pong\n");
}

#[test]
fn an_operators_manifest_naming_a_bundle_as_entrypoint_grants_it_its_mounts() {
    let s = Scratch::new();
    probe_bundle(&s, "probe-p1.wasm", "[write, /data/note, hi]", "");
    std::fs::create_dir(s.path("data")).expect("mkdir");
    let m = s.write(
        "mine.qyv",
        "name: mine\nentrypoint: greedy.qyvc\nruntime: wasi\nargs: [write, /data/note, from-mine]\nmounts:\n  - { host: ./data, guest: /data }\n",
    );
    let out = qyvol_in(Scratch::new().dir.path())
        .arg("run")
        .arg(&m)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(s.read("data/note"), "from-mine");
}

/// A tar holding a bundle layout whose index names `digest`.
fn bundle_naming(s: &Scratch, digest: &str) -> PathBuf {
    let path = s.path("odd.qyvc");
    let mut tar = tar::Builder::new(std::fs::File::create(&path).expect("create"));
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":10}}]}}"#
    );
    for (name, bytes) in [
        (
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice(),
        ),
        ("index.json", index.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, bytes).expect("append");
    }
    tar.finish().expect("finish");
    path
}

#[test]
fn traversal_digests_in_a_bundle_are_refused_before_they_become_paths() {
    let s = Scratch::new();
    for digest in [
        "sha256:../../../../etc/passwd",
        "sha256:/etc/passwd",
        "sha512:00",
    ] {
        let bundle = bundle_naming(&s, digest);
        let out = qyvol_in(Scratch::new().dir.path())
            .arg("run")
            .arg(&bundle)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(65), "{digest}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is not a digest Qyvol accepts"),
            "{digest}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_damaged_bundle_is_reported_even_when_the_cache_could_serve_it() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let bundle = hello_bundle(home.dir.path(), &s);
    let warm = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(stdout(&warm), HELLO);
    // One bit of the wasm layer flipped, size and modification time kept.
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("wasm");
    let mut bytes = std::fs::read(&bundle).expect("read");
    let at = bytes
        .windows(64)
        .position(|w| w == &wasm[1000..1064])
        .expect("the wasm inside")
        + 32;
    bytes[at] ^= 1;
    let mtime = std::fs::metadata(&bundle)
        .and_then(|m| m.modified())
        .expect("mtime");
    let file = std::fs::File::options()
        .write(true)
        .open(&bundle)
        .expect("open");
    std::io::Write::write_all(&mut &file, &bytes).expect("write in place");
    file.set_modified(mtime).expect("restore mtime");
    drop(file);
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&bundle)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("damaged or tampered"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_bundles_requested_mount_is_printed_escaped() {
    let s = Scratch::new();
    let bundle = probe_bundle(
        &s,
        "probe-p1.wasm",
        "[exit, \"0\"]",
        "mounts:\n  - { host: ., guest: \"/d\\e[2Jx\" }\n",
    );
    let out = qyvol_in(Scratch::new().dir.path())
        .args(["run", "-q"])
        .arg(&bundle)
        .output()
        .expect("run");
    let err = stderr(&out);
    assert!(
        !err.contains('\u{1b}'),
        "a raw escape reached the terminal: {err:?}"
    );
    assert!(err.contains("`/d\\u{1b}[2Jx`"), "{err}");
}

/// `home`'s trust policy: `.qyvc` files need a signature by `public`; with
/// `allow_precompiled`, their signers' native code runs.
fn bundle_policy(home: &Path, public: &Path, allow_precompiled: bool) {
    std::fs::create_dir_all(home).expect("home");
    std::fs::write(
        home.join("policy.yaml"),
        format!(
            "bundles:\n  require: signedBy\n  keys: [{}]\n  allowPrecompiled: {allow_precompiled}\n",
            public.display()
        ),
    )
    .expect("policy");
}

#[test]
fn a_bundle_policy_runs_signed_bundles_refuses_others_and_trusts_signers_code_only_when_it_says() {
    use crate::fixture::{PASSWORD, keys};
    let (s, author, user) = (Scratch::new(), Scratch::new(), Scratch::new());
    let (key, public) = keys(author.dir.path(), &s, "team");
    let (stranger, _) = keys(author.dir.path(), &s, "stranger");
    let signed = s.path("signed.qyvc");
    let out = qyvol_in(author.dir.path())
        .args(["build", "-q", "--sign"])
        .arg(&key)
        .arg(repo_root().join("examples/hello.qyv"))
        .arg("-o")
        .arg(&signed)
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .expect("build --sign");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plain = s.path("plain.qyvc");
    build(
        author.dir.path(),
        &repo_root().join("examples/hello.qyv"),
        &plain,
    );
    // The author's code, patched by someone else and signed with another key.
    let evil = s.path("evil.qyvc");
    with_hand_made_code(&signed, &s.path("unsigned-evil.qyvc"));
    let source = Bundle::open(&s.path("unsigned-evil.qyvc")).expect("bundle");
    let read = |d: &qyvol_store::bundle::Descriptor| source.read_blob(d).expect("blob");
    let layer = source.precompiled()[0].clone();
    qyvol_store::bundle::write_signed(
        &evil,
        &BundleParts {
            name: "hello",
            qyv: &read(source.layer(MEDIA_QYV).expect("qyv")),
            wasm: &read(source.layer(MEDIA_WASM).expect("wasm")),
            os: "wasip1",
            precompiled: Some(Precompiled {
                code: read(&layer),
                platform: layer.annotations[ANN_PLATFORM].clone(),
                engine: layer.annotations[ANN_ENGINE].clone(),
                wasmtime: layer.annotations[ANN_WASMTIME].clone(),
            }),
        },
        Some(&qyvol_store::trust::Signer::load(&stranger, PASSWORD.as_bytes()).expect("key")),
    )
    .expect("evil bundle");

    let home = user.dir.path();
    bundle_policy(home, &public, false);
    for (bundle, why) in [
        (&plain, "it has no signature"),
        (&evil, "its signature is made by none of the required keys"),
    ] {
        let out = qyvol_in(home).arg("run").arg(bundle).output().expect("run");
        assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is refused by the trust policy") && stderr(&out).contains(why),
            "{}",
            stderr(&out)
        );
    }
    // Loaded into the store instead of run: the same rule.
    let out = qyvol_in(home)
        .args(["load", "-i"])
        .arg(&plain)
        .args(["-t", "localhost:7777/plain:1"])
        .output()
        .expect("load");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let out = qyvol_in(home)
        .args(["run", "localhost:7777/plain:1"])
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0), "the refused bundle was stored");
    // Signed: it runs, but its native code is still the author's word, not this host's.
    let out = logged(home).arg("run").arg(&signed).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), HELLO);
    assert!(
        stderr(&out).contains("se compila su wasm"),
        "{}",
        stderr(&out)
    );

    // A rule that trusts the signers' code: it runs without `--allow-precompiled`, and
    // `inspect` says so.
    bundle_policy(home, &public, true);
    assert_eq!(inspect_json(home, &signed)["precompiled_trust"], "signed");
    let out = logged(home).arg("run").arg(&signed).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), HELLO);
    assert!(
        stderr(&out).contains("mapped allowed precompiled code")
            && !stderr(&out).contains("se compila su wasm"),
        "{}",
        stderr(&out)
    );
}
