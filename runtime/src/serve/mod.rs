//! `qyvol serve`: HTTP handlers instantiated per request.
//!
//! Each app (a `wasi:http/proxy` component, or a WASI preview 1 module served CGI-style) is
//! compiled and linked once into a pre-instantiated template; every request gets a fresh store
//! and instance from it, on the pooling allocator when the address space allows (copy-on-write
//! memory images make that a few microseconds), with its own memory, time and fuel limits.
//! A failing request (trap, limit, bad output) becomes a 5xx for that request only.
//!
//! In front of the handlers: the number of open connections is bounded (one more is answered
//! 503 and closed), and a request's body is read whole, at a pace, before the request waits for
//! one of the `max_concurrency` handler slots, so slow clients hold connections, never slots.

mod body;
mod cgi;
mod component;
mod cookies;
mod failure;
mod inprocess;
mod options;
mod router;
mod server;
mod service;
mod table;

pub use crate::instances::Instances;
pub use body::BodyPace;
pub use failure::RequestFailure;
pub(crate) use failure::failure_of;
pub use options::{AccessEntry, App, Events, ServeOptions};
pub use router::Router;
pub use server::Server;
pub use service::Reuse;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use qyvol_common::Route;
use wasmtime::{Engine, Store};

use crate::engine::{self, EpochTicker};
pub(crate) use crate::host::Host;
use crate::net::NetworkAccess;
use crate::request::RunRequest;
use crate::wasi;

/// The response body type of every handler.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// An app with its template and the grants every request gets.
pub(crate) struct Loaded {
    name: String,
    route: Route,
    request: RunRequest,
    /// Opened once when the app is loaded; every request's guest gets these folders.
    mounts: wasi::Mounts,
    network: NetworkAccess,
    max_body: u64,
    /// Turns for requests in progress, and how many there are (`None`: unbounded).
    turns: Option<(Arc<tokio::sync::Semaphore>, u32)>,
    handler: Handler,
    rt: Arc<Runtime>,
    instances: Arc<crate::instances::Counts>,
    /// Set when the app is removed: its instances still running after their response (a
    /// WASI 0.3 task, a 0.2 handler writing on) end then, not at their time limit, if any.
    gone: tokio::sync::watch::Sender<bool>,
}

impl Loaded {
    /// Resolves once the app is removed.
    fn removed(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut gone = self.gone.subscribe();
        async move {
            let _ = gone.wait_for(|gone| *gone).await;
        }
    }
}

enum Handler {
    /// A WASI 0.2 `wasi:http/incoming-handler`.
    Component(component::Template),
    /// A WASI 0.3 `wasi:http/handler` (the `wasi:http/service` world).
    Service(service::Template),
    Cgi(cgi::Template),
}

/// The request's turn among the app's and slot among the server's: a WASI 0.3 instance keeps
/// them until it ends (its tasks may run on after the response), so the instances alive never
/// outnumber the slots the pool is sized for; other handlers hold them to the response.
pub(crate) type Held = Vec<tokio::sync::OwnedSemaphorePermit>;

impl Loaded {
    /// Admits a request whose body is (or says it is) `body` bytes: refused past the app's
    /// body cap, or when the app already answers all it may at once; else its turn, held.
    fn admit(&self, body: Option<u64>) -> Result<Held, RequestFailure> {
        if body.is_some_and(|n| n > self.max_body) {
            return Err(RequestFailure::BodyTooLarge {
                limit: self.max_body,
            });
        }
        let mut held = Held::new();
        if let Some((turns, limit)) = &self.turns {
            let turn = turns.clone().try_acquire_owned();
            held.push(turn.map_err(|_| RequestFailure::AppBusy { limit: *limit })?);
        }
        Ok(held)
    }

    /// Answers `req` (read whole) from `peer` with this app's handler. A response whose status
    /// is not final (1xx, 101's protocol switch) is the handler's failure, as for CGI.
    async fn handle(
        self: &Arc<Self>,
        req: hyper::Request<Bytes>,
        peer: std::net::SocketAddr,
        held: Held,
    ) -> Result<hyper::Response<Body>, RequestFailure> {
        let response = match &self.handler {
            Handler::Component(t) => t.handle(&self.rt, self, req).await,
            Handler::Service(t) => t.handle(self, req, held).await,
            Handler::Cgi(t) => t.handle(&self.rt, self, req, peer).await,
        }?;
        let status = response.status().as_u16();
        if !(200..=599).contains(&status) {
            return Err(RequestFailure::Protocol(format!(
                "the handler answered with status {status}, which is not a final status (200-599)"
            )));
        }
        Ok(response)
    }

    /// Instantiates the handler once in a fresh store, without calling it.
    async fn instantiate(&self) -> wasmtime::Result<()> {
        match &self.handler {
            Handler::Component(t) => t.instantiate(&self.rt, self).await,
            Handler::Service(t) => t.instantiate(self).await,
            Handler::Cgi(t) => t.instantiate(&self.rt, self).await,
        }
    }
}

/// An app compiled and linked on the router's engine, not yet taking requests.
pub struct LoadedApp(Arc<Loaded>);

impl std::fmt::Debug for LoadedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LoadedApp").field(&self.0.name).finish()
    }
}

/// The engine a request's store is made on, the settings it was made with, and the clock
/// that drives its epochs.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) config: engine::EngineConfig,
    pooling: bool,
    /// The linker every component app on this engine is linked with, built on first use.
    components: std::sync::OnceLock<wasmtime::component::Linker<Host<wasmtime_wasi::WasiCtx>>>,
    #[expect(
        dead_code,
        reason = "kept for its Drop: the clock runs while the engine is used"
    )]
    ticker: Option<EpochTicker>,
}

impl Runtime {
    /// Compiles (or maps) a component app and links it with this engine's component linker:
    /// built by the first app loaded, shared by all (defining WASI's host functions was a
    /// third of a deploy's CPU time).
    pub(crate) fn link_component(
        &self,
        wasm: &crate::request::Wasm,
        limits: &crate::limits::Limits,
        how: crate::compile::Compilation<'_>,
    ) -> Result<wasmtime::component::InstancePre<Host<wasmtime_wasi::WasiCtx>>, crate::RuntimeError>
    {
        let linker = match self.components.get() {
            Some(linker) => linker,
            None => {
                let linker = crate::prepared::component_linker(&self.engine)?;
                self.components.get_or_init(|| linker)
            }
        };
        crate::prepared::link_component_world(linker, &self.engine, wasm, limits, how)
    }
}

/// A fresh store for one request of `app`, with its limits applied.
pub(crate) fn new_store<W: Send + 'static>(
    rt: &Runtime,
    app: &Loaded,
    wasi: W,
) -> Result<Store<Host<W>>, RequestFailure> {
    let limits = &app.request.limits;
    let mut host = Host::new(wasi, app.network.clone(), limits.memory, limits.timeout)
        .observed(&app.request, None);
    host.alive = Some(crate::instances::Alive::new(&app.instances));
    let mut store = Store::new(&rt.engine, host);
    store.limiter(|h| &mut h.limiter);
    let internal = |e: wasmtime::Error| RequestFailure::Protocol(format!("{e:#}"));
    if rt.config.fuel {
        store
            .set_fuel(limits.fuel.unwrap_or(u64::MAX))
            .map_err(internal)?;
    }
    if rt.config.epoch {
        // At each tick: past the deadline, interrupt; otherwise yield, so one busy handler
        // cannot hold a worker thread other requests need.
        store.epoch_deadline_callback(|ctx| {
            Ok(if ctx.data().must_end() {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
    }
    Ok(store)
}

pub(crate) fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
