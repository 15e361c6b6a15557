//! WASI preview 1 modules as HTTP handlers, CGI-style with WAGI's conventions: the request's
//! metadata and headers become environment variables, its body is stdin, and the module
//! prints headers (`Content-Type`, `Status`, `Location`, ...), an empty line, then the body.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use wasmtime::{Engine, InstancePre};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use super::{Body, Host, Loaded, RequestFailure, Runtime, failure_of, full, new_store};
use crate::compile::Compilation;
use crate::limits::Limits;
use crate::net::NetworkAccess;
use crate::prepared::{finish, with_deadline};
use crate::request::Wasm;
use crate::{Outcome, RuntimeError, wasi};

/// The most a handler may print (headers and body); writing more fails the request.
const MAX_OUTPUT: usize = 64 * 1024 * 1024;

pub(crate) struct Template(InstancePre<Host<WasiP1Ctx>>);

impl Template {
    pub(crate) fn new(
        engine: &Engine,
        wasm: &Wasm,
        limits: &Limits,
        how: Compilation<'_>,
    ) -> Result<Self, RuntimeError> {
        let wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
        let probe = Host::new(wasi, NetworkAccess::default(), None, None);
        crate::prepared::link_command_module(engine, wasm, limits, how, |h| &mut h.wasi, probe)
            .map(Self)
    }

    /// Instantiates the module once in a fresh store with the app's WASI context, without
    /// running it: the part of a request that is instantiation.
    pub(crate) async fn instantiate(&self, rt: &Runtime, app: &Loaded) -> wasmtime::Result<()> {
        let mut b = wasi::builder(&app.request, &app.mounts, &app.network)?;
        let mut store = new_store(rt, app, crate::handles::build_p1(&mut b))
            .map_err(|f| wasmtime::format_err!("{f:?}"))?;
        self.0.instantiate_async(&mut store).await.map(drop)
    }

    pub(crate) async fn handle(
        &self,
        rt: &Runtime,
        app: &Loaded,
        req: Request<Bytes>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, RequestFailure> {
        let (parts, body) = req.into_parts();
        let mut b = wasi::builder(&app.request, &app.mounts, &app.network)
            .map_err(|e| RequestFailure::Protocol(e.to_string()))?;
        for (k, v) in request_env(&parts, body.len(), app, peer) {
            if !app.request.env.iter().any(|(mine, _)| *mine == k) {
                b.env(k, v);
            }
        }
        let stdout = MemoryOutputPipe::new(MAX_OUTPUT);
        b.stdin(MemoryInputPipe::new(body));
        b.stdout(stdout.clone());
        let mut store = new_store(rt, app, crate::handles::build_p1(&mut b))?;
        let limits = app.request.limits;
        let run = async {
            let instance = self.0.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        // A guest blocked in a host call (a sleep, a read) is past epochs' reach.
        match finish(with_deadline(limits.timeout, run).await, &app.request) {
            Outcome::Exited(0) => {}
            other => return Err(failure_of(other)),
        }
        drop(store);
        parse_output(stdout.contents())
    }
}

/// The request as CGI meta-variables (RFC 3875) plus WAGI's `X_*` additions.
fn request_env(
    parts: &hyper::http::request::Parts,
    body_len: usize,
    app: &Loaded,
    peer: SocketAddr,
) -> Vec<(String, String)> {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    // An absolute-form target (`GET http://host/path`) names the host; `Host` is then ignored
    // (RFC 9112 3.2.2).
    let host = match parts.uri.authority() {
        Some(a) => a.as_str(),
        None => parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost"),
    };
    let target = parts.uri.path_and_query().map_or(path, |pq| pq.as_str());
    let (server_name, server_port) = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (n, p),
        _ => (host, "80"),
    };
    let base = app.route.base();
    let path_info = if app.route.is_wildcard() {
        path.strip_prefix(base).unwrap_or(path)
    } else {
        ""
    };
    let mut env: Vec<(String, String)> = vec![
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        (
            "SERVER_SOFTWARE".into(),
            concat!("qyvol/", env!("CARGO_PKG_VERSION")).into(),
        ),
        ("SERVER_PROTOCOL".into(), format!("{:?}", parts.version)),
        ("SERVER_NAME".into(), server_name.into()),
        ("SERVER_PORT".into(), server_port.into()),
        ("REQUEST_METHOD".into(), parts.method.to_string()),
        ("SCRIPT_NAME".into(), base.into()),
        ("PATH_INFO".into(), path_info.into()),
        ("PATH_TRANSLATED".into(), path_info.into()),
        ("QUERY_STRING".into(), query.into()),
        ("REMOTE_ADDR".into(), peer.ip().to_string()),
        ("REMOTE_HOST".into(), peer.ip().to_string()),
        ("AUTH_TYPE".into(), String::new()),
        ("REMOTE_USER".into(), String::new()),
        ("X_MATCHED_ROUTE".into(), app.route.to_string()),
        ("X_RAW_PATH_INFO".into(), path_info.into()),
        ("X_FULL_URL".into(), format!("http://{host}{target}")),
        ("CONTENT_LENGTH".into(), body_len.to_string()),
    ];
    if let Some(t) = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        env.push(("CONTENT_TYPE".into(), t.into()));
    }
    let named = named_by_connection(&parts.headers);
    for (name, value) in &parts.headers {
        // Hop-by-hop headers describe the client's connection to this server, which the
        // handler does not own (RFC 9110 7.6.1).
        if !passed_as_variable(name) || HOP_BY_HOP.contains(&name.as_str()) || named.contains(name)
        {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(value);
            }
            None => env.push((key, value.into())),
        }
    }
    env
}

/// Whether a request header may become an `HTTP_*` variable. Not: credentials (RFC 3875
/// 4.1.18); the length and type, which have their own variables; `Proxy`, which would become
/// `HTTP_PROXY`, where HTTP clients look for their proxy (httpoxy); and names with `_`, which
/// would become the same variable as the name with `-` (`X_Forwarded_For` posing as
/// `X-Forwarded-For`), as Apache and nginx decided.
fn passed_as_variable(name: &hyper::header::HeaderName) -> bool {
    use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
    ![AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE].contains(name)
        && name.as_str() != "proxy"
        && !name.as_str().contains('_')
}

/// The headers the `Connection` header names: hop-by-hop like the standard ones.
fn named_by_connection(headers: &hyper::HeaderMap) -> Vec<hyper::header::HeaderName> {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| hyper::header::HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// Turns what the handler printed into a response: headers up to the first empty line
/// (`Status: 404 Not Found` sets the status, `Location` alone means 302), then the body.
fn parse_output(out: Bytes) -> Result<Response<Body>, RequestFailure> {
    let hint = "print headers (at least `Content-Type: text/plain`), an empty line, then the body";
    let end = find(&out, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .into_iter()
        .chain(find(&out, b"\n\n").map(|i| (i, i + 2)))
        .min_by_key(|(i, _)| *i)
        .ok_or_else(|| {
            RequestFailure::Protocol(format!(
                "the handler's output has no header section: {hint}"
            ))
        })?;
    let head = std::str::from_utf8(&out[..end.0]).map_err(|_| {
        RequestFailure::Protocol(format!("the handler's headers are not UTF-8: {hint}"))
    })?;
    let mut response = Response::new(full(out.slice(end.1..)));
    let mut status = None;
    let mut location = false;
    for line in head.lines().map(|l| l.trim_end_matches('\r')) {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            RequestFailure::Protocol(format!(
                "the handler printed `{line}` among its headers: {hint}"
            ))
        })?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = Some(final_status(value)?);
            continue;
        }
        location |= name.eq_ignore_ascii_case("location");
        let name = hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            RequestFailure::Protocol(format!("`{name}` is not a header name: {hint}"))
        })?;
        // Framing is the server's: the body's length is known, and hop-by-hop headers
        // describe a connection the handler does not own.
        if HOP_BY_HOP.contains(&name.as_str()) || name == hyper::header::CONTENT_LENGTH {
            continue;
        }
        let value = hyper::header::HeaderValue::from_str(value).map_err(|_| {
            RequestFailure::Protocol(format!("the value of `{name}` is not a header value"))
        })?;
        response.headers_mut().append(name, value);
    }
    *response.status_mut() = status.unwrap_or(if location {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    Ok(response)
}

/// The status a `Status:` line sets: a final one, 200 to 599. A 1xx would announce another
/// response (or, as 101, another protocol) on a connection the server still owns.
fn final_status(value: &str) -> Result<StatusCode, RequestFailure> {
    let code = value.split_whitespace().next().unwrap_or("");
    code.parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| {
            RequestFailure::Protocol(format!(
                "`Status: {value}` is not a status a handler may answer with: write one from 200 to 599, e.g. `Status: 404 Not Found`"
            ))
        })
}

/// Headers about one connection rather than the message (RFC 9110 7.6.1), and `Proxy-*`
/// headers meant for a proxy on the way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(out: &str) -> Result<(u16, Vec<(String, String)>), RequestFailure> {
        parse_output(Bytes::from(out.to_string())).map(|r| {
            let headers = r
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            (r.status().as_u16(), headers)
        })
    }

    #[test]
    fn cgi_output_becomes_a_response() {
        let (status, headers) = parsed("Content-Type: text/plain\n\nhi").expect("parses");
        assert_eq!(status, 200);
        assert_eq!(headers, [("content-type".into(), "text/plain".into())]);
        assert_eq!(
            parsed("Status: 404 Not Found\r\nX-A: b\r\n\r\n")
                .expect("ok")
                .0,
            404
        );
        assert_eq!(parsed("Location: /x\n\n").expect("ok").0, 302);
        assert_eq!(parsed("Location: /x\nStatus: 301\n\n").expect("ok").0, 301);
    }

    #[test]
    fn the_handler_cannot_set_the_framing() {
        let (_, headers) = parsed(
            "Content-Type: text/plain\nContent-Length: 999\nTransfer-Encoding: chunked\nConnection: upgrade\nX-Kept: 1\n\nbody",
        )
        .expect("parses");
        let names: Vec<_> = headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["content-type", "x-kept"]);
    }

    #[test]
    fn output_that_is_not_a_response_is_refused_with_a_hint() {
        for bad in [
            "just text",
            "no colon here\n\nbody",
            "Status: abc\n\n",
            "Status: 101 Switching Protocols\n\n",
            "Status: 100\n\n",
            "Status: 999\n\n",
            "Bad Name: x\n\n",
        ] {
            match parsed(bad) {
                Err(RequestFailure::Protocol(m)) => assert!(!m.is_empty()),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
