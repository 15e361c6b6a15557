//! Health checks of HTTP apps (Docker's HEALTHCHECK, for an HTTP path): every app with one is
//! sent `GET path` in process at its interval; a 2xx is healthy, anything else (or no answer)
//! a failure, and three failures in a row unhealthy. `ps` and the dashboard show it; an
//! unhealthy app whose restart policy restarts (`always`, `unless-stopped`, `on-failure`) is
//! restarted, as Docker's policies act on a dead container.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::state::{Desired, RestartPolicy, State};
use crate::{Node, NodeError};

/// Failures in a row that make an app unhealthy.
const FAILURES: u32 = 3;
/// How long one probe may take.
pub(crate) const PROBE_TIME: Duration = Duration::from_secs(5);

/// What the checks last saw of an app.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    failures: u32,
    /// `None` until the first probe answers or fails.
    healthy: Option<bool>,
    last: Option<Instant>,
    /// Why the last probe failed.
    why: Option<String>,
    /// Restarts made because the app was unhealthy (its policy's maximum applies).
    restarts: u32,
    /// A check of it is running.
    busy: bool,
}

impl Health {
    /// `starting`, `healthy` or `unhealthy`, as `ps` shows it.
    pub(crate) fn word(&self) -> &'static str {
        match self.healthy {
            None => "starting",
            Some(true) => "healthy",
            Some(false) => "unhealthy",
        }
    }
}

impl Node {
    /// `name`'s health, when it has a check.
    pub(crate) fn health_of(&self, name: &str) -> Option<(String, Option<String>)> {
        let all = self.0.health.lock().unwrap_or_else(|p| p.into_inner());
        all.get(name).map(|h| (h.word().to_string(), h.why.clone()))
    }

    /// Probes each running HTTP app whose check is due; called every second.
    pub(crate) async fn check_health(&self) -> Result<(), NodeError> {
        let now = Instant::now();
        let due: Vec<_> = self
            .0
            .db
            .list()?
            .into_iter()
            .filter(|r| {
                r.accepted && r.status.state == State::Running && r.desired == Desired::Running
            })
            .filter_map(|r| {
                let spec = r.spec.health.clone()?;
                let mut all = self.0.health.lock().unwrap_or_else(|p| p.into_inner());
                let h = all.entry(r.name.clone()).or_default();
                let due = !h.busy
                    && h.last.is_none_or(|l| {
                        now.duration_since(l) >= Duration::from_millis(spec.interval_ms)
                    });
                if due {
                    h.busy = true;
                }
                due.then_some((r, spec))
            })
            .collect();
        // Each app's check in its own task: a slow one delays no other app's (nor the node's
        // once-a-second work).
        for (record, spec) in due {
            let node = self.clone();
            tokio::spawn(async move {
                let name = record.name.clone();
                node.probe_one(record, spec, now).await;
                let mut all = node.0.health.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(h) = all.get_mut(&name) {
                    h.busy = false;
                }
            });
        }
        Ok(())
    }

    /// One check of `record`'s app, and what follows from it.
    async fn probe_one(
        &self,
        record: crate::state::AppRecord,
        spec: crate::state::HealthSpec,
        now: Instant,
    ) {
        let answer =
            tokio::time::timeout(PROBE_TIME, self.0.router.probe(&record.name, &spec.path)).await;
        let failed = match answer {
            Ok(Ok(status)) if (200..300).contains(&status) => None,
            Ok(Ok(status)) => Some(format!("`GET {}` answered {status}", spec.path)),
            Ok(Err(why)) => Some(format!("`GET {}` failed: {why}", spec.path)),
            Err(_) => Some(format!(
                "`GET {}` took over {} s",
                spec.path,
                PROBE_TIME.as_secs()
            )),
        };
        let unhealthy_now = {
            let mut all = self.0.health.lock().unwrap_or_else(|p| p.into_inner());
            let h = all.entry(record.name.clone()).or_default();
            h.last = Some(now);
            let was = h.healthy;
            match &failed {
                None => {
                    h.failures = 0;
                    h.healthy = Some(true);
                    h.why = None;
                }
                Some(why) => {
                    h.failures += 1;
                    h.why = Some(why.clone());
                    if h.failures >= FAILURES {
                        h.healthy = Some(false);
                    }
                }
            }
            h.healthy == Some(false) && was != Some(false)
        };
        if unhealthy_now {
            let why = failed.unwrap_or_default();
            self.0.logs.note(&record.name, &format!("unhealthy: {why}"));
            self.event(&record.name, "unhealthy", Some(why));
            let restarts = {
                let all = self.0.health.lock().unwrap_or_else(|p| p.into_inner());
                all.get(&record.name).map_or(0, |h| h.restarts)
            };
            let allowed = match record.restart {
                RestartPolicy::No => false,
                RestartPolicy::OnFailure { max } => max.is_none_or(|m| restarts < m),
                RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            };
            if allowed {
                // Waits as a crashed command's restart does: longer after each.
                let wait =
                    Duration::from_millis(100 << restarts.min(9)).min(Duration::from_secs(60));
                tokio::time::sleep(wait).await;
                {
                    let mut all = self.0.health.lock().unwrap_or_else(|p| p.into_inner());
                    let h = all.entry(record.name.clone()).or_default();
                    *h = Health {
                        restarts: restarts + 1,
                        ..Health::default()
                    };
                }
                // Counted like a policy's restart of a command (`ps`'s RESTARTS).
                let lock = self.name_lock(&record.name);
                let _held = lock.lock().await;
                self.halt(&record.name).await;
                if let Ok(Some(r)) = self.0.db.update(&record.name, |r| r.status.restarts += 1) {
                    let _ = self.start_record(r, false).await;
                }
            }
        }
    }

    /// Forgets what the checks saw of `name` (removed, or its check changed).
    pub(crate) fn forget_health(&self, name: &str) {
        self.0
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

/// The health of every app, for [`crate::Inner`].
pub(crate) type HealthMap = std::sync::Mutex<HashMap<String, Health>>;
