//! The router answering apps of its own process: calls between apps by name (see
//! [`crate::calls`]), readiness and health probes, and the atomic swap of an app for its new
//! version while requests in flight finish on the old one.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use hyper::{Request, Response};

use super::failure::error_response;
use super::{Body, LoadedApp, RequestFailure, Router};
use crate::RuntimeError;

/// Where in-process requests say they come from.
const IN_PROCESS: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

impl Router {
    /// Hands `req` to the app named `name`, as a request on the port would be (its body cap and
    /// its turns apply; it takes no slot of the port, whose request already holds one).
    pub async fn call(
        &self,
        name: &str,
        req: Request<Bytes>,
    ) -> Result<Response<Body>, RequestFailure> {
        let app = self.by_name(name).ok_or(RequestFailure::NoRoute)?;
        call_loaded(&app, req).await
    }

    /// A dialer for the apps' outgoing calls, holding the router weakly; each call is told to
    /// `events` as a request to the app called (its metrics, its access log line).
    pub fn dialer(
        self: &Arc<Self>,
        events: Option<Arc<dyn super::Events>>,
    ) -> Arc<dyn crate::calls::Dialer> {
        Arc::new(RouterDialer {
            router: Arc::downgrade(self),
            events,
        })
    }

    /// Serves `app` in place of the app of its name, at once: new requests reach the new one,
    /// requests in flight finish on the old one. Refused when its route is another app's.
    pub fn replace(&self, app: LoadedApp) -> Result<(), RuntimeError> {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        apps.insert(app.0, true)
    }

    /// [`LoadedApp::probe`] of the app named `name` (a health check of a routed app).
    pub async fn probe(&self, name: &str, path: &str) -> Result<u16, String> {
        let app = self
            .by_name(name)
            .ok_or_else(|| RequestFailure::NoRoute.describe())?;
        probe(&app, path).await
    }

    fn by_name(&self, name: &str) -> Option<Arc<super::Loaded>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.by_name(name).cloned()
    }
}

impl LoadedApp {
    /// A `GET path` answered by this app before it is routed (a readiness or health check):
    /// its status, or why it gave none.
    pub async fn probe(&self, path: &str) -> Result<u16, String> {
        probe(&self.0, path).await
    }
}

/// `GET path` of `app`, in process: its status, or why it gave none.
async fn probe(app: &Arc<super::Loaded>, path: &str) -> Result<u16, String> {
    let req = Request::get(format!("http://localhost{path}"))
        .header(hyper::header::HOST, "localhost")
        .body(Bytes::new())
        .map_err(|e| e.to_string())?;
    match call_loaded(app, req).await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(f) => Err(f.describe()),
    }
}

async fn call_loaded(
    app: &Arc<super::Loaded>,
    req: Request<Bytes>,
) -> Result<Response<Body>, RequestFailure> {
    let held = app.admit(Some(req.body().len() as u64))?;
    app.handle(req, IN_PROCESS, held).await
}

struct RouterDialer {
    router: Weak<Router>,
    events: Option<Arc<dyn super::Events>>,
}

impl crate::calls::Dialer for RouterDialer {
    fn call(
        &self,
        app: &str,
        req: Request<Bytes>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<Response<crate::calls::CallBody>>> + Send>,
    > {
        let router = self.router.upgrade();
        let events = self.events.clone();
        let app = app.to_string();
        Box::pin(async move {
            let router = router?;
            let (method, path) = (req.method().to_string(), req.uri().path().to_string());
            let start = std::time::Instant::now();
            let (response, failure) = match router.call(&app, req).await {
                Ok(r) => (r, None),
                // No such app (yet): the caller gets wasi:http's destination-not-found.
                Err(RequestFailure::NoRoute) => return None,
                Err(f) => (error_response(&f), Some(f)),
            };
            if let Some(events) = &events {
                events.request(&super::AccessEntry {
                    method: &method,
                    path: &path,
                    status: response.status().as_u16(),
                    duration: start.elapsed(),
                    app: Some(&app),
                    failure: failure.as_ref(),
                });
            }
            Some(response)
        })
    }
}
