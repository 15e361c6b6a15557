//! The dashboard's HTML, rendered on the server (maud escapes every value it is given) and
//! refreshed in place by htmx. No inline script or style: the page's Content-Security-Policy
//! allows only the node's own files.
//!
//! Here: what every view is given. `layout` is the page around them, `parts` the pieces
//! several show; `apps`, `app`, `charts` and `images` are the views themselves.

mod app;
mod apps;
mod charts;
mod images;
mod layout;
mod parts;

use super::text::{Lang, T};

pub use app::{app_page, app_status};
pub use apps::{AppsQuery, apps_page, apps_table, overview};
pub use charts::charts;
pub use images::{PullView, deploy_page, images_page, images_table, pull};
pub use layout::{error, login, page};
pub use parts::encode;

/// What every page needs to know about the request.
pub struct Ctx {
    pub lang: Lang,
    /// The session's CSRF token: sent by htmx on every request that changes state.
    pub csrf: Option<String>,
    /// The page's path within the session, for the language toggle.
    pub path: String,
    /// Where the session's pages are (`/s/<session>`; empty without a session): the session
    /// rides in the path, never in a cookie, which a browser would send to every local port.
    pub base: String,
}

impl Ctx {
    pub fn t(&self, t: T) -> &'static str {
        t.text(self.lang)
    }

    /// `path` (absolute within the dashboard) under the session's base.
    pub fn to(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Apps,
    Images,
    Deploy,
    None,
}
