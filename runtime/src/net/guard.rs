//! Checks wasmtime-wasi offers no hook for, added by shadowing its WASI 0.2 and 0.3 functions in
//! a component's linker and delegating to its own implementation once they pass:
//!
//! - `ip-name-lookup.resolve-addresses` (0.2 and 0.3) looks up only names some grant mentions
//!   (wasmtime-wasi has one switch for all lookups, and a lookup is itself traffic to a resolver);
//! - UDP: only a socket bound to a `listen`-granted address receives from any peer; others
//!   receive from granted peers only (wasmtime-wasi's receive check sees the peer, never the
//!   socket). In 0.2, `udp-socket.stream` notes which sockets are such listeners and
//!   `incoming-datagram-stream.receive` drops the rest; in 0.3, `udp-socket.receive` does both.
//!
//! Core modules (WASI preview 1) cannot create sockets, so commands and handlers built as
//! components are all this concerns.

use std::net::SocketAddr;

use wasmtime::StoreContextMut;
use wasmtime::component::{Accessor, Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::udp::{
    self, IncomingDatagramStream, OutgoingDatagramStream, UdpSocket,
};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView, WasiSocketsView};

use super::GuestNet;

/// The `wasi:sockets` version wasmtime-wasi 49 links (its `wit/deps/sockets.wit`). Shadowing
/// another version would define new functions beside the unguarded ones; the CLI tests of
/// lookups and UDP receives fail if that happens.
const WASI_SOCKETS: &str = "0.2.12";
/// The `wasi:sockets` 0.3 version wasmtime-wasi links (its `src/p3/wit/deps/sockets.wit`).
const WASI_SOCKETS_P3: &str = "0.3.0";

/// Store data whose network state the guards read.
pub(crate) trait NetworkHost: WasiView {
    fn guest_net(&mut self) -> &mut GuestNet;
}

/// Replaces the guarded functions in `linker`, which already has all of WASI 0.2.
pub(crate) fn link_guards<T: NetworkHost + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(&format!("wasi:sockets/ip-name-lookup@{WASI_SOCKETS}"))?
        .func_wrap("resolve-addresses", resolve_addresses::<T>)?;
    let mut udp = linker.instance(&format!("wasi:sockets/udp@{WASI_SOCKETS}"))?;
    udp.func_wrap_async("[method]udp-socket.stream", |store, params| {
        Box::new(stream::<T>(store, params))
    })?;
    udp.func_wrap("[method]incoming-datagram-stream.receive", receive::<T>)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Replaces the guarded WASI 0.3 functions in `linker`, which already has all of WASI 0.3.
pub(crate) fn link_p3_guards<T: NetworkHost + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(&format!("wasi:sockets/ip-name-lookup@{WASI_SOCKETS_P3}"))?
        .func_wrap_concurrent("resolve-addresses", |store, (name,)| {
            Box::pin(p3::resolve_addresses(store, name))
        })?;
    linker
        .instance(&format!("wasi:sockets/types@{WASI_SOCKETS_P3}"))?
        .func_wrap_concurrent("[method]udp-socket.receive", |store, (socket,)| {
            Box::pin(p3::receive(store, socket))
        })?;
    linker.allow_shadowing(false);
    Ok(())
}

fn sockets<T: WasiView>(host: &mut T) -> WasiSocketsCtxView<'_> {
    let view = host.ctx();
    WasiSocketsCtxView {
        ctx: view.ctx.sockets(),
        table: view.table,
    }
}

/// The bindings' result as the guest sees it: an `error-code`, or a trap.
fn to_guest<R>(result: Result<R, SocketError>) -> wasmtime::Result<(Result<R, ErrorCode>,)> {
    match result {
        Ok(r) => Ok((Ok(r),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

type Lookup = Resource<ip_name_lookup::ResolveAddressStream>;

fn resolve_addresses<T: NetworkHost>(
    mut store: StoreContextMut<'_, T>,
    (network, name): (Resource<Network>, String),
) -> wasmtime::Result<(Result<Lookup, ErrorCode>,)> {
    let host = store.data_mut();
    if !host.guest_net().access.may_look_up(&name) {
        return Ok((Err(ErrorCode::AccessDenied),));
    }
    to_guest(ip_name_lookup::Host::resolve_addresses(
        &mut sockets(host),
        network,
        name,
    ))
}

type Streams = (
    Resource<IncomingDatagramStream>,
    Resource<OutgoingDatagramStream>,
);

async fn stream<T: NetworkHost>(
    mut store: StoreContextMut<'_, T>,
    (socket, remote): (Resource<UdpSocket>, Option<IpSocketAddress>),
) -> wasmtime::Result<(Result<Streams, ErrorCode>,)> {
    let host = store.data_mut();
    let local =
        udp::HostUdpSocket::local_address(&mut sockets(host), Resource::new_borrow(socket.rep()));
    let access = host.guest_net().access.clone();
    let listener = match local {
        Ok(addr) => access.listens_on(SocketAddr::from(addr)).await,
        Err(_) => false,
    };
    let host = store.data_mut();
    let streams = udp::HostUdpSocket::stream(&mut sockets(host), socket, remote).await;
    if let Ok((incoming, _)) = &streams {
        let listeners = &mut host.guest_net().udp_listeners;
        if listener {
            listeners.insert(incoming.rep());
        } else {
            listeners.remove(&incoming.rep());
        }
    }
    to_guest(streams)
}

fn receive<T: NetworkHost>(
    mut store: StoreContextMut<'_, T>,
    (stream, max): (Resource<IncomingDatagramStream>, u64),
) -> wasmtime::Result<(Result<Vec<udp::IncomingDatagram>, ErrorCode>,)> {
    let host = store.data_mut();
    let rep = stream.rep();
    let received = udp::HostIncomingDatagramStream::receive(&mut sockets(host), stream, max);
    let net = host.guest_net();
    let from_anyone = net.udp_listeners.contains(&rep);
    // Dropped datagrams are as if never sent; an empty list tells the guest to wait.
    to_guest(received.map(|mut datagrams| {
        if !from_anyone {
            datagrams.retain(|d| net.access.peer_granted(SocketAddr::from(d.remote_address)));
        }
        datagrams
    }))
}

/// The WASI 0.3 guards: the same checks as 0.2's, through 0.3's async functions.
mod p3 {
    use super::*;
    use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup::{self, HostWithStore as _};
    use wasmtime_wasi::p3::bindings::sockets::types::{
        ErrorCode, HostUdpSocket as _, HostUdpSocketWithStore as _, IpAddress, IpSocketAddress,
    };
    use wasmtime_wasi::sockets::UdpSocket;

    /// What wasmtime-wasi's own implementation gets: its view of the store's sockets.
    fn wasi_sockets<T: NetworkHost + 'static>(store: &Accessor<T>) -> Accessor<T, WasiSockets> {
        store.with_getter::<WasiSockets>(<T as WasiSocketsView>::sockets)
    }

    pub(super) async fn resolve_addresses<T: NetworkHost + 'static>(
        store: &Accessor<T>,
        name: String,
    ) -> wasmtime::Result<(Result<Vec<IpAddress>, ip_name_lookup::ErrorCode>,)> {
        if !store.with(|mut host| host.get().guest_net().access.may_look_up(&name)) {
            return Ok((Err(ip_name_lookup::ErrorCode::AccessDenied),));
        }
        Ok((WasiSockets::resolve_addresses(&wasi_sockets(store), name).await?,))
    }

    type Datagram = (Vec<u8>, IpSocketAddress);

    /// Receives the next datagram this socket may hear: from anyone when it is bound to a
    /// `listen`-granted address, else from a granted peer; the rest are dropped as if never sent.
    pub(super) async fn receive<T: NetworkHost + 'static>(
        store: &Accessor<T>,
        socket: Resource<UdpSocket>,
    ) -> wasmtime::Result<(Result<Datagram, ErrorCode>,)> {
        let rep = socket.rep();
        let (local, access) = store.with(|mut host| {
            let host = host.get();
            let local = host.sockets().get_local_address(Resource::new_borrow(rep));
            (local, host.guest_net().access.clone())
        });
        let from_anyone = match local {
            Ok(addr) => access.listens_on(SocketAddr::from(addr)).await,
            Err(_) => false,
        };
        let sockets = wasi_sockets(store);
        loop {
            match WasiSockets::receive(&sockets, Resource::new_borrow(rep)).await {
                Ok((data, from)) if from_anyone || access.peer_granted(SocketAddr::from(from)) => {
                    return Ok((Ok((data, from)),));
                }
                Ok(_) => continue,
                Err(e) => return Ok((Err(e.downcast()?),)),
            }
        }
    }
}
