//! Network grants (`network.allow` in a manifest) and HTTP routes (`http.route`).
//!
//! A grant names what a guest may reach or bind, as precisely as a mount names a folder:
//! `api.example.com:443`, `*.example.com:443`, `10.0.0.0/8:5432`, `[::1]:8080`, with an
//! optional kind in front (`connect`, the default, or `listen`). Nothing is granted by default.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Deserializer, de};

/// What a grant lets the guest do with an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantKind {
    /// Open connections to it (TCP connect, UDP send, outgoing HTTP requests).
    Connect,
    /// Bind and listen on it (TCP listen, UDP bind).
    Listen,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Listen => "listen",
        }
    }
}

/// The host half of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// A host name, lowercase, without a trailing dot.
    Name(String),
    /// `*.domain`: any name ending in `.domain` (not `domain` itself), stored as `.domain`.
    Subdomains(String),
    /// An address or a CIDR block (`10.0.0.1` is `10.0.0.1/32`).
    Net { addr: IpAddr, prefix: u8 },
}

/// One `network.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkGrant {
    pub kind: GrantKind,
    pub host: HostPattern,
    /// `None` for `*` (any port).
    pub port: Option<u16>,
}

impl NetworkGrant {
    /// Whether this grant lets the guest `kind` the address `addr`.
    pub fn allows_addr(&self, kind: GrantKind, addr: SocketAddr) -> bool {
        self.kind == kind
            && self.port.is_none_or(|p| p == addr.port())
            && match &self.host {
                // Listening on every interface covers listening on any one of them.
                HostPattern::Net { addr: net, .. }
                    if kind == GrantKind::Listen
                        && net.is_unspecified()
                        && net.is_ipv4() == addr.is_ipv4() =>
                {
                    true
                }
                HostPattern::Net { addr: net, prefix } => in_net(addr.ip(), *net, *prefix),
                // The caller resolves names; a literal address is its own name.
                HostPattern::Name(_) | HostPattern::Subdomains(_) => false,
            }
    }

    /// Whether this grant names private addresses on purpose: an address or block lying wholly
    /// inside a loopback, link-local or private range (`127.0.0.1`, `10.0.0.0/8`), as opposed
    /// to a name, which may resolve anywhere, or a block as wide as `0.0.0.0/0`.
    pub fn names_private(&self) -> bool {
        let HostPattern::Net { addr, prefix } = self.host else {
            return false;
        };
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => v6
                .to_ipv4_mapped()
                .map_or((addr, prefix), |v4| (IpAddr::V4(v4), prefix - 96)),
            _ => (addr, prefix),
        };
        PRIVATE_NETS.iter().any(|&(net, net_prefix)| {
            net.is_ipv4() == addr.is_ipv4() && prefix >= net_prefix && in_net(addr, net, net_prefix)
        })
    }

    /// Whether a name lookup of `host` serves this grant: the grant names it, or it is a
    /// subdomain of a `*.domain` grant.
    pub fn mentions(&self, host: &str) -> bool {
        self.matches_name(&normalize(host))
    }

    fn matches_name(&self, host: &str) -> bool {
        match &self.host {
            HostPattern::Name(name) => name == host,
            HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Net { .. } => false,
        }
    }

    /// Whether this grant lets the guest `kind` the host `host` (a name or an address
    /// literal, as written in a URL) on `port`.
    pub fn allows_host(&self, kind: GrantKind, host: &str, port: u16) -> bool {
        if self.kind != kind || self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = normalize(host);
        match (&self.host, host.parse::<IpAddr>()) {
            (HostPattern::Net { addr, prefix }, Ok(ip)) => in_net(ip, *addr, *prefix),
            (_, Ok(_)) => false,
            (_, Err(_)) => self.matches_name(&host),
        }
    }
}

/// A host as a URL or a lookup writes it, compared the way grants are stored: lowercase, without
/// IPv6 brackets or a trailing dot.
fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Loopback, link-local, private (RFC 1918, RFC 6598 shared, IPv6 ULA), unspecified and
/// broadcast blocks: the host's own services and its local networks, which a guest must not
/// reach through a name grant under `block_private` (Spin's `block_private_networks`).
const PRIVATE_NETS: [(IpAddr, u8); 11] = [
    (IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10),
    (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
    (IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::BROADCAST), 32),
    // `::`, `::1` and the deprecated IPv4-compatible `::a.b.c.d`.
    (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 96),
    (IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
    (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
];

/// Whether `ip` is on the host itself or on a local network rather than the internet (IPv4-mapped
/// IPv6 addresses are judged as the IPv4 address they carry).
pub fn is_private(ip: IpAddr) -> bool {
    PRIVATE_NETS
        .iter()
        .any(|&(net, prefix)| in_net(ip, net, prefix))
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl fmt::Display for NetworkGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == GrantKind::Listen {
            f.write_str("listen ")?;
        }
        match &self.host {
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Subdomains(s) => write!(f, "*{s}")?,
            HostPattern::Net { addr, prefix } => {
                let full = if addr.is_ipv4() { 32 } else { 128 };
                match (addr, *prefix == full) {
                    (IpAddr::V6(a), true) => write!(f, "[{a}]")?,
                    (a, true) => write!(f, "{a}")?,
                    (a, false) => write!(f, "{a}/{prefix}")?,
                }
            }
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => f.write_str(":*"),
        }
    }
}

impl std::str::FromStr for NetworkGrant {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let hint = "write `HOST:PORT`, `*.DOMAIN:PORT` or `IP/PREFIX:PORT`, optionally after `connect` or `listen` (e.g. `api.example.com:443`, `listen 127.0.0.1:8080`)";
        let text = input.trim();
        let (kind, rest) = match text.split_once(char::is_whitespace) {
            Some(("connect", rest)) => (GrantKind::Connect, rest.trim()),
            Some(("listen", rest)) => (GrantKind::Listen, rest.trim()),
            Some((word, _)) => {
                return Err(format!(
                    "`{word}` is not a grant kind in `{input}`: use `connect` or `listen`"
                ));
            }
            None => (GrantKind::Connect, text),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| format!("`{input}` has no port: {hint}"))?;
        let port = match port {
            "*" => None,
            p => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0 || kind == GrantKind::Listen)
                    .ok_or_else(|| format!("`{p}` is not a port (1-65535) in `{input}`"))?,
            ),
        };
        let host = parse_host(host).map_err(|e| format!("{e} in `{input}`: {hint}"))?;
        Ok(Self { kind, host, port })
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Some((addr, prefix)) = bare.split_once('/') {
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| format!("`/{prefix}` is not a prefix length (0-{max})"))?;
        return Ok(HostPattern::Net { addr, prefix });
    }
    if let Ok(addr) = bare.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Ok(HostPattern::Net { addr, prefix });
    }
    if host == "*" {
        return Err("`*` alone would grant every host; name the hosts, or use `0.0.0.0/0`".into());
    }
    let (wild, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok(if wild {
        HostPattern::Subdomains(format!(".{name}"))
    } else {
        HostPattern::Name(name)
    })
}

impl<'de> Deserialize<'de> for NetworkGrant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// Where an HTTP handler is mounted: `/hello` matches that path only, `/api/...` matches
/// `/api` and everything under it, `/...` matches every path (Spin's route syntax).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The fixed part, without a trailing `/` (empty for `/...`).
    base: String,
    wildcard: bool,
}

impl Route {
    /// Every path: the route of a handler whose manifest names none.
    pub fn any() -> Self {
        Self {
            base: String::new(),
            wildcard: true,
        }
    }

    /// The fixed part of the route (`/api` for `/api/...`, empty for `/...`).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// How well `path` (without its query) matches: `None` if not at all, otherwise a score
    /// where an exact route beats any wildcard and a longer wildcard beats a shorter one.
    pub fn score(&self, path: &str) -> Option<usize> {
        if !self.wildcard {
            return (path == self.base || (self.base.is_empty() && path == "/"))
                .then_some(usize::MAX);
        }
        let rest = path.strip_prefix(self.base.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(self.base.len())
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.wildcard, self.base.is_empty()) {
            (true, _) => write!(f, "{}/...", self.base),
            (false, true) => f.write_str("/"),
            (false, false) => f.write_str(&self.base),
        }
    }
}

impl std::str::FromStr for Route {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "write a path like `/hello`, or `/api/...` for a prefix";
        if !s.starts_with('/') {
            return Err(format!("route `{s}` must start with `/`: {hint}"));
        }
        let (base, wildcard) = match s.strip_suffix("/...") {
            Some(base) => (base, true),
            None => (s.trim_end_matches('/'), false),
        };
        if base.contains("...") || base.contains('*') {
            return Err(format!(
                "route `{s}` may only end in `/...`, with no other wildcard: {hint}"
            ));
        }
        if base.contains(['?', '#', ' ', '\0']) || base.split('/').any(|c| c == "..") {
            return Err(format!(
                "route `{s}` contains a query, fragment, space or `..`: {hint}"
            ));
        }
        if s.chars()
            .any(|c| c.is_control() || (c.is_ascii() && !c.is_ascii_graphic()))
        {
            return Err(format!(
                "route `{}` contains a control character: {hint}",
                s.escape_debug()
            ));
        }
        Ok(Self {
            base: base.to_string(),
            wildcard,
        })
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(s: &str) -> NetworkGrant {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn grants_parse_and_print_back() {
        for s in [
            "api.example.com:443",
            "*.example.com:443",
            "10.0.0.0/8:5432",
            "127.0.0.1:8080",
            "[::1]:8080",
            "listen 0.0.0.0:8080",
            "localhost:*",
        ] {
            assert_eq!(grant(s).to_string(), s);
        }
        assert_eq!(
            grant("connect API.Example.com.:80").to_string(),
            "api.example.com:80"
        );
    }

    #[test]
    fn bad_grants_say_what_to_write() {
        for (s, needle) in [
            ("example.com", "has no port"),
            ("example.com:http", "not a port"),
            ("example.com:0", "not a port"),
            ("10.0.0.0/33:1", "prefix length"),
            ("bind 1.2.3.4:5", "not a grant kind"),
            ("*:443", "every host"),
            ("exa mple.com:1", "not a grant kind"),
            ("ex_ample.com:1", "not a host name"),
            ("*.*.com:1", "not a host name"),
        ] {
            let e = s.parse::<NetworkGrant>().expect_err(s);
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn grants_match_only_what_they_name() {
        use GrantKind::*;
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let cidr = grant("10.0.0.0/8:5432");
        assert!(cidr.allows_addr(Connect, a("10.1.2.3:5432")));
        assert!(!cidr.allows_addr(Connect, a("11.1.2.3:5432")));
        assert!(!cidr.allows_addr(Connect, a("10.1.2.3:5433")));
        assert!(!cidr.allows_addr(Listen, a("10.1.2.3:5432")));
        assert!(cidr.allows_addr(Connect, a("[::ffff:10.0.0.1]:5432")));
        assert!(grant("[::1]:80").allows_addr(Connect, a("[::1]:80")));
        assert!(!grant("[::1]:80").allows_addr(Connect, a("127.0.0.1:80")));

        let wild = grant("*.example.com:443");
        assert!(wild.allows_host(Connect, "api.example.com", 443));
        assert!(wild.allows_host(Connect, "A.B.Example.COM.", 443));
        assert!(!wild.allows_host(Connect, "example.com", 443));
        assert!(!wild.allows_host(Connect, "evilexample.com", 443));
        assert!(!wild.allows_host(Connect, "api.example.com", 80));
        let name = grant("api.example.com:*");
        assert!(name.allows_host(Connect, "api.example.com", 8443));
        assert!(!name.allows_host(Connect, "api.example.com.evil.net", 443));
        assert!(grant("127.0.0.0/8:80").allows_host(Connect, "127.9.9.9", 80));
        assert!(!grant("127.0.0.0/8:80").allows_host(Connect, "localhost", 80));

        let any = grant("listen 0.0.0.0:8080");
        assert!(any.allows_addr(Listen, a("127.0.0.1:8080")));
        assert!(any.allows_addr(Listen, a("0.0.0.0:8080")));
        assert!(!any.allows_addr(Listen, a("127.0.0.1:8081")));
        assert!(!any.allows_addr(Listen, a("[::1]:8080")));
        assert!(!grant("listen 127.0.0.1:8080").allows_addr(Listen, a("0.0.0.0:8080")));
        assert!(!grant("0.0.0.0:80").allows_addr(Connect, a("10.0.0.1:80")));
    }

    #[test]
    fn private_addresses_are_the_hosts_own_and_its_local_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        for private in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
        ] {
            assert!(is_private(ip(private)), "{private}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "100.128.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(ip(public)), "{public}");
        }
    }

    #[test]
    fn only_address_grants_inside_a_private_range_name_private_addresses() {
        for named in [
            "127.0.0.1:80",
            "10.0.0.0/8:5432",
            "10.1.0.0/16:1",
            "[::1]:80",
            "[fd00::1]:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(grant(named).names_private(), "{named}");
        }
        for not in [
            "localhost:80",
            "*.internal:80",
            "0.0.0.0/0:80",
            "8.0.0.0/4:80",
            "8.8.8.8:53",
            "[::/0]:80",
        ] {
            assert!(!grant(not).names_private(), "{not}");
        }
    }

    #[test]
    fn lookups_are_mentioned_by_name_and_subdomain_grants() {
        assert!(grant("api.example.com:443").mentions("API.example.com."));
        assert!(!grant("api.example.com:443").mentions("example.com"));
        assert!(grant("*.example.com:443").mentions("a.b.example.com"));
        assert!(!grant("*.example.com:443").mentions("example.com"));
        assert!(!grant("127.0.0.1:80").mentions("localhost"));
    }

    #[test]
    fn routes_match_like_spin() {
        let r = |s: &str| s.parse::<Route>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(r("/hello").score("/hello"), Some(usize::MAX));
        assert_eq!(r("/hello/").score("/hello"), Some(usize::MAX));
        assert_eq!(r("/hello").score("/hello/x"), None);
        assert_eq!(r("/api/...").score("/api"), Some(4));
        assert_eq!(r("/api/...").score("/api/users/1"), Some(4));
        assert_eq!(r("/api/...").score("/apis"), None);
        assert_eq!(r("/...").score("/anything"), Some(0));
        assert_eq!(r("/").score("/"), Some(usize::MAX));
        assert_eq!(r("/api/...").to_string(), "/api/...");
        for bad in ["hello", "/a/.../b", "/a*", "/a?b", "/../x"] {
            assert!(bad.parse::<Route>().is_err(), "{bad}");
        }
    }
}
