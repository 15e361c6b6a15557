//! What the node tells about its apps: their views for `ps` and `inspect`, the node's overview,
//! events as they happen, metrics and the load samples behind the dashboard's charts.

use crate::state::{self, AppRecord, State};
use crate::{AppView, Event, Node, NodeError, NodeInfo, logs};

/// Events kept for a client that connects late.
const RECENT_EVENTS: usize = 256;

impl Node {
    pub(crate) fn event(&self, app: &str, action: &str, detail: Option<String>) {
        let event = Event {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            app: app.into(),
            action: action.into(),
            detail,
        };
        tracing::info!(
            app,
            action,
            detail = event.detail.as_deref().unwrap_or(""),
            "event"
        );
        let mut recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        let _ = self.0.events.send(event);
    }

    /// The recent events and a receiver for the ones to come.
    pub fn events(&self) -> (Vec<Event>, tokio::sync::broadcast::Receiver<Event>) {
        let recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        (recent.iter().cloned().collect(), self.0.events.subscribe())
    }

    /// Whether the app deployed as `name` at `created` is still there (not removed, nor
    /// replaced by another deploy under its name): a log stream about it ends otherwise.
    pub fn still_deployed(&self, name: &str, created: u64) -> bool {
        matches!(self.0.db.get(name), Ok(Some(r)) if r.created == created)
    }

    pub fn view(&self, name: &str) -> Result<AppView, NodeError> {
        let record = self
            .0
            .db
            .get(name)?
            .filter(|r| r.accepted)
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        let mut spec = record.spec.clone();
        // Variables' values stay with the operator who set them: the API shows their names.
        for (_, value) in &mut spec.env {
            *value = HIDDEN.to_string();
        }
        let buckets = self.buckets(&record).ok();
        Ok(AppView {
            spec: Some(spec),
            buckets,
            ..self.view_of(record)
        })
    }

    fn view_of(&self, r: AppRecord) -> AppView {
        let memory = self
            .0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&r.name)
            .map_or(0, |g| g.load(std::sync::atomic::Ordering::Relaxed));
        let (health, health_error) = match self.health_of(&r.name) {
            Some((word, why)) => (Some(word), why),
            None => (r.spec.health.as_ref().map(|_| "starting".to_string()), None),
        };
        AppView {
            project: r.project.clone(),
            health,
            health_error,
            rollback: r.previous.is_some(),
            requests: self.0.metrics.requests_of(&r.name),
            instances: self.0.router.instances(&r.name).map_or(0, |i| i.made),
            crash_looping: r.status.crash_looping(),
            name: r.name,
            kind: r.kind,
            state: r.status.state,
            desired: r.desired,
            module: r.module,
            source: r.source,
            route: r.route,
            restart: r.restart.to_string(),
            restarts: r.status.restarts,
            created: r.created,
            started: r.status.started,
            finished: r.status.finished,
            exit_cause: r.status.exit_cause,
            exit_code: r.status.exit_code,
            error: r.status.error,
            memory,
            spec: None,
            buckets: None,
        }
    }

    /// Every app (`all`) or those running or restarting, by name.
    pub fn list(&self, all: bool) -> Result<Vec<AppView>, NodeError> {
        self.list_page(all, None, usize::MAX)
    }

    /// Up to `limit` of the apps [`Node::list`] lists, from the first whose name sorts after
    /// `after`.
    pub fn list_page(
        &self,
        all: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AppView>, NodeError> {
        let listed = |r: &AppRecord| {
            r.accepted && (all || matches!(r.status.state, State::Running | State::Restarting))
        };
        Ok(self
            .0
            .db
            .list_after(after, limit, listed)?
            .into_iter()
            .map(|r| self.view_of(r))
            .collect())
    }

    /// The node's version, start time, apps by state, memory in use and requests served.
    pub fn info(&self) -> Result<NodeInfo, NodeError> {
        let mut apps = std::collections::BTreeMap::new();
        let mut records = self.0.db.list()?;
        records.retain(|r| r.accepted);
        for r in &records {
            *apps.entry(r.status.state.as_str().to_string()).or_insert(0) += 1;
        }
        let memory = self.memory_by_app().values().sum();
        let requests = records
            .iter()
            .map(|r| self.0.metrics.requests_of(&r.name))
            .sum();
        Ok(NodeInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started: self.0.started,
            apps,
            memory,
            requests,
            dashboard: self.0.dashboard.get().cloned(),
        })
    }

    pub fn logs(&self) -> &logs::Logs {
        &self.0.logs
    }

    pub fn exists(&self, name: &str) -> Result<bool, NodeError> {
        Ok(self.0.db.get(name)?.is_some())
    }

    pub fn metrics_text(&self) -> Result<String, NodeError> {
        let memory: Vec<(String, u64)> = self.memory_by_app().into_iter().collect();
        let records = self.0.db.list()?;
        let states: Vec<(&str, u64)> = [
            State::Created,
            State::Running,
            State::Restarting,
            State::Exited,
            State::Stopped,
            State::Failed,
        ]
        .into_iter()
        .map(|s| {
            (
                s.as_str(),
                records.iter().filter(|r| r.status.state == s).count() as u64,
            )
        })
        .collect();
        let instances: Vec<_> = records
            .iter()
            .filter_map(|r| Some((r.name.clone(), self.0.router.instances(&r.name)?)))
            .collect();
        let mut text = self.0.metrics.render(&memory, &states, &instances);
        text.push_str(&self.kv_metrics(&records));
        Ok(text)
    }

    /// Linear memory in use by each app's live instances.
    fn memory_by_app(&self) -> std::collections::BTreeMap<String, u64> {
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, g)| (n.clone(), g.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }

    /// Takes this second's sample of every app's load for the charts.
    pub(crate) fn sample(&self) -> Result<(), NodeError> {
        let apps = self.0.db.names()?;
        let memory = self.memory_by_app();
        self.0
            .series
            .sample(state::now_ms(), &apps, &self.0.metrics.totals(), &memory);
        Ok(())
    }
}

/// What the app port tells the node: each request counted for its app.
pub(crate) struct AppEvents(pub(crate) Node);

impl Node {
    /// Where requests are counted: the app port's, and calls between apps.
    pub(crate) fn app_events(&self) -> std::sync::Arc<dyn qyvol_runtime::serve::Events> {
        std::sync::Arc::new(AppEvents(self.clone()))
    }
}

impl qyvol_runtime::serve::Events for AppEvents {
    fn request(&self, e: &qyvol_runtime::serve::AccessEntry<'_>) {
        if let Some(app) = e.app {
            self.0.metrics().request(app, e.status, e.duration);
        }
        tracing::debug!(
            method = e.method,
            path = e.path,
            status = e.status,
            app = e.app.unwrap_or("-"),
            "request"
        );
    }

    fn draining(&self, in_flight: usize) {
        tracing::info!(in_flight, "the app port is draining");
    }
}

const HIDDEN: &str = "<hidden>";
