//! Network grants enforced on the guest: wasi:sockets' address check, name lookups, UDP
//! receives and wasi:http's outgoing requests all ask [`NetworkAccess`], which allows only what a
//! grant names and reports every refusal to the embedder (so the user learns what to grant).
//!
//! Under `block_private` (on for `sandbox` and `edge`), a connection to a loopback, link-local
//! or private address needs a grant naming that address (`127.0.0.1:8080`, `10.0.0.0/8:5432`);
//! a name grant that resolves there is refused, so `localhost:8080` or a rebinding
//! `*.example.com` cannot reach the host's own services.

pub(crate) mod denial;
mod guard;
mod http;
mod tls;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use qyvol_common::{GrantKind, HostPattern, NetworkGrant, is_private};
use wasmtime_wasi::sockets::SocketAddrUse;

pub use denial::{Denial, DenialSink, Refusal};
pub(crate) use guard::{NetworkHost, link_guards, link_p3_guards};

/// Peers remembered as reached through a name grant; past this many the memory starts over
/// (a reply from a forgotten peer is dropped until the guest sends to it again).
const MAX_REMEMBERED_PEERS: usize = 1024;

/// The grants of one guest and where refusals are reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkAccess {
    grants: Arc<[NetworkGrant]>,
    block_private: bool,
    sink: DenialSink,
    /// Addresses a name grant resolved to when the guest connected or sent to them: datagrams
    /// from them are replies it may receive.
    named_peers: Arc<Mutex<HashSet<SocketAddr>>>,
    /// Apps it calls by name, in process (never through a socket).
    calls: crate::calls::Calls,
}

impl NetworkAccess {
    pub(crate) fn new(grants: &[NetworkGrant], block_private: bool, sink: DenialSink) -> Self {
        // Every guest that may reach the network gets here first, so the process has chosen
        // its TLS provider before anything (ours or a dependency's) builds a TLS config.
        tls::provider();
        Self {
            grants: grants.into(),
            block_private,
            sink,
            named_peers: Arc::default(),
            calls: crate::calls::Calls::default(),
        }
    }

    /// The grants and switches of a run or of an app's requests.
    pub(crate) fn of(req: &crate::RunRequest) -> Self {
        Self {
            calls: req.calls.clone(),
            ..Self::new(&req.network, req.block_private, req.denials.clone())
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
    /// `connect` grant. Accepted clients belong to a granted listener. Datagrams are received
    /// from granted peers, or, when some `listen` grant exists, from anyone: which socket they
    /// reach is judged by [`guard`], which wasmtime-wasi's check cannot see.
    pub(crate) async fn check_socket(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let kind = match use_ {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
                if addr.ip().is_unspecified() && addr.port() == 0 =>
            {
                return true;
            }
            // Clients of a granted listener.
            SocketAddrUse::TcpAccept => return true,
            SocketAddrUse::UdpReceive => {
                return self.peer_granted(addr)
                    || self.grants.iter().any(|g| g.kind == GrantKind::Listen);
            }
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
                GrantKind::Listen
            }
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => GrantKind::Connect,
        };
        match self.judge(kind, addr).await {
            Ok(()) => true,
            Err(reason) => {
                self.sink.report(kind, addr.to_string(), reason);
                false
            }
        }
    }

    /// Whether a `listen` grant covers `addr` (a bound socket's address), quietly.
    pub(crate) async fn listens_on(&self, addr: SocketAddr) -> bool {
        self.judge(GrantKind::Listen, addr).await.is_ok()
    }

    /// Whether a datagram from `peer` answers something the guest may reach: an address grant
    /// covers it, or a name grant resolved to it when the guest connected or sent there.
    pub(crate) fn peer_granted(&self, peer: SocketAddr) -> bool {
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        self.address_grant(GrantKind::Connect, peer) == Some(true)
            || self
                .named_peers
                .lock()
                .is_ok_and(|peers| peers.contains(&peer))
    }

    /// Whether the guest may look `name` up: some grant mentions it (an address literal needs
    /// no lookup). Refusals are reported.
    pub(crate) fn may_look_up(&self, name: &str) -> bool {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() || self.grants.iter().any(|g| g.mentions(name)) {
            return true;
        }
        self.sink
            .report(GrantKind::Connect, name.to_string(), Refusal::Lookup);
        false
    }

    /// Whether `kind` on `addr` is allowed, and why not.
    async fn judge(&self, kind: GrantKind, addr: SocketAddr) -> Result<(), Refusal> {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        match self.address_grant(kind, addr) {
            Some(true) => return Ok(()),
            Some(false) => return Err(Refusal::Private(addr)),
            None => {}
        }
        // A grant by name covers the addresses the name resolves to now.
        for g in self.grants.iter().filter(|g| g.kind == kind) {
            if let HostPattern::Name(name) = &g.host
                && g.port.is_none_or(|p| p == addr.port())
                && let Ok(found) = tokio::net::lookup_host((name.as_str(), addr.port())).await
                && found
                    .map(|a| a.ip().to_canonical())
                    .any(|ip| ip == addr.ip())
            {
                if self.blocks(kind, addr.ip()) {
                    return Err(Refusal::Private(addr));
                }
                if kind == GrantKind::Connect {
                    self.remember_peer(addr);
                }
                return Ok(());
            }
        }
        Err(Refusal::NotGranted)
    }

    /// What the address grants say of `addr`: `Some(true)` allowed, `Some(false)` covered only
    /// by blocks that do not name this private address, `None` not covered.
    fn address_grant(&self, kind: GrantKind, addr: SocketAddr) -> Option<bool> {
        let mut covering = self
            .grants
            .iter()
            .filter(|g| g.allows_addr(kind, addr))
            .peekable();
        covering.peek()?;
        Some(!self.blocks(kind, addr.ip()) || covering.any(NetworkGrant::names_private))
    }

    /// Whether `block_private` keeps `kind` from `ip` unless a grant names the address.
    fn blocks(&self, kind: GrantKind, ip: IpAddr) -> bool {
        self.block_private && kind == GrantKind::Connect && is_private(ip)
    }

    fn remember_peer(&self, peer: SocketAddr) {
        if let Ok(mut peers) = self.named_peers.lock() {
            if peers.len() >= MAX_REMEMBERED_PEERS {
                peers.clear();
            }
            peers.insert(peer);
        }
    }
}

/// What a guest's store holds of the network: its grants, and which of its UDP streams belong
/// to sockets bound to a `listen` grant. It is also the guest's wasi:http hooks.
#[derive(Debug, Default)]
pub(crate) struct GuestNet {
    pub(crate) access: NetworkAccess,
    /// Resource numbers of incoming-datagram streams that may receive from any peer.
    udp_listeners: HashSet<u32>,
}

impl GuestNet {
    pub(crate) fn new(access: NetworkAccess) -> Self {
        Self {
            access,
            udp_listeners: HashSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi_http::Error;

    fn access_with(
        grants: &[&str],
        block_private: bool,
    ) -> (NetworkAccess, Arc<Mutex<Vec<Denial>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let grants: Vec<NetworkGrant> =
            grants.iter().map(|g| g.parse().expect("a grant")).collect();
        let access = NetworkAccess::new(
            &grants,
            block_private,
            DenialSink::new(move |d| sink.lock().expect("lock").push(d.clone())),
        );
        (access, seen)
    }

    fn access(grants: &[&str]) -> (NetworkAccess, Arc<Mutex<Vec<Denial>>>) {
        access_with(grants, false)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    async fn connects(a: &NetworkAccess, to: &str) -> bool {
        a.check_socket(addr(to), SocketAddrUse::TcpConnect).await
    }

    fn reasons(seen: &Mutex<Vec<Denial>>) -> Vec<(String, Refusal)> {
        seen.lock()
            .expect("lock")
            .iter()
            .map(|d| (d.target.clone(), d.reason.clone()))
            .collect()
    }

    async fn http(a: &NetworkAccess, url: &str) -> Result<Vec<SocketAddr>, Error> {
        let uri: ::http::Uri = url.parse().expect("a URL");
        a.http_target(&uri).await.map(|t| t.addrs)
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
        assert!(seen.iter().all(|d| d.reason == Refusal::NotGranted));
    }

    #[tokio::test]
    async fn nothing_is_granted_by_default() {
        let (a, seen) = access(&[]);
        assert!(!a.names_hosts());
        assert!(!connects(&a, "127.0.0.1:80").await);
        assert!(
            !a.check_socket(addr("127.0.0.1:53"), SocketAddrUse::UdpReceive)
                .await
        );
        assert!(matches!(
            http(&a, "https://example.com/").await,
            Err(Error::HttpRequestDenied)
        ));
        assert!(!a.may_look_up("example.com"));
        assert_eq!(
            reasons(&seen),
            [
                ("127.0.0.1:80".into(), Refusal::NotGranted),
                ("example.com:443".into(), Refusal::NotGranted),
                ("example.com".into(), Refusal::Lookup),
            ],
            "inbound datagrams are dropped quietly"
        );
    }

    #[tokio::test]
    async fn a_name_grant_covers_what_the_name_resolves_to() {
        let (a, _) = access(&["localhost:8080"]);
        assert!(a.names_hosts());
        assert!(connects(&a, "127.0.0.1:8080").await);
        assert!(!connects(&a, "127.0.0.2:8080").await);
        let to = http(&a, "http://localhost:8080/x").await.expect("granted");
        assert!(to.contains(&addr("127.0.0.1:8080")), "{to:?}");
        assert!(
            matches!(
                http(&a, "http://127.0.0.1:8080/").await,
                Err(Error::HttpRequestDenied)
            ),
            "HTTP grants are checked on the name"
        );
    }

    /// What a name grant resolves to is judged too: under `block_private` it may not be the
    /// host's loopback or a private network, unless an address grant names that address.
    #[tokio::test]
    async fn block_private_keeps_name_grants_off_private_addresses() {
        let (a, seen) = access_with(&["localhost:8080", "0.0.0.0/0:8080"], true);
        assert!(!connects(&a, "127.0.0.1:8080").await);
        assert!(matches!(
            http(&a, "http://localhost:8080/").await,
            Err(Error::DestinationIpProhibited)
        ));
        assert!(matches!(
            http(&a, "http://10.1.2.3:8080/").await,
            Err(Error::DestinationIpProhibited)
        ));
        assert!(
            connects(&a, "8.8.8.8:8080").await,
            "a public address is not blocked"
        );
        let said = reasons(&seen);
        assert_eq!(
            said[0],
            (
                "127.0.0.1:8080".into(),
                Refusal::Private(addr("127.0.0.1:8080"))
            )
        );
        assert_eq!(said[1].0, "localhost:8080");
        assert!(matches!(said[1].1, Refusal::Private(a) if a.ip().is_loopback()));
        assert_eq!(
            said[2],
            (
                "10.1.2.3:8080".into(),
                Refusal::Private(addr("10.1.2.3:8080"))
            )
        );

        let (named, _) = access_with(&["localhost:8080", "127.0.0.1:8080"], true);
        assert!(connects(&named, "127.0.0.1:8080").await);
        let to = http(&named, "http://localhost:8080/").await.expect("named");
        assert_eq!(to, [addr("127.0.0.1:8080")], "only the named address");
    }

    #[tokio::test]
    async fn authorities_are_judged_as_they_would_be_reached() {
        let (a, seen) = access(&["127.0.0.1:80", "127.0.0.1:*"]);
        for url in ["http://user@127.0.0.1:80/", "http://127.0.0.1:65616/"] {
            assert!(
                matches!(http(&a, url).await, Err(Error::HttpRequestUriInvalid)),
                "{url}"
            );
        }
        assert_eq!(
            reasons(&seen),
            [
                ("user@127.0.0.1:80".into(), Refusal::BadAuthority),
                ("127.0.0.1:65616".into(), Refusal::BadAuthority),
            ]
        );
    }

    #[tokio::test]
    async fn lookups_and_replies_follow_the_grants() {
        let (a, _) = access(&["localhost:53", "*.example.com:443"]);
        assert!(a.may_look_up("localhost"));
        assert!(a.may_look_up("LocalHost."));
        assert!(a.may_look_up("api.example.com"));
        assert!(a.may_look_up("127.0.0.1"), "an address needs no lookup");
        assert!(!a.may_look_up("example.com"));
        assert!(!a.may_look_up("localhost.evil.net"));

        let peer = addr("127.0.0.1:53");
        assert!(!a.peer_granted(peer), "not yet reached through its name");
        assert!(a.check_socket(peer, SocketAddrUse::UdpSend).await);
        assert!(a.peer_granted(peer), "replies from where the guest sent");
        assert!(!a.peer_granted(addr("127.0.0.1:54")));
    }
}
