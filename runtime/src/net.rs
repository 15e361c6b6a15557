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
    /// `connect` grant. Accepted clients and received datagrams belong to a granted socket.
    pub(crate) async fn check_socket(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let kind = match use_ {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
                if addr.ip().is_unspecified() && addr.port() == 0 =>
            {
                return true;
            }
            SocketAddrUse::TcpAccept | SocketAddrUse::UdpReceive => return true,
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
