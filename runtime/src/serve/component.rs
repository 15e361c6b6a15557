//! `wasi:http/proxy` components: a `ProxyPre` template, one instance per request.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use super::{Body, Host, Loaded, RequestFailure, Runtime, failure_of, new_store};
use crate::compile::Compilation;
use crate::limits::Limits;
use crate::prepared::{finish, with_deadline};
use crate::request::Wasm;
use crate::{RuntimeError, wasi};
use wasmtime_wasi::WasiCtx;

pub(crate) struct Template(ProxyPre<Host<WasiCtx>>);

impl Template {
    pub(crate) fn new(
        rt: &Runtime,
        wasm: &Wasm,
        limits: &Limits,
        how: Compilation<'_>,
    ) -> Result<Self, RuntimeError> {
        let pre = rt.link_component(wasm, limits, how)?;
        ProxyPre::new(pre).map(Self).map_err(|_| RuntimeError::Invalid {
            path: wasm.path.clone(),
            reason: "the component does not export `wasi:http/incoming-handler`: it is not an HTTP handler (a command needs `runtime: wasi` and `qyvol run`)".into(),
        })
    }

    /// Instantiates the template once in a fresh store with the app's WASI context, without
    /// calling it: the part of a request that is instantiation.
    pub(crate) async fn instantiate(&self, rt: &Runtime, app: &Loaded) -> wasmtime::Result<()> {
        let mut b = wasi::builder(&app.request, &app.mounts, &app.network)?;
        let mut store =
            new_store(rt, app, b.build()).map_err(|f| wasmtime::format_err!("{f:?}"))?;
        self.0.instantiate_async(&mut store).await.map(drop)
    }

    /// Instantiates the template for one request and returns the response once the handler
    /// sets it; the body streams from the instance as it writes it. The instance lives until
    /// it returns or its time limit passes.
    pub(crate) async fn handle(
        &self,
        rt: &Runtime,
        app: &std::sync::Arc<Loaded>,
        req: Request<Bytes>,
    ) -> Result<Response<Body>, RequestFailure> {
        if req.uri().authority().is_none() && !req.headers().contains_key(hyper::header::HOST) {
            return Err(RequestFailure::BadRequest(
                "the request has no `Host` header".into(),
            ));
        }
        let mut b = wasi::builder(&app.request, &app.mounts, &app.network)
            .map_err(|e| RequestFailure::Protocol(e.to_string()))?;
        // A handler's prints go where the app's output goes (the builder set that); its
        // response goes through wasi:http.
        let mut store = new_store(rt, app, b.build())?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, Full::new(body));
        let pre = self.0.clone();
        let limits = app.request.limits;
        // A guest blocked in a host call (a sleep, a read) is past epochs' reach.
        let removed = app.removed();
        let task = tokio::spawn(async move {
            tokio::select! {
                ran = with_deadline(limits.timeout, run(&pre, &mut store, req, tx)) => ran,
                () = removed => Some(Err(wasmtime::format_err!("the app was removed"))),
            }
        });
        match rx.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(RequestFailure::Protocol(format!(
                "the handler answered with an error: {code:?}"
            ))),
            // The handler ended, or was stopped, without setting a response.
            Err(_) => match task.await {
                Ok(result) => Err(failure_of(finish(result, &app.request))),
                Err(e) => Err(RequestFailure::Protocol(format!(
                    "the handler's task failed: {e}"
                ))),
            },
        }
    }
}

async fn run(
    pre: &ProxyPre<Host<WasiCtx>>,
    store: &mut Store<Host<WasiCtx>>,
    req: Request<Full<Bytes>>,
    tx: tokio::sync::oneshot::Sender<
        Result<Response<Body>, wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>,
    >,
) -> wasmtime::Result<()> {
    let proxy = pre.instantiate_async(&mut *store).await?;
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(tx)?;
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, req, out)
        .await
}
