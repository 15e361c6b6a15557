//! The node's listeners, bound before anything is served: the app port, the API's Unix socket
//! and, when asked, the TCP API with the dashboard (on both loopback families where needed).

use std::net::SocketAddr;

use crate::{Node, NodeError};

/// The node's listeners, bound before anything starts so a taken port fails at once.
#[derive(Debug)]
pub struct Listeners {
    pub http: tokio::net::TcpListener,
    pub unix: tokio::net::UnixListener,
    /// The TCP API: the address asked for and, on loopback, the same port on the other
    /// loopback family (see [`bind_api`]).
    pub api: Vec<tokio::net::TcpListener>,
}

/// Binds the app port, the socket (0600; a stale one left by a killed node is replaced: the
/// caller holds the node's lock) and, if asked, the TCP API.
pub async fn bind(node: &Node) -> Result<Listeners, NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let opts = node.options();
    let http = tokio::net::TcpListener::bind(opts.http)
        .await
        .map_err(|e| {
            NodeError::BadRequest(format!(
                "cannot listen for apps on {}: {e}; choose another address with `--http`",
                opts.http
            ))
        })?;
    let socket = node.paths().socket();
    let _ = std::fs::remove_file(&socket);
    let unix = tokio::net::UnixListener::bind(&socket).map_err(|e| {
        NodeError::Internal(format!(
            "cannot open the API socket `{}`: {e}",
            socket.display()
        ))
    })?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(NodeError::internal)?;
    let api = match opts.api {
        None => Vec::new(),
        Some(addr) => bind_api(addr).await?,
    };
    if let Some(addr) = api.first().and_then(|l| l.local_addr().ok()) {
        node.set_dashboard(dashboard_url(addr, api.len() > 1));
    }
    Ok(Listeners { http, unix, api })
}

/// The dashboard's URL for a TCP API bound at `addr` (and, with `twin`, at the other loopback
/// family too). `localhost` — a host of its own for the browser, apart from the apps on
/// `127.0.0.1` — only where the node holds every address the name leads a client to:
/// `127.0.0.1` (itself or within `0.0.0.0`) and `[::1]`. Anything else is printed as the
/// address itself (`127.0.0.2`, `[::]` as `[::1]`, a LAN address), which leads only there.
fn dashboard_url(addr: SocketAddr, twin: bool) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let port = addr.port();
    match addr.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST || ip.is_unspecified() => {
            if twin {
                format!("http://localhost:{port}/")
            } else {
                // No IPv6 loopback on this host: nothing there to lead a browser astray.
                format!("http://127.0.0.1:{port}/")
            }
        }
        IpAddr::V6(ip) if ip.is_loopback() && twin => format!("http://localhost:{port}/"),
        IpAddr::V6(ip) if ip.is_loopback() || ip.is_unspecified() => {
            format!("http://[{}]:{port}/", Ipv6Addr::LOCALHOST)
        }
        _ => format!("http://{addr}/"),
    }
}

/// The loopback address of the other family that `localhost` may lead a client to at the
/// same port: browsers try `[::1]` as readily as `127.0.0.1`.
fn loopback_twin(addr: SocketAddr) -> Option<SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST || ip.is_unspecified() => {
            Some(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()))
        }
        IpAddr::V6(ip) if ip.is_loopback() => {
            Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()))
        }
        _ => None,
    }
}

/// Binds the TCP API at `addr` and, when the dashboard is printed as `localhost`, at the same
/// port of the other loopback family, so the printed URL can lead only to this node: a port
/// left free there is one another local user could listen on and proxy, capturing what the
/// browser sends. A port taken on either is an error that says so; port 0 picks a port free
/// on both. A host without IPv6 (or IPv4) loopback has nothing there to take.
async fn bind_api(addr: SocketAddr) -> Result<Vec<tokio::net::TcpListener>, NodeError> {
    let taken = |at: SocketAddr, e: std::io::Error| {
        let why = if e.kind() != std::io::ErrorKind::AddrInUse {
            String::new()
        } else if at == addr {
            "; another program holds that port: stop it".into()
        } else {
            "; another program holds that port on the other loopback address, where browsers \
             reach `localhost` too: stop it"
                .into()
        };
        NodeError::BadRequest(format!(
            "cannot listen for the API and dashboard on {at}: {e}{why}, or choose another port \
             with `--api`"
        ))
    };
    for _ in 0..16 {
        let first = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| taken(addr, e))?;
        let Some(twin) = loopback_twin(addr) else {
            return Ok(vec![first]);
        };
        let port = first.local_addr().map_err(NodeError::internal)?.port();
        let twin = SocketAddr::new(twin.ip(), port);
        match tokio::net::TcpListener::bind(twin).await {
            Ok(second) => return Ok(vec![first, second]),
            Err(e) if not_here(&e) => return Ok(vec![first]),
            // Port 0 chose a port someone holds on the other family: choose again.
            Err(_) if addr.port() == 0 => continue,
            Err(e) => return Err(taken(twin, e)),
        }
    }
    Err(NodeError::Internal(
        "no port was free on both loopback addresses".into(),
    ))
}

/// Whether a bind failed because this host has no such address (no IPv6 loopback, say).
fn not_here(e: &std::io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
        || code == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
}

/// The host names a TCP API bound to `addr` answers to.
pub(super) fn allowed_hosts(addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        hosts.push(addr.ip().to_string());
    }
    hosts.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_is_localhost_only_where_the_node_holds_every_address_of_the_name() {
        let at = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            dashboard_url(at("127.0.0.1:7373"), true),
            "http://localhost:7373/"
        );
        assert_eq!(
            dashboard_url(at("0.0.0.0:7373"), true),
            "http://localhost:7373/"
        );
        assert_eq!(
            dashboard_url(at("[::1]:7373"), true),
            "http://localhost:7373/"
        );
        assert_eq!(
            dashboard_url(at("127.0.0.1:7373"), false),
            "http://127.0.0.1:7373/"
        );
        assert_eq!(
            dashboard_url(at("127.0.0.2:7373"), false),
            "http://127.0.0.2:7373/"
        );
        assert_eq!(dashboard_url(at("[::]:7373"), false), "http://[::1]:7373/");
        assert_eq!(
            dashboard_url(at("10.0.0.5:7373"), false),
            "http://10.0.0.5:7373/"
        );
    }
}
