//! Network grants enforced on the guest: wasi:sockets' address check and wasi:http's outgoing
//! requests both ask [`NetworkAccess`], which allows only what a grant names and reports every
//! refusal to the embedder (so the user learns what to grant).

use std::net::SocketAddr;
use std::sync::Arc;

use qyvol_common::{GrantKind, HostPattern, NetworkGrant};
use wasmtime_wasi::sockets::SocketAddrUse;

/// A connection or bind the grants did not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: GrantKind,
    /// `host:port` as the guest asked for it (an address for sockets, the URL's authority for
    /// HTTP requests).
    pub target: String,
}

type Report = dyn Fn(&Denial) + Send + Sync;

/// Told of each refused connection or bind.
#[derive(Clone, Default)]
pub struct DenialSink(Option<Arc<Report>>);

impl DenialSink {
    pub fn new(f: impl Fn(&Denial) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    fn report(&self, kind: GrantKind, target: String) {
        tracing::debug!(kind = kind.as_str(), %target, "network access denied");
        if let Some(f) = &self.0 {
            f(&Denial { kind, target });
        }
    }
}

impl std::fmt::Debug for DenialSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DenialSink")
    }
}

/// The grants of one guest and where refusals are reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkAccess {
    grants: Arc<[NetworkGrant]>,
    sink: DenialSink,
}

impl NetworkAccess {
    pub(crate) fn new(grants: &[NetworkGrant], sink: DenialSink) -> Self {
        Self {
            grants: grants.into(),
            sink,
        }
    }

    /// Whether any grant names a host rather than an address (the guest then needs DNS).
    pub(crate) fn names_hosts(&self) -> bool {
        self.grants
            .iter()
            .any(|g| !matches!(g.host, HostPattern::Net { .. }))
    }

    /// The wasi:sockets check. Binding an ephemeral port on the wildcard address is what every
    /// outgoing connection does implicitly, so it is allowed; anything a peer could reach
    /// (an explicit bind, listen) needs a `listen` grant, and connecting or sending needs a
    /// `connect` grant. Accepted clients belong to a granted listener; datagrams are received
    /// from granted peers, or by a guest with a `listen` grant.
    pub(crate) async fn check_socket(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let kind = match use_ {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
                if addr.ip().is_unspecified() && addr.port() == 0 =>
            {
                return true;
            }
            // Clients of a granted listener.
            SocketAddrUse::TcpAccept => return true,
            // Datagrams from a granted peer, or to a UDP server that was granted its port.
            SocketAddrUse::UdpReceive => {
                return self.grants.iter().any(|g| {
                    g.kind == GrantKind::Listen || g.allows_addr(GrantKind::Connect, addr)
                });
            }
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
                GrantKind::Listen
            }
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => GrantKind::Connect,
        };
        if self.grants.iter().any(|g| g.allows_addr(kind, addr)) {
            return true;
        }
        // A grant by name covers the addresses the name resolves to now.
        for g in self.grants.iter().filter(|g| g.kind == kind) {
            if let HostPattern::Name(name) = &g.host
                && g.port.is_none_or(|p| p == addr.port())
                && let Ok(found) = tokio::net::lookup_host((name.as_str(), addr.port())).await
                && found.map(|a| a.ip()).any(|ip| ip == addr.ip())
            {
                return true;
            }
        }
        self.sink.report(kind, addr.to_string());
        false
    }

    /// The wasi:http outgoing-request check, on the URL's host and port.
    pub(crate) fn check_http(&self, host: &str, port: u16) -> bool {
        if self
            .grants
            .iter()
            .any(|g| g.allows_host(GrantKind::Connect, host, port))
        {
            return true;
        }
        self.sink
            .report(GrantKind::Connect, format!("{host}:{port}"));
        false
    }
}

/// wasi:http hooks that send only requests the grants allow.
pub(crate) struct HttpHooks(pub(crate) NetworkAccess);

impl wasmtime_wasi_http::WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !self.0.check_http(&host, port) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn access(grants: &[&str]) -> (NetworkAccess, Arc<Mutex<Vec<Denial>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let grants: Vec<NetworkGrant> =
            grants.iter().map(|g| g.parse().expect("a grant")).collect();
        let access = NetworkAccess::new(
            &grants,
            DenialSink::new(move |d| sink.lock().expect("lock").push(d.clone())),
        );
        (access, seen)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[tokio::test]
    async fn sockets_get_what_is_granted_and_refusals_are_reported() {
        use SocketAddrUse::*;
        let (a, seen) = access(&["10.0.0.0/8:5432", "listen 127.0.0.1:7070"]);
        // The implicit bind of an outgoing connection.
        assert!(a.check_socket(addr("0.0.0.0:0"), TcpBind).await);
        assert!(a.check_socket(addr("10.1.1.1:5432"), TcpConnect).await);
        assert!(a.check_socket(addr("127.0.0.1:7070"), TcpBind).await);
        assert!(a.check_socket(addr("127.0.0.1:7070"), TcpListen).await);
        assert!(seen.lock().expect("lock").is_empty());

        assert!(!a.check_socket(addr("11.1.1.1:5432"), TcpConnect).await);
        assert!(!a.check_socket(addr("127.0.0.1:7071"), TcpBind).await);
        assert!(!a.check_socket(addr("0.0.0.0:0"), TcpListen).await);
        assert!(!a.check_socket(addr("8.8.8.8:53"), UdpSend).await);
        let seen = seen.lock().expect("lock").clone();
        let said: Vec<_> = seen
            .iter()
            .map(|d| format!("{} {}", d.kind.as_str(), d.target))
            .collect();
        assert_eq!(
            said,
            [
                "connect 11.1.1.1:5432",
                "listen 127.0.0.1:7071",
                "listen 0.0.0.0:0",
                "connect 8.8.8.8:53"
            ]
        );
    }

    #[tokio::test]
    async fn nothing_is_granted_by_default() {
        let (a, seen) = access(&[]);
        assert!(!a.names_hosts());
        assert!(
            !a.check_socket(addr("127.0.0.1:80"), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(
            !a.check_socket(addr("127.0.0.1:53"), SocketAddrUse::UdpReceive)
                .await
        );
        assert!(!a.check_http("example.com", 443));
        assert_eq!(
            seen.lock().expect("lock").len(),
            2,
            "inbound datagrams are dropped quietly"
        );
    }

    #[tokio::test]
    async fn a_name_grant_covers_what_the_name_resolves_to() {
        let (a, _) = access(&["localhost:8080"]);
        assert!(a.names_hosts());
        assert!(
            a.check_socket(addr("127.0.0.1:8080"), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(
            !a.check_socket(addr("127.0.0.2:8080"), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(a.check_http("localhost", 8080));
        assert!(
            !a.check_http("127.0.0.1", 8080),
            "HTTP grants are checked on the name"
        );
    }
}
