//! HOSTILE rows 21, 22 and 38 need a registry that misbehaves on purpose, so these tests run a
//! small HTTP server of their own on loopback ([`fake`]): blobs larger than their descriptor or
//! endless, a digest algorithm Qyvol does not accept, a redirect to `file://`, a redirect to
//! another host (which must not receive the credentials), a 300 MB manifest (made as it is
//! sent, so the test itself stays small) and a registry that trickles one byte every two
//! seconds; and, so that the bounds do not cut what they should not, a large blob and a slow
//! registry that keeps sending. `qyvol`'s peak memory is its `VmHWM`, read from
//! `/proc/<pid>/status` while it runs.

mod fake;

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use fake::{
    Body, CONFIG, HUGE, digest, huge, image_registry, manifest, manifest_reply, ok, registry,
    registry_with, reply, serve, trickled,
};

use crate::fixture::{
    Guarded, HELLO, Scratch, build_tagged, image_refs, qyvol_in, qyvol_std, repo_root, run_sampled,
    stderr, stdout, wait_until,
};

/// `qyvol pull reference` with its own home and `env`.
fn pull(home: &Scratch, reference: &str, env: &[(&str, &str)]) -> (Output, Option<u64>) {
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", home.dir.path())
        .envs(env.iter().copied())
        .args(["pull", reference]);
    run_sampled(&mut cmd, Duration::from_secs(20))
}

/// What a test pull may use at most: `qyvol`'s own baseline plus a few MiB of buffers, far
/// below the hundreds of MiB a hostile registry sends.
const PEAK_KIB: u64 = 64 * 1024;

/// Bytes the fake registry sent before `qyvol` hung up; far less than the whole body shows it
/// was cut while streaming, not after.
fn sent_before_hang_up(sent: &mpsc::Receiver<u64>) -> u64 {
    sent.recv_timeout(Duration::from_secs(20))
        .expect("the registry's sender noticed the client hang up")
}

fn assert_nothing_stored(home: &Scratch) {
    let out = qyvol_in(home.dir.path())
        .args(["images", "--json"])
        .output()
        .expect("images");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    for dir in ["store/blobs/sha256", "store/tmp"] {
        let left: Vec<_> = std::fs::read_dir(home.path(dir))
            .expect("the store exists")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{dir} holds {left:?}");
    }
}

/// Pulls `localhost:PORT/huge:1` from the registry `serve(declared, sent)` starts to send a
/// [`huge`] body, first without announcing its size, then announcing it: refused saying
/// `why(declared, reference)`, with the registry cut off long before the end, memory bounded
/// and nothing stored.
fn assert_huge_bodies_refused(
    serve: impl Fn(bool, mpsc::Sender<u64>) -> u16,
    why: impl Fn(bool, &str) -> String,
) {
    for declared in [false, true] {
        let (sent_tx, sent) = mpsc::channel();
        let reference = format!("localhost:{}/huge:1", serve(declared, sent_tx));
        let peak = assert_pull_refused(&reference, &[], &why(declared, &reference));
        let sent = sent_before_hang_up(&sent);
        assert!(sent < HUGE / 4, "qyvol read {sent} bytes");
        let peak = peak.expect("VmHWM of qyvol from /proc");
        assert!(peak < PEAK_KIB, "peak memory {peak} KiB");
    }
}

/// `qyvol pull reference` with `env` fails (125) saying `why` and stores nothing; returns its
/// peak memory.
fn assert_pull_refused(reference: &str, env: &[(&str, &str)], why: &str) -> Option<u64> {
    let home = Scratch::new();
    let (out, peak) = pull(&home, reference, env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains(why), "{err}");
    assert_nothing_stored(&home);
    peak
}

#[test]
fn a_blob_larger_than_its_descriptor_is_cut_off_at_its_size_and_nothing_is_stored() {
    // The descriptor claims 100 bytes; the registry sends 300 MB.
    let wd = digest(&[b'w'; 100]);
    assert_huge_bodies_refused(
        |declared, sent| image_registry((&wd, 100), move || huge(b"", b'w', declared, &sent)),
        |declared, reference| {
            let why = if declared {
                format!("the registry announces {HUGE} bytes, more than the descriptor's 100")
            } else {
                "the registry sent more than the descriptor's 100 bytes".into()
            };
            format!("registry blob `{wd}` of `{reference}`: {why}")
        },
    );
}

#[test]
fn a_300_mb_manifest_is_cut_off_at_the_4_mib_cap_with_memory_bounded() {
    // Unannounced, it is cut while it streams; announced, refused before its body is read.
    let prefix = br#"{"schemaVersion":2,"annotations":{"x":""#;
    assert_huge_bodies_refused(
        |declared, sent| {
            let manifest = move || manifest_reply(huge(prefix, b'a', declared, &sent));
            registry_with(false, |_| reply(404, vec![], Vec::new()), manifest).0
        },
        |declared, reference| {
            let why = if declared {
                format!(
                    "the registry announces a manifest of {HUGE} bytes, more than the 4 MiB limit"
                )
            } else {
                "the manifest is larger than 4 MiB: cut off".into()
            };
            format!("registry `{reference}`: {why}")
        },
    );
}

#[test]
fn a_large_blob_streams_into_the_store_without_being_held_in_memory() {
    // Held in memory (twice, as the code before streaming did), it would pass the bound alone.
    let layer = b"not quite wasm ".repeat((40 << 20) / 15);
    let (ld, len) = (digest(&layer), layer.len());
    let port = image_registry((&ld, len), move || Body::Bytes(layer.clone()));
    let home = Scratch::new();
    let (out, peak) = pull(&home, &format!("localhost:{port}/large:1"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = home.path(&format!("store/blobs/sha256/{}", &ld[7..]));
    assert_eq!(
        std::fs::metadata(&stored).map(|m| m.len()).ok(),
        Some(len as u64),
        "the layer is in the store"
    );
    let peak = peak.expect("VmHWM of qyvol from /proc");
    assert!(peak < PEAK_KIB, "peak memory {peak} KiB for a 40 MiB blob");
}

#[test]
fn a_registry_trickling_a_byte_every_two_seconds_is_cut_by_the_timeout() {
    let layer = vec![b'w'; 4096];
    let ld = digest(&layer);
    let timeout = [("QYVOL_REGISTRY_TIMEOUT", "1s")];

    // The manifest itself: a request that is not a blob has the timeout as its deadline.
    let body = manifest((&digest(CONFIG), CONFIG.len()), (&ld, layer.len()));
    let (port, _) = registry_with(
        false,
        |_| reply(404, vec![], Vec::new()),
        move || manifest_reply(trickled(body.clone())),
    );
    assert_pull_refused(
        &format!("localhost:{port}/slow:1"),
        &timeout,
        &format!(
            "registry `localhost:{port}/slow:1`: the registry did not send the manifest within 1s: it is stalled or too slow (set QYVOL_REGISTRY_TIMEOUT to wait longer)"
        ),
    );

    // A blob: cut when less than 1 KiB arrives within the timeout.
    let port = image_registry((&ld, layer.len()), move || trickled(layer.clone()));
    assert_pull_refused(
        &format!("localhost:{port}/slow:1"),
        &timeout,
        &format!(
            "registry blob `{ld}` of `localhost:{port}/slow:1`: the registry sent less than 1 KiB in 1s: the transfer stalled (set QYVOL_REGISTRY_TIMEOUT to wait longer)"
        ),
    );
}

#[test]
fn a_slow_registry_that_keeps_sending_is_not_cut() {
    let layer = vec![b'w'; 12 << 10];
    let ld = digest(&layer);
    // 2 KiB every 300 ms: 1.8 s for the layer, longer than the timeout, but more than 1 KiB
    // within every second of it.
    let port = image_registry((&ld, layer.len()), move || Body::Paced {
        bytes: layer.clone(),
        piece: 2 << 10,
        every: Duration::from_millis(300),
    });
    let home = Scratch::new();
    let timeout = [("QYVOL_REGISTRY_TIMEOUT", "1s")];
    let (out, _) = pull(&home, &format!("localhost:{port}/slow:1"), &timeout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = home.path(&format!("store/blobs/sha256/{}", &ld[7..]));
    assert!(stored.exists(), "the layer is in the store");
}

#[test]
fn a_registry_timeout_that_is_not_a_duration_is_refused() {
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .env("QYVOL_REGISTRY_TIMEOUT", "soon")
        .args(["pull", "localhost:1/hello:1"])
        .output()
        .expect("pull");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("QYVOL_REGISTRY_TIMEOUT: `soon` is not a duration"),
        "{err}"
    );
}

#[test]
fn an_unknown_digest_algorithm_is_rejected() {
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let body = manifest((&sha512, 10), (&sha512, 10));
    let (port, _) = registry(|_| ok(Body::Bytes(vec![0u8; 10])), body);
    assert_pull_refused(
        &format!("localhost:{port}/odd:1"),
        &[],
        &format!(
            "`{}` is not a digest Qyvol accepts: only `sha256:` digests are supported",
            &sha512[..80]
        ),
    );
}

/// A loopback registry (plain HTTP allowed) cannot send a pull to plain HTTP elsewhere: the
/// node's dashboard pulls too, and such a redirect would make it fetch internal addresses
/// (cloud metadata) and show the answer.
#[test]
fn a_redirect_to_plain_http_off_loopback_is_refused() {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");
    let body = manifest(
        (&digest(&config), config.len()),
        (&digest(&wasm), wasm.len()),
    );
    let (port, _) = registry(
        |_| {
            reply(
                302,
                vec![(
                    "Location".into(),
                    "http://192.0.2.2:9/latest/meta-data".into(),
                )],
                Vec::new(),
            )
        },
        body,
    );
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .env("QYVOL_REGISTRY_TIMEOUT", "3s")
        .args(["pull", &format!("localhost:{port}/redirect:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("redirected to plain HTTP at `192.0.2.2`"),
        "{}",
        stderr(&out)
    );
    assert_nothing_stored(&home);
}

/// A registry behind a token service (Docker's protocol) on another loopback port: the pull
/// gets a token there with the user's credentials and the pull scope, then carries it.
fn token_registry(realm: String) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");
    let (cd, wd) = (digest(&config), digest(&wasm));
    let body = manifest((&cd, config.len()), (&wd, wasm.len()));
    serve(Arc::new(move |path: &str, head: &str| {
        if !head.to_lowercase().contains("authorization: bearer t0ken") {
            return reply(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    format!(
                        r#"Bearer realm="{realm}",service="fake",scope="repository:x:pull,push""#
                    ),
                )],
                Vec::new(),
            );
        }
        if path.contains("/manifests/") {
            manifest_reply(Body::Bytes(body.clone()))
        } else if path.contains(&cd) {
            ok(Body::Bytes(config.clone()))
        } else {
            ok(Body::Bytes(wasm.clone()))
        }
    }))
}

fn logged_in(port: u16) -> Scratch {
    let docker = Scratch::new();
    docker.write(
        "config.json",
        format!(r#"{{"auths":{{"localhost:{port}":{{"auth":"YW5hOnMzY3JldA=="}}}}}}"#),
    );
    docker
}

#[test]
fn a_token_service_on_loopback_gets_the_credentials_and_the_pull_carries_its_token() {
    let (tokens, token_seen) = serve(Arc::new(|_: &str, _: &str| {
        ok(Body::Bytes(br#"{"token":"t0ken"}"#.to_vec()))
    }));
    let (port, _) = token_registry(format!("http://127.0.0.1:{tokens}/token"));
    let docker = logged_in(port);
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .env("DOCKER_CONFIG", docker.dir.path())
        .args(["pull", &format!("localhost:{port}/bearer:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let asked = token_seen.lock().expect("log").join("\n");
    assert!(
        asked.contains("GET /token?scope=repository%3Abearer%3Apull&service=fake "),
        "{asked}"
    );
    assert!(
        asked.contains("authorization: Basic YW5hOnMzY3JldA=="),
        "{asked}"
    );
}

/// A registry (loopback, so plain HTTP) naming a plain-HTTP token service elsewhere would get
/// the node to send the user's password there in clear: refused.
#[test]
fn a_plain_http_token_service_off_loopback_is_refused() {
    let (port, _) = token_registry("http://192.0.2.2:9/token".into());
    let docker = logged_in(port);
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .env("DOCKER_CONFIG", docker.dir.path())
        .env("QYVOL_REGISTRY_TIMEOUT", "3s")
        .args(["pull", &format!("localhost:{port}/bearer:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("token service is `http:` at `192.0.2.2`: refused"),
        "{}",
        stderr(&out)
    );
    assert_nothing_stored(&home);
}

#[test]
fn redirects_to_file_urls_fail_and_credentials_never_reach_another_host() {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");
    let (cd, wd) = (digest(&config), digest(&wasm));

    // A redirect to file:// is not followed.
    let body = manifest((&cd, config.len()), (&wd, wasm.len()));
    let (port, _) = registry(
        |_| {
            reply(
                307,
                vec![("Location".into(), "file:///etc/passwd".into())],
                Vec::new(),
            )
        },
        body.clone(),
    );
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["pull", &format!("localhost:{port}/redirect:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert_nothing_stored(&home);

    // A redirect to another host gets the blobs, but not the user's credentials.
    let (cfg, w) = (config.clone(), wasm.clone());
    let cd2 = cd.clone();
    let (other, other_seen) = serve(Arc::new(move |path: &str, _: &str| {
        if path.contains(&cd2) {
            ok(Body::Bytes(cfg.clone()))
        } else {
            ok(Body::Bytes(w.clone()))
        }
    }));
    let (port, seen) = registry_with(
        true,
        move |path| {
            reply(
                307,
                vec![("Location".into(), format!("http://127.0.0.1:{other}{path}"))],
                Vec::new(),
            )
        },
        move || manifest_reply(Body::Bytes(body.clone())),
    );
    let docker = Scratch::new();
    docker.write(
        "config.json",
        format!(r#"{{"auths":{{"localhost:{port}":{{"auth":"YW5hOnMzY3JldA=="}}}}}}"#),
    );
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .env("DOCKER_CONFIG", docker.dir.path())
        .args(["pull", &format!("localhost:{port}/redirect:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let to_registry = seen.lock().expect("log").join("\n").to_lowercase();
    assert!(
        to_registry.contains("authorization: basic"),
        "the registry itself gets them: {to_registry}"
    );
    let to_other = other_seen.lock().expect("log").join("\n").to_lowercase();
    assert!(!to_other.is_empty(), "the blobs came from the other host");
    assert!(
        !to_other.contains("authorization"),
        "credentials leaked to another host: {to_other}"
    );
}

#[test]
fn a_pull_killed_mid_blob_leaves_no_reference_and_prune_reclaims_its_partial_file() {
    let home = Scratch::new();
    let h = home.dir.path();
    build_tagged(h, &["localhost:5000/hello:1"]);
    let layer = vec![b'w'; 4096];
    let ld = digest(&layer);
    let port = image_registry((&ld, layer.len()), move || trickled(layer.clone()));
    let mut pull = Guarded::spawn(
        qyvol_std()
            .env("QYVOL_HOME", h)
            .args(["pull", &format!("localhost:{port}/slow:1")])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        Duration::from_secs(60),
    );
    // A crash while the blob is being written: part of it is on disk, its reference is not.
    let partial = || {
        std::fs::read_dir(home.path("store/tmp"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
    };
    wait_until("the pull to write part of the blob", partial);
    pull.child().kill().expect("kill -9 the pull");
    let _ = pull.child().wait();

    assert_eq!(image_refs(h), ["localhost:5000/hello:1"]);
    let run = qyvol_in(h)
        .args(["run", "-q", "localhost:5000/hello:1"])
        .output()
        .expect("run");
    assert_eq!(stdout(&run), HELLO, "{}", stderr(&run));

    let prune = qyvol_in(h)
        .env("QYVOL_LANG", "en")
        .arg("prune")
        .output()
        .expect("prune");
    let said = stdout(&prune);
    assert!(
        said.starts_with("Reclaimed space: ") && said != "Reclaimed space: 0B\n",
        "{said}"
    );
    assert!(!partial(), "the partial blob is still in store/tmp");
}
