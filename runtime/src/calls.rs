//! Calls between apps in one process: an app's outgoing HTTP to `http://NAME/...`, where NAME
//! is one its grant lists (`calls: [api]`), is handed to that app's handler in process — no
//! socket, no network grant, no name lookup. Every other host follows the network grants. A
//! leaf: the network layer asks it, the router answers it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

/// A response body, as the router gives it and as wasi:http takes it.
pub type CallBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// What answers an in-process call: the router of the process, for the app named.
pub trait Dialer: Send + Sync {
    fn call(
        &self,
        app: &str,
        req: http::Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Option<http::Response<CallBody>>> + Send>>;
}

/// The apps one app may call by name: (the name it calls, the app that answers), and what
/// reaches them. Without a dialer (a `qyvol run`), nothing is called in process.
#[derive(Clone, Default)]
pub struct Calls {
    pub targets: Arc<[(String, String)]>,
    pub dialer: Option<Arc<dyn Dialer>>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl Calls {
    /// The app that answers `uri`, when it is `http://NAME[:80]/...` for a NAME this app may
    /// call.
    pub(crate) fn target(&self, uri: &http::Uri) -> Option<&str> {
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        let authority = uri.authority()?;
        if authority.port_u16().is_some_and(|p| p != 80) {
            return None;
        }
        let host = authority.host();
        self.targets
            .iter()
            .find(|(called, _)| called.eq_ignore_ascii_case(host))
            .map(|(_, app)| app.as_str())
    }
}

/// The most a request body to another app may be when it is collected to be handed over.
pub(crate) const MAX_CALL_BODY: usize = 16 * 1024 * 1024;
