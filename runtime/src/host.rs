//! The one store-data type every guest runs with, commands and HTTP handlers alike: its WASI
//! context, resource table, outgoing-HTTP context, network grants, limiter, deadline and stop
//! signal. `W` is the WASI context: preview 1 for core modules, 0.2 for components.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;

use crate::limits::Limiter;
use crate::net::{GuestNet, NetworkAccess, NetworkHost};

pub(crate) struct Host<W> {
    pub(crate) wasi: W,
    pub(crate) table: ResourceTable,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) net: GuestNet,
    pub(crate) limiter: Limiter,
    /// When the run's time limit passes (checked at each epoch tick).
    pub(crate) deadline: Option<Instant>,
    /// Set by the embedder to end the run (checked at each epoch tick).
    pub(crate) stop: Option<Stop>,
}

impl<W> Host<W> {
    /// A run's store data: its grants, its memory limit, and its deadline counted from now.
    pub(crate) fn new(
        wasi: W,
        network: NetworkAccess,
        memory: Option<u64>,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            wasi,
            table: crate::handles::table(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            net: GuestNet::new(network),
            limiter: Limiter::new(memory),
            deadline: timeout.map(|t| Instant::now() + t),
            stop: None,
        }
    }

    /// Counts the store's memory where `req` says (bounded across the app and the node), and
    /// ends the run when `stop` says.
    pub(crate) fn observed(mut self, req: &crate::RunRequest, stop: Option<Stop>) -> Self {
        self.limiter = std::mem::replace(&mut self.limiter, Limiter::new(None)).shared(
            req.memory_gauge.clone(),
            req.limits.memory_total,
            req.node_memory.clone(),
        );
        self.stop = stop;
        self
    }

    /// Whether the run must end now: its deadline passed or it was asked to stop.
    pub(crate) fn must_end(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            || self.stop.as_ref().is_some_and(Stop::is_stopped)
    }
}

impl wasmtime_wasi::WasiView for Host<wasmtime_wasi::WasiCtx> {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl NetworkHost for Host<wasmtime_wasi::WasiCtx> {
    fn guest_net(&mut self) -> &mut GuestNet {
        &mut self.net
    }
}

impl wasmtime_wasi_http::WasiHttpView for Host<wasmtime_wasi::WasiCtx> {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.net,
        }
    }
}

/// Ends a running guest from outside (the node stopping an app): a guest computing is
/// interrupted at its next epoch tick, one waiting in a host call (a sleep, a read) is dropped.
#[derive(Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Default)]
struct StopInner {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Stop").field(&self.is_stopped()).finish()
    }
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to end; it ends with [`crate::Outcome::Stopped`].
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Resolves once [`Stop::stop`] is called.
    pub async fn stopped(&self) {
        loop {
            let notified = self.0.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a stop in between is not missed.
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}
