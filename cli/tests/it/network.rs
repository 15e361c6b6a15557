//! Outbound network checks over the real binary and real loopback servers: HTTPS from a guest
//! to a TLS server whose CA is made here, URL authorities judged as they would be reached, UDP
//! datagrams reaching only the socket a `listen` grant covers, name lookups limited to granted
//! names, and `block_private` keeping name grants off the host's own loopback (HOSTILE row 31:
//! a guest connecting to the server's own port on loopback).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fixture::{Scratch, qyvol, qyvol_std, stderr, stdout};
use crate::fixture::{Served, UdpReceiver, handler};

/// A loopback HTTP/1.1 server answering every request with 200 and `body`, over TLS when given
/// a configuration; it counts the connections it accepts.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    fn start(body: &'static str, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().map_while(Result::ok) {
                seen.fetch_add(1, Ordering::SeqCst);
                // A client that refuses the certificate ends the handshake: next connection.
                let _ = match &tls {
                    None => answer(tcp, body),
                    Some(config) => rustls::ServerConnection::new(config.clone())
                        .map_err(std::io::Error::other)
                        .and_then(|conn| {
                            let mut tls = rustls::StreamOwned::new(conn, tcp);
                            answer(&mut tls, body)?;
                            tls.conn.send_close_notify();
                            tls.flush()
                        }),
                };
            }
        });
        Self { addr, connections }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads a request head and answers it.
fn answer(mut s: impl Read + Write, body: &str) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte)? == 1 {
        head.push(byte[0]);
    }
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

/// A certificate authority made for one test.
struct TestCa(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("a key");
        Self(rcgen::CertifiedIssuer::self_signed(params, key).expect("a CA certificate"))
    }

    /// The CA's certificate as PEM, the form `SSL_CERT_FILE` names.
    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A TLS server configuration for `host`, with a certificate this CA signed.
    fn server(&self, host: &str) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = rcgen::CertificateParams::new(vec![host.to_string()])
            .expect("params")
            .signed_by(&key, &self.0)
            .expect("a server certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("a server configuration");
        Arc::new(config)
    }
}

/// A manifest running the WASI 0.2 probe in `environment` with `grants`.
fn probe_manifest(scratch: &Scratch, environment: &str, grants: &[String]) -> PathBuf {
    scratch.guest("probe-p2.wasm");
    let allow: Vec<String> = grants.iter().map(|g| format!("\"{g}\"")).collect();
    scratch.write(
        "net.qyv",
        format!(
            "name: net\nentrypoint: probe-p2.wasm\nruntime: wasi\nenvironment: {environment}\nnetwork:\n  allow: [{}]\n",
            allow.join(", ")
        ),
    )
}

/// Runs the probe of `manifest` with `args`, trusting only the CA in `ca_file` (if any).
fn probe(manifest: &Path, ca_file: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = qyvol();
    cmd.args(["run", "-q"]).arg(manifest).args(args);
    cmd.env_remove("SSL_CERT_DIR").env_remove("SSL_CERT_FILE");
    if let Some(ca) = ca_file {
        cmd.env("SSL_CERT_FILE", ca);
    }
    cmd.output().expect("run qyvol")
}

/// The probe's GET of `https://localhost:PORT/` from a server answering `body` with a
/// certificate `signer` issued, granted by name, with `SSL_CERT_FILE` holding `trusted_pem`.
fn https_get(signer: &TestCa, trusted_pem: &str, body: &'static str) -> (Output, Upstream) {
    let scratch = Scratch::new();
    let server = Upstream::start(body, Some(signer.server("localhost")));
    let authority = format!("localhost:{}", server.port());
    let manifest = probe_manifest(&scratch, "native", std::slice::from_ref(&authority));
    let ca_file = scratch.write("ca.pem", trusted_pem);
    let out = probe(
        &manifest,
        Some(&ca_file),
        &["get", &format!("https://{authority}/")],
    );
    (out, server)
}

#[test]
fn a_guest_fetches_https_from_a_granted_host_signed_by_a_ca_the_operator_trusts() {
    let ca = TestCa::new("Qyvol test CA");
    let (out, _) = https_get(&ca, &ca.pem(), "hello over tls");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "200 hello over tls\n");
}

#[test]
fn a_certificate_from_an_untrusted_ca_fails_the_guest_request_not_the_host() {
    let trusted = TestCa::new("Qyvol test CA");
    let impostor = TestCa::new("Impostor CA");
    let (out, server) = https_get(&impostor, &trusted.pem(), "secret");
    // The guest's own exit code for its failed request, not a crash of Qyvol.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "error: ErrorCode::TlsCertificateError\n");
    assert!(server.connections() >= 1, "the handshake was attempted");
}

#[test]
fn https_without_any_trusted_root_says_how_to_add_one() {
    let ca = TestCa::new("Qyvol test CA");
    let (out, server) = https_get(&ca, "", "secret");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "error: ErrorCode::ConfigurationError\n");
    let err = stderr(&out);
    assert!(
        err.contains(
            "🚫 HTTPS a localhost imposible: no usable root certificate in SSL_CERT_FILE="
        ) && err.contains("apunta SSL_CERT_FILE a un PEM"),
        "{err}"
    );
    assert_eq!(server.connections(), 0, "refused before connecting");
}

#[test]
fn an_authority_with_user_info_is_refused_not_checked_as_its_host() {
    let scratch = Scratch::new();
    let up = Upstream::start("upstream", None);
    let manifest = probe_manifest(&scratch, "native", &[up.addr.to_string()]);
    let authority = format!("user@{}", up.addr);
    let out = probe(&manifest, None, &["get", &format!("http://{authority}/")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "error: ErrorCode::HttpRequestUriInvalid\n");
    assert!(
        stderr(&out).contains(&format!("🚫 Petición HTTP denegada: `{authority}` no es")),
        "{}",
        stderr(&out)
    );
    assert_eq!(up.connections(), 0);
}

#[test]
fn a_port_past_65535_is_refused_not_checked_as_port_80() {
    let scratch = Scratch::new();
    let manifest = probe_manifest(&scratch, "native", &["127.0.0.1:80".into()]);
    let out = probe(&manifest, None, &["get", "http://127.0.0.1:65616/"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Since wasmtime 49, wasi:http refuses the authority when the guest sets it, before the
    // request exists: it never reaches Qyvol's check, let alone port 80.
    assert_eq!(stdout(&out), "error: bad request\n");
    assert!(!stderr(&out).contains("127.0.0.1:80"), "{}", stderr(&out));
}

/// The probe's `udp-recv BIND` under `manifest`.
fn udp_receiver(manifest: &Path, bind: &str) -> UdpReceiver {
    let mut cmd = qyvol_std();
    cmd.args(["run", "-q", "--timeout", "10s"])
        .arg(manifest)
        .args(["udp-recv", bind]);
    UdpReceiver::start(cmd)
}

#[test]
fn udp_datagrams_from_any_peer_reach_only_a_socket_bound_to_a_listen_grant() {
    let scratch = Scratch::new();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind the granted peer");
    let intruder = UdpSocket::bind("127.0.0.1:0").expect("bind a peer nobody granted");
    let listen_port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let manifest = probe_manifest(
        &scratch,
        "native",
        &[
            peer.local_addr().expect("addr").to_string(),
            format!("listen 127.0.0.1:{listen_port}"),
        ],
    );

    // A socket on an ephemeral port hears the granted peer only, though a `listen` grant exists.
    let receiver = udp_receiver(&manifest, "0.0.0.0:0");
    let to = ("127.0.0.1", receiver.port);
    intruder.send_to(b"intruder", to).expect("send");
    peer.send_to(b"granted", to).expect("send");
    assert_eq!(
        receiver.rest(),
        format!("got granted from {}\n", peer.local_addr().expect("addr"))
    );

    // The socket bound to the `listen` grant's address hears anyone.
    let receiver = udp_receiver(&manifest, &format!("127.0.0.1:{listen_port}"));
    assert_eq!(receiver.port, listen_port);
    intruder
        .send_to(b"anyone", ("127.0.0.1", listen_port))
        .expect("send");
    assert_eq!(
        receiver.rest(),
        format!("got anyone from {}\n", intruder.local_addr().expect("addr"))
    );
}

#[test]
fn a_name_lookup_needs_a_grant_naming_that_name() {
    let scratch = Scratch::new();
    let manifest = probe_manifest(&scratch, "native", &["a.example:80".into()]);
    let out = probe(&manifest, None, &["resolve", "localhost"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).starts_with("error:"), "{out:?}");
    assert!(
        stderr(&out).contains("🚫 Búsqueda DNS denegada: localhost;"),
        "{}",
        stderr(&out)
    );

    let manifest = probe_manifest(&scratch, "native", &["localhost:80".into()]);
    let out = probe(&manifest, None, &["resolve", "localhost"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).starts_with("localhost is ") && stdout(&out).contains("127.0.0.1"),
        "{out:?}"
    );
}

#[test]
fn under_edge_a_name_grant_reaches_loopback_only_when_an_address_grant_names_it() {
    let scratch = Scratch::new();
    let up = Upstream::start("upstream", None);
    let name = format!("localhost:{}", up.port());
    let addr = up.addr.to_string();

    let by_name = probe_manifest(&scratch, "edge", std::slice::from_ref(&name));
    let out = probe(&by_name, None, &["fetch", &name]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "error: ErrorCode::DestinationIpProhibited\n");
    assert!(
        stderr(&out).contains(&format!("🚫 Red denegada (connect): {name} es ")),
        "{}",
        stderr(&out)
    );
    let out = probe(&by_name, None, &["connect", &name, "hi"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains(&format!(
            "🚫 Red denegada (connect): {addr} es una dirección de loopback"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(up.connections(), 0, "nothing reached the loopback server");

    let named = probe_manifest(&scratch, "edge", &[name.clone(), addr]);
    let out = probe(&named, None, &["fetch", &name]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "upstream answered 200\n");

    // `native` keeps today's behaviour: a name grant reaches what the name resolves to.
    let native = probe_manifest(&scratch, "native", std::slice::from_ref(&name));
    let out = probe(&native, None, &["fetch", &name]);
    assert_eq!(stdout(&out), "upstream answered 200\n", "{out:?}");
}

#[test]
fn an_untrusted_manifest_cannot_turn_block_private_off() {
    let scratch = Scratch::new();
    scratch.guest("probe-p2.wasm");
    let manifest = scratch.write(
        "net.qyv",
        "name: net\nentrypoint: probe-p2.wasm\nruntime: wasi\nenvironment: edge\nnetwork:\n  allow: [\"localhost:80\"]\n  block_private: false\n",
    );
    let out = probe(&manifest, None, &["fetch", "localhost:80"]);
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    assert!(
        stderr(&out).contains("`network.block_private: false`"),
        "{}",
        stderr(&out)
    );
}

/// HOSTILE row 31: a handler asks its own server, on loopback, through a name grant.
#[test]
fn a_handler_cannot_reach_its_own_server_through_a_loopback_name() {
    let scratch = Scratch::new();
    let by_name = handler(
        &scratch,
        "byname",
        "http-probe.wasm",
        "environment: edge\nnetwork:\n  allow: [\"localhost:*\"]\nhttp:\n  route: /name/...\n",
    );
    let by_addr = handler(
        &scratch,
        "byaddr",
        "http-probe.wasm",
        "environment: edge\nnetwork:\n  allow: [\"127.0.0.1:*\"]\nhttp:\n  route: /addr/...\n",
    );
    let s = Served::start(&[&by_name, &by_addr]);
    let own = s.addr.port();
    let r = s.get(&format!("/name/fetch?to=localhost:{own}"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (502, "fetch failed: ErrorCode::DestinationIpProhibited")
    );
    s.wait_log(&format!("🚫 Red denegada (connect): localhost:{own} es "));
    // Granted by address, the same request reaches the server (which has no route for `/`).
    let r = s.get(&format!("/addr/fetch?to=127.0.0.1:{own}"));
    assert_eq!((r.status, r.body.as_str()), (200, "upstream answered 404"));
}
