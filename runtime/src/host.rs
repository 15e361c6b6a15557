//! The one store-data type every guest runs with, commands and HTTP handlers alike: its WASI
//! context, resource table, outgoing-HTTP context, network grants, limiter, deadline and stop
//! signal. `W` is the WASI context: preview 1 for core modules, 0.2 for components.

use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;

use crate::limits::Limiter;
use crate::net::{GuestNet, NetworkAccess, NetworkHost};
use crate::request::RunRequest;
use crate::stop::Stop;

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
    /// A served app's count of live instances, which this store is one of.
    pub(crate) alive: Option<crate::instances::Alive>,
    /// The buckets it may open, and its `wasi:config` variables and secrets.
    pub(crate) kv: Option<crate::keyvalue::KeyValue>,
    pub(crate) config: crate::keyvalue::ConfigVars,
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
            alive: None,
            kv: None,
            config: crate::keyvalue::ConfigVars::default(),
        }
    }

    /// Counts the store's memory where `req` says (bounded across the app and the node), and
    /// ends the run when `stop` says.
    pub(crate) fn observed(mut self, req: &RunRequest, stop: Option<Stop>) -> Self {
        self.limiter = std::mem::replace(&mut self.limiter, Limiter::new(None)).shared(
            req.memory_gauge.clone(),
            req.limits.memory_total,
            req.node_memory.clone(),
        );
        self.stop = stop;
        self.kv = req.keyvalue.clone();
        self.config = req.config.clone();
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

impl crate::keyvalue::StateHost for Host<wasmtime_wasi::WasiCtx> {
    fn kv_view(&mut self) -> crate::keyvalue::KvView<'_> {
        crate::keyvalue::KvView {
            kv: self.kv.as_ref(),
            table: &mut self.table,
        }
    }

    fn config(&mut self) -> &wasmtime_wasi_config::WasiConfigVariables {
        self.config.vars()
    }
}
