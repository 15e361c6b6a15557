//! Outgoing wasi:http requests, sent by Qyvol rather than by wasmtime's default sender so that
//! the address checked is the address connected to: the URL's authority is judged as written
//! (no user info, a port that parses), its host is checked against the grants, resolved once,
//! each address checked (`block_private`), and the connection goes to a checked address. No
//! second lookup happens, so a name cannot rebind between the check and the connection.
//! HTTPS uses [`super::tls`]'s configuration (platform roots, or `SSL_CERT_FILE`/`SSL_CERT_DIR`).

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use qyvol_common::GrantKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::{GuestNet, NetworkAccess, Refusal};

/// wasmtime's defaults for a request that sets no timeouts.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl wasmtime_wasi_http::WasiHttpHooks for GuestNet {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<
        dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)>>
            + Send,
    > {
        let access = self.access.clone();
        Box::new(async move {
            if let Some(app) = access.calls.target(request.uri()) {
                return call_in_process(&access, app, request).await;
            }
            let target = access.http_target(request.uri()).await?;
            send(&access, request, target, options.unwrap_or_default()).await
        })
    }
}

/// Hands `request` to app `app` of this process (a name the guest may call): its body
/// collected (at most [`crate::calls::MAX_CALL_BODY`]), the answer streamed back.
async fn call_in_process(
    access: &NetworkAccess,
    app: &str,
    request: http::Request<WasiBody>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let dialer = access
        .calls
        .dialer
        .clone()
        .ok_or(Error::DestinationNotFound)?;
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, crate::calls::MAX_CALL_BODY)
        .collect()
        .await
        .map_err(|_| Error::HttpRequestBodySize(Some(crate::calls::MAX_CALL_BODY as u64)))?
        .to_bytes();
    let response = dialer
        .call(app, http::Request::from_parts(parts, body))
        .await
        .ok_or(Error::DestinationNotFound)?;
    let io: IoFuture = Box::new(async { Ok(()) });
    Ok((response, io))
}

/// Where a checked request goes: the name for TLS, and the addresses it may connect to.
pub(super) struct Target {
    host: String,
    https: bool,
    pub(super) addrs: Vec<SocketAddr>,
}

impl NetworkAccess {
    /// Judges a request's URL and resolves it to the addresses it may connect to; refusals are
    /// reported and the guest gets a WASI error (`HTTP-request-URI-invalid`,
    /// `HTTP-request-denied` or `destination-IP-prohibited`).
    pub(super) async fn http_target(&self, uri: &http::Uri) -> Result<Target, Error> {
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let Some(port) = plain_port(authority, https) else {
            self.sink.report(
                GrantKind::Connect,
                authority.to_string(),
                Refusal::BadAuthority,
            );
            return Err(Error::HttpRequestUriInvalid);
        };
        let host = authority.host();
        let shown = format!("{host}:{port}");
        if !self
            .grants
            .iter()
            .any(|g| g.allows_host(GrantKind::Connect, host, port))
        {
            self.sink
                .report(GrantKind::Connect, shown, Refusal::NotGranted);
            return Err(Error::HttpRequestDenied);
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| Error::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                })?
                .collect(),
        };
        // A private address needs an address grant naming it, whatever named the host.
        let (addrs, refused): (Vec<_>, Vec<_>) = resolved.into_iter().partition(|a| {
            !self.blocks(GrantKind::Connect, a.ip())
                || self.address_grant(GrantKind::Connect, *a) == Some(true)
        });
        match (addrs.is_empty(), refused.first()) {
            (true, Some(first)) => {
                self.sink
                    .report(GrantKind::Connect, shown, Refusal::Private(*first));
                Err(Error::DestinationIpProhibited)
            }
            (true, None) => Err(Error::DestinationNotFound),
            (false, _) => Ok(Target {
                host: bare.to_string(),
                https,
                addrs,
            }),
        }
    }
}

/// The port of a plain `host[:port]` authority (the scheme's default when absent); `None` for
/// user info or a port that is not a number up to 65535, which other parsers read differently.
fn plain_port(authority: &Authority, https: bool) -> Option<u16> {
    let text = authority.as_str();
    if text.contains('@') {
        return None;
    }
    let after_host = text.rsplit_once(']').map_or(text, |(_, rest)| rest);
    match after_host.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None => Some(if https { 443 } else { 80 }),
    }
}

/// Connects to the first checked address that answers, speaks TLS for `https`, sends the
/// request over HTTP/1.1 and returns the response with the connection's driver.
async fn send(
    access: &NetworkAccess,
    mut request: http::Request<WasiBody>,
    target: Target,
    options: RequestOptions,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    // Tokio refuses a zero interval; a nanosecond is as good as none.
    let between_bytes = options
        .between_bytes_timeout
        .unwrap_or(DEFAULT_TIMEOUT)
        .max(Duration::from_nanos(1));

    let tls = match target.https {
        true => Some(super::tls::connector(access, &target.host)?),
        false => None,
    };
    let tcp = tokio::time::timeout(connect_timeout, connect(&target.addrs))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = match tls {
        Some(connector) => Box::new(super::tls::handshake(connector, &target.host, tcp).await?),
        None => Box::new(tcp),
    };
    let (mut sender, mut conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries the path only (the authority is in `Host`).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    let response = tokio::time::timeout(first_byte, async {
        let pending = sender.send_request(request);
        tokio::pin!(pending);
        tokio::select! {
            response = &mut pending => response.map_err(Error::from),
            // The connection ended before the response: the request's own error says why.
            ended = &mut conn => {
                ended?;
                pending.await.map_err(Error::from)
            }
        }
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;

    let response = response.map(|body| {
        Patient {
            body,
            idle: between_bytes,
            timer: Box::pin(tokio::time::sleep(between_bytes)),
        }
        .boxed_unsync()
    });
    let io: IoFuture = Box::new(async move { conn.await.map_err(Error::from) });
    Ok((response, io))
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Tries each address in turn and returns the first connection, or the last error.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, Error::Connect))
}

/// A response body that fails when no data arrives for `idle` (the request's
/// `between-bytes-timeout`).
struct Patient {
    body: Incoming,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Patient {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(authority: &str) -> Option<u16> {
        plain_port(&authority.parse().expect("an authority"), false)
    }

    #[test]
    fn only_plain_authorities_have_a_port() {
        assert_eq!(port("example.com"), Some(80));
        assert_eq!(port("example.com:8080"), Some(8080));
        assert_eq!(port("[::1]:8080"), Some(8080));
        assert_eq!(port("[::1]"), Some(80));
        assert_eq!(port("user@example.com:8080"), None, "user info");
        assert_eq!(port("a:b@example.com"), None, "user info");
        assert_eq!(port("example.com:65616"), None, "past 65535");
        assert_eq!(port("example.com:http"), None, "not a number");
        assert_eq!(port("example.com:"), None, "empty");
    }
}
