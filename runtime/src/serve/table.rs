//! The route table: the apps a router serves, indexed by name and by route, so a request finds
//! its app in a few hash lookups (one per segment of its path) however many apps are served —
//! a node keeps thousands; a scan of every route per request grew with each one.

use std::collections::HashMap;
use std::sync::Arc;

use qyvol_common::Route;

use super::Loaded;
use crate::RuntimeError;

#[derive(Default)]
pub(super) struct Table {
    by_name: HashMap<String, Arc<Loaded>>,
    routes: Routes<Arc<Loaded>>,
}

impl Table {
    /// The app whose route matches `path` (without its query) most specifically.
    pub(super) fn route(&self, path: &str) -> Option<&Arc<Loaded>> {
        self.routes.find(path)
    }

    pub(super) fn by_name(&self, name: &str) -> Option<&Arc<Loaded>> {
        self.by_name.get(name)
    }

    /// Adds `app`, or puts it in place of the app of its name when `replace`; refused when its
    /// route is another app's (or, without `replace`, when its name is taken).
    pub(super) fn insert(&mut self, app: Arc<Loaded>, replace: bool) -> Result<(), RuntimeError> {
        let named = self.by_name.get(&app.name);
        let taken = self.routes.get(&app.route).filter(|b| b.name != app.name);
        if let Some(b) = taken {
            return Err(RuntimeError::Serve(format!(
                "`{}` and `{}` both ask for the route `{}`; give one of them another `http.route`",
                b.name, app.name, app.route
            )));
        }
        if let Some(b) = named.filter(|_| !replace) {
            return Err(RuntimeError::Serve(format!(
                "an app named `{}` is already served",
                b.name
            )));
        }
        self.remove(&app.name);
        self.routes.insert(&app.route, app.clone());
        self.by_name.insert(app.name.clone(), app);
        Ok(())
    }

    /// Takes out the app named `name`, if it is there.
    pub(super) fn remove(&mut self, name: &str) -> Option<Arc<Loaded>> {
        let app = self.by_name.remove(name)?;
        self.routes.remove(&app.route);
        Some(app)
    }
}

/// Values by route: exact routes by their path (`/` as the empty base), wildcard routes
/// (`/api/...`) by their base (`/api`; empty for `/...`).
struct Routes<T> {
    exact: HashMap<String, T>,
    prefixes: HashMap<String, T>,
    /// How many wildcard bases there are of each depth (their count of `/`): a lookup starts
    /// at the deepest, so its cost is bounded by the routes, not by the path a client sends.
    depths: std::collections::BTreeMap<usize, usize>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            prefixes: HashMap::new(),
            depths: std::collections::BTreeMap::new(),
        }
    }
}

fn depth(base: &str) -> usize {
    base.bytes().filter(|b| *b == b'/').count()
}

impl<T> Routes<T> {
    fn map(&mut self, route: &Route) -> &mut HashMap<String, T> {
        if route.is_wildcard() {
            &mut self.prefixes
        } else {
            &mut self.exact
        }
    }

    fn get(&self, route: &Route) -> Option<&T> {
        let map = if route.is_wildcard() {
            &self.prefixes
        } else {
            &self.exact
        };
        map.get(route.base())
    }

    fn insert(&mut self, route: &Route, value: T) {
        let added = self
            .map(route)
            .insert(route.base().to_string(), value)
            .is_none();
        if added && route.is_wildcard() {
            *self.depths.entry(depth(route.base())).or_default() += 1;
        }
    }

    fn remove(&mut self, route: &Route) {
        let removed = self.map(route).remove(route.base()).is_some();
        if removed && route.is_wildcard() {
            let d = depth(route.base());
            if let Some(n) = self.depths.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    self.depths.remove(&d);
                }
            }
        }
    }

    /// Where the walk back through `path`'s bases starts: no wildcard base has more segments
    /// than the deepest, so the path is cut to as many (one pass over it), and a path of
    /// thousands of `/` costs a few lookups, not thousands. `None` when there is no wildcard.
    fn deepest_base<'p>(&self, path: &'p str) -> Option<&'p str> {
        let deepest = *self.depths.keys().next_back()?;
        Some(match path.match_indices('/').nth(deepest) {
            Some((end, _)) => &path[..end],
            None => path,
        })
    }

    /// The value of the route that matches `path` most specifically: an exact route, else the
    /// longest wildcard route `path` is under (as [`Route::score`] ranks them).
    fn find(&self, path: &str) -> Option<&T> {
        let exact = if path == "/" { "" } else { path };
        if let Some(v) = self.exact.get(exact) {
            return Some(v);
        }
        let mut base = self.deepest_base(path)?;
        loop {
            if let Some(v) = self.prefixes.get(base) {
                return Some(v);
            }
            // The next shorter base ends where a segment starts: `/a/b` → `/a` → ``.
            base = &base[..base.rfind('/')?];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of `routes` the index picks for `path`, and which a scan by [`Route::score`]
    /// (the router's rule before the index) picks.
    fn both(routes: &[&str], path: &str) -> (Option<String>, Option<String>) {
        let routes: Vec<Route> = routes.iter().map(|r| r.parse().unwrap()).collect();
        let scan = routes
            .iter()
            .filter_map(|r| r.score(path).map(|s| (s, r.to_string())))
            .max_by_key(|(s, _)| *s)
            .map(|(_, r)| r);
        let mut index = Routes::default();
        for r in &routes {
            index.insert(r, r.to_string());
        }
        (index.find(path).cloned(), scan)
    }

    /// HOSTILE: walking back from the whole path hashed each shorter prefix, so a path of
    /// 60,000 `/` cost ~1.8 GB of hashing (seconds of a worker thread, the table's lock held).
    #[test]
    fn a_path_of_many_slashes_is_cut_to_the_deepest_route_before_the_walk() {
        let mut index = Routes::default();
        for r in ["/...", "/api/v1/..."] {
            index.insert(&r.parse().unwrap(), r);
        }
        let slashes = "/".repeat(1_000_000);
        let deep = format!("/api/v1{slashes}");
        assert_eq!(index.deepest_base(&deep), Some("/api/v1"));
        assert_eq!(index.find(&deep), Some(&"/api/v1/..."));
        let other = format!("/q{slashes}");
        assert_eq!(index.deepest_base(&other), Some("/q/"));
        assert_eq!(index.find(&other), Some(&"/..."));
    }

    #[test]
    fn the_index_picks_what_a_scan_by_score_picks() {
        let routes = [
            "/",
            "/...",
            "/api/...",
            "/api",
            "/api/v1/...",
            "/api/v1/users",
            "/hello",
            "/a/b/...",
        ];
        for path in [
            "/",
            "",
            "/api",
            "/api/",
            "/api/v1",
            "/api/v1/",
            "/api/v1/users",
            "/api/v1/users/7",
            "/apiary",
            "/hello",
            "/hello/",
            "/hello/x",
            "/a",
            "/a/b",
            "/a/b/c/d",
            "/a/bc",
            "/z",
        ] {
            let (indexed, scan) = both(&routes, path);
            assert_eq!(indexed, scan, "path {path:?}");
        }
        // Removing routes forgets their depth; the others still route.
        let mut index = Routes::default();
        for r in ["/a/b/c/...", "/a/...", "/x"] {
            index.insert(&r.parse().unwrap(), r);
        }
        index.remove(&"/a/b/c/...".parse().unwrap());
        assert_eq!(index.find("/a/b/c/d"), Some(&"/a/..."));
        index.remove(&"/a/...".parse().unwrap());
        assert_eq!((index.find("/a/b"), index.find("/x")), (None, Some(&"/x")));
        assert!(index.depths.is_empty());
        // Without a catch-all, an unknown path routes nowhere.
        assert_eq!(both(&["/api/...", "/hello"], "/apiary"), (None, None));
        assert_eq!(both(&["/api/...", "/hello"], "/hello/x"), (None, None));
    }
}
