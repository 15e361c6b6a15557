//! HOSTILE rows 21-22 need a registry that misbehaves on purpose, so these tests run a small
//! HTTP server of their own on loopback: blobs larger than their descriptor, a digest algorithm
//! Qyvol does not accept, a redirect to `file://`, and a redirect to another host, which must
//! not receive the credentials.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::{Scratch, qyvol_in, repo_root, stderr};

type Handler = dyn Fn(&str, &str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// Serves each request with `handler(path, headers)`; records every request's head.
fn serve(handler: Arc<Handler>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            log.lock().expect("log").push(head.clone());
            let (status, headers, body) = handler(&path, &head);
            let mut stream = reader.into_inner();
            let mut response = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                response.push_str(&format!("{k}: {v}\r\n"));
            }
            response.push_str("\r\n");
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, seen)
}

fn digest(bytes: &[u8]) -> String {
    qyvol_store::bundle::sha256_digest(bytes).to_string()
}

/// An OCI manifest with a config and one wasm layer, as the fake registry serves it.
fn manifest(config: (&str, usize), layer: (&str, usize)) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/wasm","digest":"{}","size":{}}}]}}"#,
        config.0, config.1, layer.0, layer.1
    )
    .into_bytes()
}

/// A fake registry; with `basic_auth` it challenges requests that carry no credentials.
fn registry(
    blob: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
    manifest_body: Vec<u8>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    registry_with(false, blob, manifest_body)
}

fn registry_with(
    basic_auth: bool,
    blob: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
    manifest_body: Vec<u8>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    serve(Arc::new(move |path: &str, head: &str| {
        if basic_auth && !head.to_lowercase().contains("authorization: basic") {
            return (
                401,
                vec![("WWW-Authenticate".into(), "Basic realm=\"fake\"".into())],
                Vec::new(),
            );
        }
        let json = |body: Vec<u8>| {
            let d = digest(&body);
            (
                200,
                vec![
                    (
                        "Content-Type".into(),
                        "application/vnd.oci.image.manifest.v1+json".into(),
                    ),
                    ("Docker-Content-Digest".into(), d),
                ],
                body,
            )
        };
        if path == "/v2/" {
            (200, vec![], b"{}".to_vec())
        } else if path.contains("/manifests/") {
            json(manifest_body.clone())
        } else if path.contains("/blobs/") {
            blob(path)
        } else {
            (404, vec![], Vec::new())
        }
    }))
}

fn assert_nothing_stored(home: &Scratch) {
    let out = qyvol_in(home.dir.path())
        .args(["images", "--json"])
        .output()
        .expect("images");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn a_blob_larger_than_its_descriptor_is_cut_off_and_nothing_is_stored() {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let wasm = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello");
    // The descriptor claims 100 bytes; the registry sends the whole module and more.
    let (cd, wd) = (digest(&config), digest(&wasm[..100]));
    let body = manifest((&cd, config.len()), (&wd, 100));
    let cfg = config.clone();
    let (port, _) = registry(
        move |path| {
            if path.contains(&cd) {
                (200, vec![], cfg.clone())
            } else {
                (200, vec![], wasm.repeat(4))
            }
        },
        body,
    );
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["pull", &format!("localhost:{port}/big:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_nothing_stored(&home);
}

#[test]
fn an_unknown_digest_algorithm_is_rejected() {
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let body = manifest((&sha512, 10), (&sha512, 10));
    let (port, _) = registry(|_| (200, vec![], vec![0u8; 10]), body);
    let home = Scratch::new();
    let out = qyvol_in(home.dir.path())
        .args(["pull", &format!("localhost:{port}/odd:1")])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("only `sha256:` digests are supported"),
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
            (
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
            (200, vec![], cfg.clone())
        } else {
            (200, vec![], w.clone())
        }
    }));
    let (port, seen) = registry_with(
        true,
        move |path| {
            (
                307,
                vec![("Location".into(), format!("http://127.0.0.1:{other}{path}"))],
                Vec::new(),
            )
        },
        body,
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
