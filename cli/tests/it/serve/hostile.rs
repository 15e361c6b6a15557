//! Hostile clients of `qyvol serve` (HOSTILE rows 29 and 39): bodies trickled or cut short get
//! 408 without holding a handler slot, a connection over the cap gets 503 and is closed, and a
//! CGI handler is given neither `HTTP_PROXY`, nor header names with `_`, nor hop-by-hop headers,
//! and cannot answer with a status that is not final.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::serve_probes;
use crate::fixture::{Reply, Scratch, Served, handler, parse_reply, send};

/// Starts a POST of 100 bytes to `/echo` and waits for the server's `100 Continue`, which it
/// sends when it starts reading that body.
fn start_trickling(s: &Served) -> TcpStream {
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
    .expect("send the head");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            other => panic!(
                "the server never started reading this body ({other:?} after {:?}): are the slots held by the other tricklers?",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    assert_eq!(got, b"HTTP/1.1 100 Continue\r\n\r\n");
    c
}

/// Sends one byte of the body every 200 ms until the server answers; returns the answer.
fn trickle(mut c: TcpStream) -> Reply {
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        // The server may have stopped reading: a write error is no answer yet.
        let _ = c.write_all(b"x");
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => continue,
        }
    }
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = c.read_to_end(&mut raw);
    parse_reply(&raw)
}

#[test]
fn trickled_bodies_get_408_and_never_hold_the_slots_others_need() {
    let scratch = Scratch::new();
    let comp = handler(&scratch, "comp", "http-probe.wasm", "");
    let s = Served::start(&["--max-concurrency", "2", "--body-timeout", "2s", &comp]);
    // Three bodies being read at once, with two slots: reading a body takes no slot.
    let tricklers: Vec<_> = (0..3).map(|_| start_trickling(&s)).collect();
    let tricklers: Vec<_> = tricklers
        .into_iter()
        .map(|c| std::thread::spawn(move || trickle(c)))
        .collect();
    // Meanwhile a complete request is handled.
    let r = s.post("/echo", b"hola");
    assert_eq!((r.status, r.body.as_str()), (200, "4 bytes: hola"));
    for t in tricklers {
        let r = t.join().expect("trickler");
        assert_eq!(
            (r.status, r.body.as_str()),
            (408, "Request Timeout: the body did not arrive in time\n")
        );
        assert_eq!(r.header("connection"), Some("close"));
    }
    // At 5 bytes/s they fall behind the 240 bytes/s minimum when the grace (1 s, half the
    // timeout) ends, before the timeout itself.
    for line in s.wait_lines("POST /echo 408", 3) {
        assert!(
            line.contains(" comp — el cuerpo llega a menos de 240 bytes/s ("),
            "{line}"
        );
    }
}

#[test]
fn a_body_that_stops_arriving_gets_408_at_the_body_timeout() {
    let scratch = Scratch::new();
    let comp = handler(&scratch, "comp", "http-probe.wasm", "");
    let s = Served::start(&["--body-timeout", "2s", &comp]);
    // Half the body, then nothing: 1000 bytes keep it ahead of the minimum rate past 2 s.
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
        .expect("send the head");
    c.write_all(&[b'x'; 1000]).expect("send half the body");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let r = parse_reply(&raw);
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    s.assert_log_ends(
        "POST /echo 408",
        " comp — el cuerpo no llegó entero en 2s (1000 bytes recibidos; sube `--body-timeout`)",
    );
}

#[test]
fn a_connection_over_the_cap_gets_503_and_is_closed() {
    let scratch = Scratch::new();
    let comp = handler(&scratch, "comp", "http-probe.wasm", "");
    let s = Served::start(&["--max-connections", "2", &comp]);
    // Two idle connections take both places (the server accepts in order of arrival).
    let first = TcpStream::connect(s.addr).expect("connect");
    let _second = TcpStream::connect(s.addr).expect("connect");
    // The third asks to be kept alive, and is answered and closed all the same.
    let mut third = TcpStream::connect(s.addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    third
        .write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    third
        .read_to_end(&mut raw)
        .expect("the server closes the connection");
    let r = parse_reply(&raw);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            503,
            "Service Unavailable: too many open connections, try again later\n"
        )
    );
    assert_eq!(r.header("connection"), Some("close"));
    s.assert_log_ends(
        "GET /x 503",
        " 0.0ms - — demasiadas conexiones abiertas (más de 2; sube `--max-connections`)",
    );
    // A place frees up when a connection closes (as soon as the server sees it close).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get("/after");
        if r.status == 200 {
            assert_eq!(r.body, "probe /after\n");
            break;
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(Instant::now() < deadline, "no place freed up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `HTTP_*` lines of what the CGI probe printed (its environment).
fn http_vars(r: &Reply) -> Vec<&str> {
    let mut vars: Vec<&str> = r.body.lines().filter(|l| l.starts_with("HTTP_")).collect();
    vars.sort_unstable();
    vars
}

#[test]
fn a_cgi_handler_gets_no_proxy_no_underscore_names_and_no_hop_by_hop_headers() {
    let scratch = Scratch::new();
    let s = serve_probes(&scratch, "");
    let r = send(
        s.addr,
        b"POST /cgi/env HTTP/1.1\r\n\
          Host: x\r\n\
          Proxy: http://evil.test:8080\r\n\
          X-Forwarded-For: 1.2.3.4\r\n\
          X_Forwarded_For: 6.6.6.6\r\n\
          Connection: close, X-Hop\r\n\
          X-Hop: for the next hop\r\n\
          Keep-Alive: timeout=5\r\n\
          TE: trailers\r\n\
          Trailer: X-Sum\r\n\
          Upgrade: h2c\r\n\
          Proxy-Authorization: Basic c2VjcmV0\r\n\
          Proxy-Connection: keep-alive\r\n\
          Transfer-Encoding: chunked\r\n\
          X-Kept: yes\r\n\
          \r\n\
          0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        http_vars(&r),
        [
            "HTTP_HOST=x",
            "HTTP_X_FORWARDED_FOR=1.2.3.4",
            "HTTP_X_KEPT=yes"
        ],
        "{}",
        r.body
    );
}

#[test]
fn a_cgi_handler_gets_the_full_url_of_an_absolute_form_request() {
    let scratch = Scratch::new();
    let s = serve_probes(&scratch, "");
    let vars = |raw: &[u8]| {
        let r = send(s.addr, raw);
        assert_eq!(r.status, 200, "{r:?}");
        let mut vars: Vec<String> = (r.body.lines())
            .filter(|l| {
                ["X_FULL_URL=", "SERVER_NAME=", "SERVER_PORT="]
                    .iter()
                    .any(|v| l.starts_with(v))
            })
            .map(str::to_string)
            .collect();
        vars.sort_unstable();
        vars
    };
    // The target names the host; `Host` is then ignored (RFC 9112 3.2.2).
    assert_eq!(
        vars(b"GET http://example.test:8081/cgi/env?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n"),
        [
            "SERVER_NAME=example.test",
            "SERVER_PORT=8081",
            "X_FULL_URL=http://example.test:8081/cgi/env?q=1"
        ]
    );
    assert_eq!(
        vars(b"GET /cgi/env?q=1 HTTP/1.1\r\nHost: h.test:99\r\nConnection: close\r\n\r\n"),
        [
            "SERVER_NAME=h.test",
            "SERVER_PORT=99",
            "X_FULL_URL=http://h.test:99/cgi/env?q=1"
        ]
    );
}

#[test]
fn a_cgi_status_that_is_not_final_is_a_500_and_the_connection_stays_in_step() {
    let scratch = Scratch::new();
    let s = serve_probes(&scratch, "");
    // Pipelined on one connection: each answer must belong to its own request.
    let ask = |code: &str| format!("GET /cgi/status?code={code} HTTP/1.1\r\nHost: x\r\n\r\n");
    let all = ["101", "999", "100", "299"].map(ask).concat()
        + "GET /cgi/env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    c.write_all(all.as_bytes()).expect("send");
    let mut raw = String::new();
    let _ = c.read_to_string(&mut raw);
    let statuses: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("HTTP/1.1 "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(statuses, ["500", "500", "500", "299", "200"], "{raw}");
    assert!(
        raw.contains("\nPATH_INFO=/env\n"),
        "the last answer is the last request's: {raw}"
    );
    let lines = s.wait_lines("GET /cgi/status 500", 3);
    for (line, code) in lines.iter().zip(["101", "999", "100"]) {
        assert!(
            line.ends_with(&format!(
                " cgi — `Status: {code}` is not a status a handler may answer with: write one from 200 to 599, e.g. `Status: 404 Not Found`"
            )),
            "{line}"
        );
    }
}
