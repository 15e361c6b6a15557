//! Attacks on the trust boundary that got through a review done as an attacker, with the real
//! binary (HOSTILE rows 32-34): each test is one confirmed finding, failing before its fix. A
//! bundle here is hand-written (a tar holding an OCI layout) so its manifest, annotations and
//! layer list can say anything.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use qyvol_store::bundle::{ANN_ENGINE, Bundle, ImageSource};
use serde_json::{Value, json};

use crate::fixture::{
    Scratch, guest, hand_made_bundle, padded_hello, qyvol_in, qyvol_std, repo_root, stderr, stdout,
};

const HELLO: &str = "👋 ¡Hola desde Qyvol WASI!\n";

fn hello_wasm() -> Vec<u8> {
    std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello.wasm")
}

const HELLO_QYV: &[u8] = b"name: hello\nentrypoint: x.wasm\nruntime: wasi\n";

/// FINDING 1. `qyvol inspect app.qyvc` prints the precompiled layers' `dev.qyvol.platform`,
/// `dev.qyvol.engine` and `dev.qyvol.wasmtime` annotations raw: a bundle writes escape
/// sequences to the operator's terminal (clear the screen, set the title, hide text) and, with
/// a newline, forges lines such as a second `code:` line saying its code is trusted.
#[test]
fn inspect_never_prints_a_bundles_annotations_raw() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let ann = json!({
        "dev.qyvol.platform": "x86_64-linux\u{1b}[2J\u{1b}]0;pwned\u{7}",
        "dev.qyvol.engine": "zz\nFORGED-LINE: built here, it runs",
        "dev.qyvol.wasmtime": "48\u{1b}[8m",
    });
    let bundle = hand_made_bundle(
        &s.path("evil.qyvc"),
        &hello_wasm(),
        HELLO_QYV,
        &[(b"junk".to_vec(), ann)],
        |_| {},
    );
    let out = qyvol_in(home.dir.path())
        .arg("inspect")
        .arg(&bundle)
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains(['\u{1b}', '\u{7}']),
        "escape sequences reached the terminal: {text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED-LINE")),
        "a bundle forged a line of inspect's output: {text}"
    );
}

/// FINDING 2. A bundle's `http.route` may hold control characters (only `?`, `#`, space, NUL
/// and `..` are refused), and `qyvol serve` prints routes raw at start: the bundle writes
/// escape sequences to the operator's terminal.
#[test]
fn serve_never_prints_a_bundles_route_raw() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let wasm = std::fs::read(guest("http-probe.wasm")).expect("http-probe.wasm");
    let qyv = b"name: h\nentrypoint: x.wasm\nruntime: wasi-http\nhttp:\n  route: \"/a\\e[2J\\e]0;pwned\\a\\r\\e[8m\"\n";
    let bundle = hand_made_bundle(&s.path("route.qyvc"), &wasm, qyv, &[], |_| {});
    let mut child = qyvol_std()
        .env("QYVOL_HOME", home.dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&bundle)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let done = line.contains("http://");
            let _ = tx.send(line);
            if done {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains("http://");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(
        !text.contains(['\u{1b}', '\u{7}', '\r']),
        "a bundle's route wrote control characters to the terminal: {text:?}"
    );
}

/// FINDING 3. `--max-module-size` (default 256 MiB) and the 1 MiB manifest cap hold for files
/// but not for a bundle or stored image: its wasm and manifest layers are read whole into
/// memory whatever their declared size (twice the wasm's size at peak: 300 MiB of wasm peaked
/// at 640 MB RSS), so a bundle whose tar is sparse on disk exhausts memory.
#[test]
fn a_bundles_layers_obey_the_module_and_manifest_size_caps() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let big_wasm = hand_made_bundle(
        &s.path("big-wasm.qyvc"),
        &padded_hello(2 << 20),
        HELLO_QYV,
        &[],
        |_| {},
    );
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q", "--max-module-size", "1MiB"])
        .arg(&big_wasm)
        .output()
        .expect("run");
    assert_ne!(
        out.status.code(),
        Some(0),
        "a 2 MiB wasm layer ran under --max-module-size 1MiB: {}",
        stdout(&out)
    );

    let mut qyv = HELLO_QYV.to_vec();
    while qyv.len() <= 2 << 20 {
        qyv.extend_from_slice(b"# padding padding padding padding padding padding padding\n");
    }
    let big_qyv = hand_made_bundle(&s.path("big-qyv.qyvc"), &hello_wasm(), &qyv, &[], |_| {});
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&big_qyv)
        .output()
        .expect("run");
    assert_ne!(
        out.status.code(),
        Some(0),
        "a 2 MiB bundled manifest was read and run (a .qyv file is capped at 1 MiB): {}",
        stdout(&out)
    );
}

/// FINDING 4. `cache/built/<layer>` records only the wasm a layer was compiled from, not the
/// engine it was compiled for, while the engine a layer claims is the bundle's annotation. So
/// a layer this home built for one engine (no fuel), relabelled as code for another (fuel), is
/// judged `built-here` and written into `cache/compiled/<fuel engine>/<wasm>.cwasm`: code
/// Qyvol did not compile for that engine enters the cache under the wasm's digest, and only
/// wasmtime's own header check ("failed deserialization") stops it being mapped.
#[test]
fn a_layer_built_here_relabelled_for_another_engine_is_not_trusted() {
    let (s, home) = (Scratch::new(), Scratch::new());
    s.write("hello.wasm", hello_wasm());
    let plain = s.write(
        "plain.qyv",
        b"name: hello\nentrypoint: hello.wasm\nruntime: wasi\n",
    );
    let fueled = s.write(
        "fueled.qyv",
        b"name: hello\nentrypoint: hello.wasm\nruntime: wasi\nlimits:\n  fuel: 100000000\n",
    );
    for (manifest, out) in [(&plain, "plain.qyvc"), (&fueled, "fueled.qyvc")] {
        let built = qyvol_in(home.dir.path())
            .args(["build", "-q"])
            .arg(manifest)
            .arg("-o")
            .arg(s.path(out))
            .output()
            .expect("build");
        assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    }
    let plain_bundle = Bundle::open(&s.path("plain.qyvc")).expect("bundle");
    let plain_layer = plain_bundle.precompiled()[0].clone();
    let code = plain_bundle.read_blob(&plain_layer).expect("code");
    let fuel_engine = Bundle::open(&s.path("fueled.qyvc"))
        .expect("bundle")
        .precompiled()[0]
        .annotations[ANN_ENGINE]
        .clone();
    assert_ne!(plain_layer.annotations[ANN_ENGINE], fuel_engine);
    let mut ann = serde_json::to_value(&plain_layer.annotations).expect("annotations");
    ann[ANN_ENGINE] = Value::String(fuel_engine);
    let relabelled = hand_made_bundle(
        &s.path("relabelled.qyvc"),
        &hello_wasm(),
        b"name: hello\nentrypoint: x.wasm\nruntime: wasi\nlimits:\n  fuel: 100000000\n",
        &[(code, ann)],
        |_| {},
    );
    // Qyvol's own compilations gone; what `qyvol build` recorded stays.
    qyvol_in(home.dir.path())
        .args(["cache", "clear"])
        .assert()
        .success();

    let doc = crate::fixture::inspect_json(home.dir.path(), &relabelled);
    assert_ne!(
        doc["precompiled_trust"], "built-here",
        "code built for another engine is called Qyvol's own: {doc}"
    );
    let out = crate::fixture::qyvol_logged(home.dir.path())
        .arg("run")
        .arg(&relabelled)
        .output()
        .expect("run");
    assert_eq!(stdout(&out), HELLO, "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("refused a cached artifact"),
        "a bundle's layer was stored as Qyvol's code for an engine it was not built for: {}",
        stderr(&out)
    );
}

/// FINDING 5. Verification hashes every descriptor of the image manifest, repeats included: a
/// 2 MB bundle whose manifest lists its 1 MiB wasm layer 3,000 times makes `run` (and
/// `inspect`) hash 3 GB before anything else (7,000 repeats kept it busy past two minutes; with
/// a large wasm in a sparse tar, hours).
#[test]
fn repeated_layer_descriptors_do_not_multiply_verification() {
    let (s, home) = (Scratch::new(), Scratch::new());
    let bundle = hand_made_bundle(
        &s.path("repeats.qyvc"),
        &padded_hello(1 << 20),
        HELLO_QYV,
        &[],
        |m| {
            let layers = m["layers"].as_array().expect("layers").clone();
            let mut repeated = vec![layers[0].clone(); 3000];
            repeated.extend(layers.into_iter().skip(1));
            m["layers"] = Value::Array(repeated);
        },
    );
    let started = Instant::now();
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q"])
        .arg(&bundle)
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    assert!(
        started.elapsed() < Duration::from_secs(20) && out.status.code().is_some(),
        "verifying a 2 MB bundle took over 20 s"
    );
}

/// FINDING 6. A bundle's `http.max_body` overrides the operator's `--max-body`
/// (`manifest.http.max_body.unwrap_or(flag)` in `serve`), and bodies are buffered whole: an
/// untrusted bundle lifts the server's protection against large request bodies
/// (`max_body: 64GiB` under `--max-body 1KiB` took a 200 MB body into memory and answered 200).
#[test]
fn a_bundles_max_body_never_lifts_the_operators_max_body() {
    use std::io::{Read, Write};
    let s = Scratch::new();
    let wasm = std::fs::read(guest("http-probe.wasm")).expect("http-probe.wasm");
    let qyv = b"name: h\nentrypoint: x.wasm\nruntime: wasi-http\nhttp:\n  max_body: 64GiB\n";
    let bundle = hand_made_bundle(&s.path("big-body.qyvc"), &wasm, qyv, &[], |_| {});
    let bundle = bundle.to_str().expect("utf-8 path");
    let served = crate::fixture::Served::start(&["--max-body", "1KiB", bundle]);
    let mut conn = std::net::TcpStream::connect(served.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = vec![b'x'; 64 << 10];
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).expect("head");
    let _ = conn.write_all(&body);
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.1 413"),
        "a 64 KiB body reached a bundle's handler under --max-body 1KiB: {}",
        reply.lines().next().unwrap_or_default()
    );
}
