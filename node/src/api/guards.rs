//! What every request passes before it is answered: on TCP a `Host` the node answers to and
//! the token (or a request signed with it), and on both no state change from another site.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::sign::sign_answer;
use super::{Api, MAX_BODY, call_time, refuse};
use crate::Node;
use crate::access::same;

/// The host name of a `Host` header or an `Origin`'s authority, lowercase, without port.
fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        // `[v6]` or `[v6]:port`; anything else after `]` is no host at all.
        return match rest.split_once(']') {
            Some((ip, "")) => ip.to_string(),
            Some((ip, port))
                if port
                    .strip_prefix(':')
                    .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit())) =>
            {
                ip.to_string()
            }
            _ => String::new(),
        };
    }
    a.rsplit_once(':').map_or(a.clone(), |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h.to_string()
        } else {
            a.clone()
        }
    })
}

pub(super) async fn guard(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // The challenge a signed request used: its answer is signed for it.
    let mut signed = None;
    if let Some(hosts) = &api.tcp_hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_name);
        if !host.as_ref().is_some_and(|h| hosts.contains(h)) {
            return refuse(
                StatusCode::FORBIDDEN,
                "bad-host",
                "this node does not answer to that Host (add it with `qyvol node --api-host`)",
            );
        }
        // The dashboard's own pages let a browser in with its session (see `dashboard`).
        if path != "/healthz" && path != crate::access::PROOF_PATH && !crate::dashboard::owns(&path)
        {
            (req, signed) = match authorized(&api.node, req).await {
                Ok(allowed) => allowed,
                Err(refused) => return refused,
            };
        }
    }
    let headers = req.headers();
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(why) = cross_site(headers, api.tcp_hosts.as_deref()) {
            return refuse(StatusCode::FORBIDDEN, "cross-site", why);
        }
        // The dashboard's forms are not JSON: its session's CSRF token guards them instead.
        let dashboard = api.tcp_hosts.is_some() && crate::dashboard::owns(&path);
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|t| {
                t.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            });
        if !json && !dashboard {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "json-only",
                "calls that change state must send `Content-Type: application/json`",
            );
        }
    }
    let limit = call_time(req.method(), &path);
    let answer = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the call took too long and was abandoned",
        ),
    };
    match signed {
        Some(challenge) => sign_answer(api.node.token(), &challenge, answer).await,
        None => answer,
    }
}

/// How long a signed request's body may take to arrive.
const SIGNED_BODY_TIME: Duration = Duration::from_secs(10);

/// `req` if it carries the node's token (`Authorization: Bearer`, for scripts), or is signed
/// with it for its connection's challenge (`Qyvol-Proof`, the CLI's way: the token itself
/// never travels), with that challenge; else the 401 (413 for a signed body over the limit).
/// A signed body is read only for a challenge the connection holds, and within
/// [`SIGNED_BODY_TIME`].
async fn authorized(node: &Node, req: Request) -> Result<(Request, Option<String>), Response> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .map(|(scheme, rest)| (scheme.to_string(), rest.trim().to_string()));
    let unauthorized = || {
        let mut r = refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid token is required: `Authorization: Bearer <QYVOL_HOME/node/token>`",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        r
    };
    match given {
        // The scheme is case-insensitive (RFC 9110).
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer")
                && same(token.as_bytes(), node.token().as_bytes()) =>
        {
            if let Some(p) = req.extensions().get::<crate::access::Pending>() {
                p.trust();
            }
            Ok((req, None))
        }
        Some((scheme, params)) if scheme.eq_ignore_ascii_case(crate::access::SIGNED) => {
            let pending = req
                .extensions()
                .get::<crate::access::Pending>()
                .cloned()
                .unwrap_or_default();
            let Some(signed) = crate::access::parse_signed(&params) else {
                return Err(unauthorized());
            };
            if !pending.holds(signed.0) {
                return Err(unauthorized());
            }
            let (parts, body) = req.into_parts();
            let body =
                match tokio::time::timeout(SIGNED_BODY_TIME, axum::body::to_bytes(body, MAX_BODY))
                    .await
                {
                    Ok(Ok(body)) => body,
                    Ok(Err(_)) => {
                        return Err(refuse(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too-large",
                            &format!("a signed request's body may be at most {MAX_BODY} bytes"),
                        ));
                    }
                    Err(_) => return Err(unauthorized()),
                };
            let path = parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path(), |p| p.as_str());
            if crate::access::verify_signed(
                &pending,
                node.token(),
                signed,
                parts.method.as_str(),
                path,
                &body,
            ) {
                let challenge = signed.0.to_string();
                pending.trust();
                Ok((
                    Request::from_parts(parts, axum::body::Body::from(body)),
                    Some(challenge),
                ))
            } else {
                Err(unauthorized())
            }
        }
        _ => Err(unauthorized()),
    }
}

/// Why a state-changing request looks like it comes from a web page of another site.
fn cross_site(headers: &HeaderMap, hosts: Option<&[String]>) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Some("cross-site requests cannot change the node's state");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        // The page's origin is this listener itself: same host name and port as asked for.
        let same = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.eq_ignore_ascii_case(authority));
        let ok = same
            && hosts.is_some_and(|h| !authority.is_empty() && h.contains(&host_name(authority)));
        if !ok {
            return Some("requests from another origin cannot change the node's state");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port_and_case() {
        assert_eq!(host_name("LocalHost:7373"), "localhost");
        assert_eq!(host_name("[::1]:7373"), "::1");
        assert_eq!(host_name("evil.example"), "evil.example");
        assert_eq!(host_name("[::1]evil"), "");
    }
}
