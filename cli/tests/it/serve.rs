//! `qyvol serve` over real HTTP: the real binary on a free loopback port, requests written on
//! a TCP socket, the access log read from its stderr.

mod hostile;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::fixture::{
    Scratch, Served, handler, qyvol, qyvol_std, repo_root, request, send, upstream,
};

/// Both test handlers on one server: the component at `/...`, the CGI module at `/cgi/...`,
/// each manifest with the `extra` lines.
fn serve_probes(scratch: &Scratch, extra: &str) -> Served {
    let comp = handler(scratch, "comp", "http-probe.wasm", extra);
    let cgi = handler(
        scratch,
        "cgi",
        "cgi-probe.wasm",
        &format!("{extra}http:\n  route: /cgi/...\n"),
    );
    Served::start(&[&comp, &cgi])
}

fn example(rel: &str) -> String {
    repo_root().join(rel).display().to_string()
}

#[test]
fn serves_the_examples_on_their_routes_and_404s_the_rest() {
    let s = Served::start(&[
        &example("examples/http-hello/http-hello.qyv"),
        &example("examples/cgi-hello/cgi-hello.qyv"),
    ]);
    let r = s.get("/hello/world?x=1");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "¡Hola desde Qyvol! GET /hello/world?x=1\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        s.get("/hello").status,
        200,
        "/hello/... covers /hello itself"
    );

    let r = s.post("/cgi/greet", b"soy Ana");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        "¡Hola desde un módulo CGI! POST /cgi/greet\nbody: soy Ana\n"
    );

    let r = s.get("/nothing/here");
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.body.contains("no route"), "{r:?}");
    let line = s.wait_log("GET /hello/world 200");
    assert!(line.ends_with("http-hello"), "{line}");
    s.wait_log("POST /cgi/greet 200");
    s.wait_log("GET /nothing/here 404");
    assert!(
        s.log().contains("/hello/... → http-hello (componente)"),
        "{}",
        s.log()
    );
    assert!(
        s.log().contains("/cgi/... → cgi-hello (módulo CGI)"),
        "{}",
        s.log()
    );
}

#[test]
fn serves_bundles_and_images_from_the_store() {
    let scratch = Scratch::new();
    let home = Scratch::new();
    let m = handler(
        &scratch,
        "bundled",
        "http-probe.wasm",
        "http:\n  route: /b/...\n",
    );
    let bundle = scratch.path("bundled.qyvc");
    crate::fixture::qyvol_in(home.dir.path())
        .args(["build", "-q", &m, "-o"])
        .arg(&bundle)
        .args(["-t", "local/probe:1"])
        .assert()
        .success();
    let stored = handler(&scratch, "plain", "http-probe.wasm", "");
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", home.dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&bundle)
        .arg("local/probe:1")
        .arg(&stored);
    // Two apps on `/b/...` (the bundle and the image are the same manifest): refused.
    let out = cmd.output().expect("serve");
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        crate::fixture::stderr(&out)
    );
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", home.dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "local/probe:1"])
        .arg(&stored);
    let s = Served::spawn(cmd);
    assert_eq!(s.get("/b/x").body, "probe /b/x\n");
    assert_eq!(s.get("/other").body, "probe /other\n");
    assert!(s.wait_log("GET /b/x 200").ends_with("bundled"));

    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", home.dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&bundle);
    let s = Served::spawn(cmd);
    assert_eq!(s.get("/b").body, "probe /b\n");
}

#[test]
fn the_most_specific_route_wins() {
    let scratch = Scratch::new();
    // Each app says who it is: `WHO` in its environment, which the component answers on
    // `/env?name=WHO` and the CGI module prints with the rest of its environment.
    let all = handler(&scratch, "all", "http-probe.wasm", "env: { WHO: all }\n");
    let api = handler(
        &scratch,
        "api",
        "cgi-probe.wasm",
        "env: { WHO: api }\nhttp:\n  route: /api/...\n",
    );
    let exact = handler(
        &scratch,
        "exact",
        "http-probe.wasm",
        "env: { WHO: exact }\nhttp:\n  route: /api/env\n",
    );
    let s = Served::start(&[&all, &api, &exact]);
    let cgi_vars = |path: &str| {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        r.body.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let users = cgi_vars("/api/users");
    assert!(users.contains(&"WHO=api".into()) && users.contains(&"PATH_INFO=/users".into()));
    let base = cgi_vars("/api");
    assert!(base.contains(&"WHO=api".into()) && base.contains(&"SCRIPT_NAME=/api".into()));
    assert!(cgi_vars("/api/env/more").contains(&"WHO=api".into()));
    // The exact route beats the prefix that also covers it, and the prefix beats `/...`.
    assert_eq!(s.get("/api/env?name=WHO").body, "WHO=exact");
    // `/api/...` covers `/api/x`, not `/apix`.
    assert_eq!(s.get("/apix/env?name=WHO").body, "WHO=all");
    s.assert_log_ends("GET /api/env 200", " exact");
    s.assert_log_ends("GET /apix/env 200", " all");
}

#[test]
fn failures_stay_with_their_request_and_the_server_keeps_serving() {
    let scratch = Scratch::new();
    let s = serve_probes(&scratch, "limits: { memory: 32MiB, timeout: 700ms }\n");

    let trap = s.get("/trap");
    assert_eq!(trap.status, 500, "{trap:?}");
    assert!(
        !trap.body.contains("unreachable"),
        "no insides leak: {trap:?}"
    );
    assert!(
        s.wait_log("GET /trap 500")
            .contains("trap: wasm `unreachable`")
    );

    let spin = s.get("/spin");
    assert_eq!(spin.status, 504, "a busy loop is stopped: {spin:?}");
    assert!(s.wait_log("GET /spin 504").contains("700ms"));
    let sleep = s.get("/sleep?ms=60000");
    assert_eq!(
        sleep.status, 504,
        "a sleep in a host call is stopped: {sleep:?}"
    );

    let alloc = s.get("/alloc?mib=64");
    assert_eq!(alloc.status, 500, "{alloc:?}");
    assert!(s.wait_log("GET /alloc 500").contains("32MiB"));
    assert_eq!(s.get("/alloc?mib=4").status, 200, "within the limit");

    assert_eq!(s.get("/cgi/trap").status, 500);
    assert_eq!(s.get("/cgi/spin").status, 504);
    assert_eq!(s.get("/cgi/alloc").status, 500);
    assert_eq!(
        s.get("/cgi/fail").status,
        500,
        "a non-zero exit is a failure"
    );
    s.assert_log_ends(
        "GET /cgi/fail 500",
        " cgi — the handler exited with code 3 before sending a response",
    );
    assert_eq!(
        s.get("/cgi/garbage").status,
        500,
        "output that is no response"
    );
    assert!(s.wait_log("GET /cgi/garbage 500").contains("header"));

    // After all of that, both still answer.
    assert_eq!(s.get("/ok").body, "probe /ok\n");
    assert_eq!(s.get("/cgi/env").status, 200);
}

#[test]
fn bodies_over_the_cap_get_413_whether_declared_or_streamed() {
    let scratch = Scratch::new();
    let comp = handler(
        &scratch,
        "comp",
        "http-probe.wasm",
        "http:\n  max_body: 1KiB\n",
    );
    let s = Served::start(&[&comp]);
    let r = s.post("/echo", b"hola");
    assert_eq!((r.status, r.body.as_str()), (200, "4 bytes: hola"));
    let big = vec![b'x'; 2048];
    let r = s.post("/echo", &big);
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body.contains("1024"), "{r:?}");
    // Chunked, with no length announced: cut off when it passes the cap.
    let chunked = format!("800\r\n{}\r\n0\r\n\r\n", "y".repeat(2048));
    let r = request(
        s.addr,
        "POST",
        "/echo",
        &[("Transfer-Encoding", "chunked")],
        chunked.as_bytes(),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert!(s.wait_log("POST /echo 413").contains("1KiB"));
    assert_eq!(s.post("/echo", b"again").status, 200);
}

#[test]
fn concurrent_requests_each_get_their_own_instance() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.path("sync")).expect("mkdir");
    let s = serve_probes(&scratch, "mounts:\n  - { host: ./sync, guest: /sync }\n");
    let addr = s.addr;
    let workers: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|j| {
                        let body = format!("worker {i} request {j}");
                        let path = if j % 2 == 0 { "/echo" } else { "/cgi/echo" };
                        let len = body.len().to_string();
                        let r = request(
                            addr,
                            "POST",
                            path,
                            &[("Content-Length", &len)],
                            body.as_bytes(),
                        );
                        (r.status, r.body, body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut n = 0;
    for w in workers {
        for (status, got, sent) in w.join().expect("worker") {
            assert_eq!(status, 200);
            assert_eq!(got, format!("{} bytes: {sent}", sent.len()));
            n += 1;
        }
    }
    assert_eq!(n, 160);
    // Handlers run at once, each in an instance of its own: every one of these waits at a
    // barrier (a slot file in `/sync`) that only opens when all sixteen are in their
    // handlers, and answers with its slot, which no other instance can have taken.
    const N: usize = 16;
    let waiting: Vec<_> = (0..N)
        .map(|i| {
            let path = match i % 2 {
                0 => format!("/barrier?n={N}"),
                _ => format!("/cgi/barrier?n={N}"),
            };
            std::thread::spawn(move || request(addr, "GET", &path, &[], b""))
        })
        .collect();
    let mut slots: Vec<usize> = waiting
        .into_iter()
        .map(|t| {
            let r = t.join().expect("request at the barrier");
            assert_eq!(r.status, 200, "{r:?}");
            let rest = r.body.strip_prefix("slot ").expect("a slot");
            let (slot, tail) = rest.split_once([',', '\n']).expect("a slot number");
            // The component's instance counts its own requests: this is its first.
            assert!(
                tail.is_empty() || tail == " request 1 of this instance\n",
                "{r:?}"
            );
            slot.parse().expect("a slot number")
        })
        .collect();
    slots.sort_unstable();
    assert_eq!(slots, (0..N).collect::<Vec<_>>());
}

#[test]
fn every_request_gets_a_fresh_instance_even_on_one_connection() {
    let scratch = Scratch::new();
    let comp = handler(&scratch, "comp", "http-probe.wasm", "");
    let s = Served::start(&[&comp]);
    // Three requests pipelined on one keep-alive connection, the last one closing it.
    let mut conn = TcpStream::connect(s.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let one = format!("GET /count HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    let last = format!(
        "GET /count HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    );
    conn.write_all(format!("{one}{one}{last}").as_bytes())
        .expect("send");
    let mut all = String::new();
    conn.read_to_string(&mut all).expect("read");
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 3, "{all}");
    assert_eq!(
        all.matches("request 1 of this instance").count(),
        3,
        "{all}"
    );

    // HTTP/1.0 without a Host header cannot be handed to a wasi:http handler.
    let r = send(s.addr, b"GET /count HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(s.wait_log("GET /count 400").contains("Host"));
}

#[test]
fn malformed_http_gets_4xx_and_never_reaches_a_handler() {
    let scratch = Scratch::new();
    let s = serve_probes(&scratch, "");
    let raw = |bytes: &[u8]| {
        let mut c = TcpStream::connect(s.addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = c.write_all(bytes);
        let mut head = [0u8; 64];
        let n = c.read(&mut head).unwrap_or(0);
        String::from_utf8_lossy(&head[..n]).into_owned()
    };
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    assert!(raw(long_uri.as_bytes()).starts_with("HTTP/1.1 414"));
    // More header fields than the server takes. (A single 500 KB field gets the same 431, but
    // the server closes with part of it unread, and the reset that follows can overtake the
    // answer on its way to the client: a racy test.)
    let fields: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let too_many_fields = format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
    assert!(raw(too_many_fields.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(raw(b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(
        raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n").starts_with("HTTP/1.1 400")
    );
    // A header value that is not text reaches a CGI handler as nothing, not as garbage.
    let r = request(s.addr, "GET", "/cgi/env", &[("X-Ok", "yes")], b"");
    assert!(r.body.contains("HTTP_X_OK=yes"), "{r:?}");
    let r = send(
        s.addr,
        b"GET /cgi/env HTTP/1.1\r\nHost: x\r\nX-Bin: \xff\xfe\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("HTTP_X_BIN"), "{r:?}");
    // Still serving.
    assert_eq!(s.get("/after").body, "probe /after\n");
}

#[test]
fn cgi_handlers_get_the_request_as_wagi_variables() {
    let scratch = Scratch::new();
    let cgi = handler(
        &scratch,
        "cgi",
        "cgi-probe.wasm",
        "env: { GREETING: hola }\nhttp:\n  route: /app/...\n",
    );
    let s = Served::start(&[&cgi]);
    let r = request(
        s.addr,
        "GET",
        "/app/env?q=1&r=2",
        &[
            ("X-Custom", "yes"),
            ("Authorization", "Bearer secret"),
            ("Greeting", "from-client"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{r:?}");
    for want in [
        "REQUEST_METHOD=GET",
        "SCRIPT_NAME=/app",
        "PATH_INFO=/env",
        "QUERY_STRING=q=1&r=2",
        "HTTP_X_CUSTOM=yes",
        "X_MATCHED_ROUTE=/app/...",
        "GATEWAY_INTERFACE=CGI/1.1",
        "REMOTE_ADDR=127.0.0.1",
        "GREETING=hola",
    ] {
        assert!(
            r.body.lines().any(|l| l == want),
            "{want} missing in:\n{}",
            r.body
        );
    }
    assert!(!r.body.contains("secret"), "credentials are not passed on");

    let r = s.get("/app/missing");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-probe"), Some("yes"));
    let r = s.get("/app/redirect");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/elsewhere"));
}

#[test]
fn the_json_access_log_has_one_object_per_request() {
    let scratch = Scratch::new();
    let probe = handler(
        &scratch,
        "probe",
        "http-probe.wasm",
        "http:\n  route: /p/...\n",
    );
    let s = Served::start(&[
        "--json",
        &example("examples/http-hello/http-hello.qyv"),
        &probe,
    ]);
    assert_eq!(s.get("/hello/json").status, 200);
    assert_eq!(s.get("/nope").status, 404);
    let ok = s.wait_log("\"/hello/json\"");
    let v: serde_json::Value = serde_json::from_str(&ok).expect("a JSON line");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["status"], 200);
    assert_eq!(v["app"], "http-hello");
    assert!(v["duration_ms"].as_f64().is_some_and(|d| d > 0.0), "{v}");
    assert!(v["error"].is_null());
    let miss: serde_json::Value = serde_json::from_str(&s.wait_log("\"/nope\"")).expect("JSON");
    assert_eq!(miss["status"], 404);
    assert!(miss["error"].is_string());
    assert_eq!(s.get("/p/fetch?to=127.0.0.1:9").status, 502);
    let denied: serde_json::Value =
        serde_json::from_str(&s.wait_log("network-denied")).expect("JSON");
    assert_eq!(denied["kind"], "connect");
    assert_eq!(denied["target"], "127.0.0.1:9");
    assert_eq!(denied["reason"], "not-granted");
    // Every line after the banner is JSON.
    let log = s.log();
    let after = log.lines().skip_while(|l| !l.contains("http://")).skip(1);
    for line in after {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(v["event"].is_string(), "{line}");
    }
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits() {
    // The handler calls this listener and waits for its answer, so the test knows when the
    // request is inside the handler, and decides when it finishes.
    let upstream = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = upstream.local_addr().expect("addr");
    let (called, inside) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((c, _)) = upstream.accept() {
            let _ = called.send(c);
        }
    });
    let scratch = Scratch::new();
    let comp = handler(
        &scratch,
        "comp",
        "http-probe.wasm",
        &format!("network:\n  allow: [\"{up}\"]\n"),
    );
    let mut s = Served::start(&[&comp]);
    let addr = s.addr;
    let slow =
        std::thread::spawn(move || request(addr, "GET", &format!("/fetch?to={up}"), &[], b""));
    let mut call = inside
        .recv_timeout(Duration::from_secs(10))
        .expect("the handler calls the upstream");
    s.signal("TERM");
    s.wait_log("esperando 1 peticiones en curso");
    // Draining: the request in flight still gets its answer.
    let mut head = [0u8; 1024];
    let _ = call.read(&mut head).expect("the handler's request");
    call.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .expect("answer the handler");
    drop(call);
    let r = slow.join().expect("slow request");
    assert_eq!((r.status, r.body.as_str()), (200, "upstream answered 200"));
    let status = s.child.wait().expect("wait");
    assert!(status.success(), "{status:?}\n{}", s.log());
    // The stderr reader may lag the exit by a moment.
    s.wait_log("Servidor detenido");
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn sigint_stops_an_idle_server_at_once() {
    let mut s = Served::start(&[&example("examples/http-hello/http-hello.qyv")]);
    assert_eq!(s.get("/hello").status, 200);
    s.signal("INT");
    let status = s.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_address_space_for_the_pool_instances_are_allocated_on_demand() {
    let scratch = Scratch::new();
    let comp = handler(&scratch, "comp", "http-probe.wasm", "");
    // 64 GiB of address space: far too little for a pool of 1000 instance slots, plenty for
    // instances made one request at a time.
    let base = qyvol_std();
    let mut cmd = std::process::Command::new("sh");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["-c", "ulimit -v 67108864 && exec \"$0\" \"$@\""])
        .arg(base.get_program())
        .args(["serve", "--listen", "127.0.0.1:0", &comp]);
    let s = Served::spawn(cmd);
    assert!(
        s.log().contains("asignador por pools no está disponible"),
        "{}",
        s.log()
    );
    for i in 0..3 {
        let r = s.post("/echo", format!("n{i}").as_bytes());
        assert_eq!((r.status, r.body), (200, format!("2 bytes: n{i}")));
    }
    let addr = s.addr;
    let parallel: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/sleep?ms=100", &[], b"").status))
        .collect();
    for t in parallel {
        assert_eq!(t.join().expect("request"), 200);
    }
}

#[test]
fn outgoing_http_reaches_only_granted_hosts() {
    let up = upstream().addr;
    let scratch = Scratch::new();
    let denied = handler(&scratch, "denied", "http-probe.wasm", "");
    let granted = handler(
        &scratch,
        "granted",
        "http-probe.wasm",
        &format!(
            "environment: edge\nnetwork:\n  allow: [\"{}\"]\nhttp:\n  route: /granted/...\n",
            up
        ),
    );
    let s = Served::start(&[&denied, &granted]);
    let r = s.get(&format!("/fetch?to={up}"));
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        r.body.contains("HttpRequestDenied"),
        "the guest sees a WASI error: {r:?}"
    );
    let line = s.wait_log("Red denegada");
    assert!(line.contains(&up.to_string()), "names the address: {line}");

    let r = s.get(&format!("/granted/fetch?to={up}"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "upstream answered 200"),
        "{r:?}"
    );
    // A grant is for its port only: another port of the same host, with a server listening on
    // it, is refused by the grant check, and never sees a connection.
    let other = upstream();
    let r = s.get(&format!("/granted/fetch?to={}", other.addr));
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("HttpRequestDenied"), "{r:?}");
    s.wait_log(&format!("Red denegada (connect): {}", other.addr));
    assert_eq!(other.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_command_makes_outgoing_http_requests_only_to_granted_hosts() {
    let up = upstream().addr;
    let scratch = Scratch::new();
    scratch.guest("probe-p2.wasm");
    let out = qyvol()
        .args(["run", "-q"])
        .arg(scratch.path("probe-p2.wasm"))
        .args(["fetch", &up.to_string()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        crate::fixture::stdout(&out).contains("HttpRequestDenied"),
        "{out:?}"
    );
    assert!(
        crate::fixture::stderr(&out).contains(&format!("Red denegada (connect): {up}")),
        "{}",
        crate::fixture::stderr(&out)
    );
    let m = scratch.write(
        "fetch.qyv",
        format!(
            "name: fetch\nentrypoint: probe-p2.wasm\nruntime: wasi\nnetwork:\n  allow: [\"{up}\"]\n"
        ),
    );
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&m)
        .args(["fetch", &up.to_string()])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(crate::fixture::stdout(&out), "upstream answered 200\n");
}

#[test]
fn sockets_connect_and_listen_only_where_granted() {
    let up = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            for mut c in l.incoming().map_while(Result::ok) {
                let mut got = String::new();
                let _ = c.read_to_string(&mut got);
                let _ = c.write_all(format!("echo {got}").as_bytes());
            }
        });
        addr
    };
    let scratch = Scratch::new();
    scratch.guest("probe-p2.wasm");
    let out = qyvol()
        .args(["run", "-q"])
        .arg(scratch.path("probe-p2.wasm"))
        .args(["connect", &up.to_string(), "hi"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = crate::fixture::stderr(&out);
    assert!(
        err.contains(&format!("Red denegada (connect): {up}")),
        "{err}"
    );
    assert!(
        crate::fixture::stdout(&out).contains("error:"),
        "the guest sees the refusal"
    );

    let manifest = scratch.write(
        "net.qyv",
        format!(
            "name: net\nentrypoint: probe-p2.wasm\nruntime: wasi\nnetwork:\n  allow: [\"{up}\"]\n"
        ),
    );
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&manifest)
        .args(["connect", &up.to_string(), "hi"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(crate::fixture::stdout(&out), "connected: echo hi\n");

    // Listening needs a `listen` grant; a `connect` grant for the same address is not one.
    let free = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let out = qyvol()
        .args(["run", "-q", "--environment", "native"])
        .arg(scratch.write(
            "l.qyv",
            format!("name: l\nentrypoint: probe-p2.wasm\nruntime: wasi\nnetwork:\n  allow: [\"{free}\"]\n"),
        ))
        .args(["listen", &free.to_string()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        crate::fixture::stderr(&out).contains(&format!("listen {free}")),
        "{}",
        crate::fixture::stderr(&out)
    );
}

#[test]
fn the_microservice_example_answers_on_its_granted_port() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let scratch = Scratch::new();
    std::fs::copy(
        repo_root().join("examples/tcp-hello/tcp-hello.wasm"),
        scratch.path("tcp-hello.wasm"),
    )
    .expect("copy");
    // The example's manifest, on a free port.
    let text = std::fs::read_to_string(repo_root().join("examples/tcp-hello/tcp-hello.qyv"))
        .expect("example manifest")
        .replace("7070", &port.to_string());
    let manifest = scratch.write("tcp-hello.qyv", text);
    let mut child = qyvol_std()
        .arg("run")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the microservice");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("its first line");
    assert_eq!(first.trim(), format!("listening on 127.0.0.1:{port}"));
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to it");
    conn.write_all(b"Ana\n").expect("send");
    let mut reply = String::new();
    BufReader::new(conn).read_line(&mut reply).expect("reply");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reply, "hola, Ana\n");
}

#[test]
fn serve_refuses_what_it_cannot_serve_before_listening() {
    let scratch = Scratch::new();
    scratch.write("data/x", "x");
    let cases = [
        (
            "name: a\nentrypoint: http-probe.wasm\nruntime: wasi-http\nenvironment: edge\nmounts:\n  - { host: ./data, guest: /data, readonly: false }\n",
            77,
            "writable mount",
        ),
        (
            "name: a\nentrypoint: http-probe.wasm\nruntime: wasi-http\nenvironment: edge\nnetwork:\n  allow: [\"listen 0.0.0.0:80\"]\n",
            77,
            "listen 0.0.0.0:80",
        ),
        (
            "name: a\nentrypoint: http-probe.wasm\nruntime: wasi-http\nenvironment: edge\nlimits: { timeout: 1m }\n",
            77,
            "60s",
        ),
        (
            "name: a\nentrypoint: http-probe.wasm\nruntime: wasi\n",
            78,
            "qyvol run",
        ),
        (
            "name: a\nentrypoint: probe-p2.wasm\nruntime: wasi-http\n",
            65,
            "incoming-handler",
        ),
        // Mounts are checked where every guest gets them (HOSTILE row 35).
        (
            "name: a\nentrypoint: http-probe.wasm\nruntime: wasi-http\nmounts:\n  - { host: ./data, guest: /data, readonly: false }\n  - { host: ./data, guest: /ro, readonly: true }\n",
            78,
            "the read-only mount `/ro`",
        ),
        (
            "name: a\nentrypoint: http-probe.wasm\nruntime: wasi-http\nenvironment: edge\nmounts:\n  - { host: ./data, guest: /data }\n  - { host: ./data, guest: /data/again }\n",
            78,
            "the guest path `/data/again`",
        ),
    ];
    scratch.guest("http-probe.wasm");
    scratch.guest("probe-p2.wasm");
    for (i, (text, code, needle)) in cases.iter().enumerate() {
        let m = scratch.write(&format!("m{i}.qyv"), text);
        let out = qyvol()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg(&m)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("serve");
        let err = crate::fixture::stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "case {i}: {err}");
        assert!(err.contains(needle), "case {i}: {err}");
        assert!(!err.contains("http://"), "case {i} never listened: {err}");
    }
    // Two handlers on one route.
    let a = handler(
        &scratch,
        "one",
        "http-probe.wasm",
        "http:\n  route: /x/...\n",
    );
    let b = handler(
        &scratch,
        "two",
        "http-probe.wasm",
        "http:\n  route: /x/...\n",
    );
    let out = qyvol()
        .args(["serve", "--listen", "127.0.0.1:0", &a, &b])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        crate::fixture::stderr(&out).contains("/x/..."),
        "{}",
        crate::fixture::stderr(&out)
    );
    // A port already taken.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let out = qyvol()
        .args([
            "serve",
            "--listen",
            &taken.local_addr().expect("addr").to_string(),
            &a,
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        crate::fixture::stderr(&out).contains("--listen"),
        "{}",
        crate::fixture::stderr(&out)
    );
}
