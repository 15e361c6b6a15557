//! The node's counters, rendered in Prometheus' text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request duration histogram's buckets.
pub(crate) const BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// An app's requests so far: how many, and how many took at most each bucket's bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// (app, status) → requests.
    requests: BTreeMap<(String, u16), u64>,
    /// app → (bucket counts, sum of seconds, count).
    durations: BTreeMap<String, ([u64; BUCKETS.len()], f64, u64)>,
    starts: BTreeMap<String, u64>,
    restarts: BTreeMap<String, u64>,
    /// (app, cause) → exits.
    exits: BTreeMap<(String, String), u64>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn request(&self, app: &str, status: u16, took: Duration) {
        self.with(|c| {
            *c.requests.entry((app.into(), status)).or_default() += 1;
            let (buckets, sum, count) = c.durations.entry(app.into()).or_default();
            let secs = took.as_secs_f64();
            for (b, le) in buckets.iter_mut().zip(BUCKETS) {
                if secs <= le {
                    *b += 1;
                }
            }
            *sum += secs;
            *count += 1;
        });
    }

    pub fn started(&self, app: &str) {
        self.with(|c| *c.starts.entry(app.into()).or_default() += 1);
    }

    pub fn restarted(&self, app: &str) {
        self.with(|c| *c.restarts.entry(app.into()).or_default() += 1);
    }

    pub fn exited(&self, app: &str, cause: &str) {
        self.with(|c| *c.exits.entry((app.into(), cause.into())).or_default() += 1);
    }

    /// Forgets a removed app's series.
    pub fn forget(&self, app: &str) {
        self.with(|c| {
            c.requests.retain(|(a, _), _| a != app);
            c.durations.remove(app);
            c.starts.remove(app);
            c.restarts.remove(app);
            c.exits.retain(|(a, _), _| a != app);
        });
    }

    /// Each app's requests so far and their durations (cumulative buckets), for the charts.
    pub fn totals(&self) -> BTreeMap<String, Totals> {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.durations
            .iter()
            .map(|(app, (buckets, _, count))| {
                (
                    app.clone(),
                    Totals {
                        buckets: *buckets,
                        count: *count,
                    },
                )
            })
            .collect()
    }

    /// Total requests answered for `app` (for `ps`).
    pub fn requests_of(&self, app: &str) -> u64 {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // The app's statuses are neighbours in the map: a range, not a scan of every app's.
        c.requests
            .range((app.to_string(), 0)..=(app.to_string(), u16::MAX))
            .map(|(_, n)| n)
            .sum()
    }

    /// The exposition: counters, the histogram, and what is passed in (memory per app, apps
    /// per state, HTTP apps' instances), which the node reads when asked.
    pub fn render(
        &self,
        memory: &[(String, u64)],
        states: &[(&str, u64)],
        instances: &[(String, qyvol_runtime::serve::Instances)],
    ) -> String {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut section = |name: &str, kind: &str, help: &str, lines: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            out.push_str(&lines);
        };
        section(
            "qyvol_requests_total",
            "counter",
            "HTTP requests answered on the app port, by app and status.",
            c.requests
                .iter()
                .map(|((app, status), n)| {
                    format!("qyvol_requests_total{{app=\"{app}\",status=\"{status}\"}} {n}\n")
                })
                .collect(),
        );
        let mut lines = String::new();
        for (app, (buckets, sum, count)) in &c.durations {
            for (b, le) in buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    lines,
                    "qyvol_request_duration_seconds_bucket{{app=\"{app}\",le=\"{le}\"}} {b}"
                );
            }
            let _ = writeln!(
                lines,
                "qyvol_request_duration_seconds_bucket{{app=\"{app}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                lines,
                "qyvol_request_duration_seconds_sum{{app=\"{app}\"}} {sum}"
            );
            let _ = writeln!(
                lines,
                "qyvol_request_duration_seconds_count{{app=\"{app}\"}} {count}"
            );
        }
        section(
            "qyvol_request_duration_seconds",
            "histogram",
            "Time to a response's headers on the app port.",
            lines,
        );
        let per_app = |m: &BTreeMap<String, u64>, name: &str| {
            m.iter()
                .map(|(app, n)| format!("{name}{{app=\"{app}\"}} {n}\n"))
                .collect::<String>()
        };
        section(
            "qyvol_instance_starts_total",
            "counter",
            "Instances of command apps started.",
            per_app(&c.starts, "qyvol_instance_starts_total"),
        );
        section(
            "qyvol_restarts_total",
            "counter",
            "Restarts made by restart policies.",
            per_app(&c.restarts, "qyvol_restarts_total"),
        );
        section(
            "qyvol_exits_total",
            "counter",
            "Instances of command apps that ended, by cause.",
            c.exits
                .iter()
                .map(|((app, cause), n)| {
                    format!("qyvol_exits_total{{app=\"{app}\",cause=\"{cause}\"}} {n}\n")
                })
                .collect(),
        );
        section(
            "qyvol_memory_bytes",
            "gauge",
            "Linear memory in use by an app's live instances.",
            memory
                .iter()
                .map(|(app, n)| format!("qyvol_memory_bytes{{app=\"{app}\"}} {n}\n"))
                .collect(),
        );
        section(
            "qyvol_http_instances_total",
            "counter",
            "Instances made for an HTTP app's requests (one per request unless a WASI 0.3 app reuses them).",
            instances
                .iter()
                .map(|(app, i)| format!("qyvol_http_instances_total{{app=\"{app}\"}} {}\n", i.made))
                .collect(),
        );
        section(
            "qyvol_http_instances",
            "gauge",
            "Instances of an HTTP app alive now (answering, finishing a response, or waiting for reuse).",
            instances
                .iter()
                .map(|(app, i)| format!("qyvol_http_instances{{app=\"{app}\"}} {}\n", i.alive))
                .collect(),
        );
        section(
            "qyvol_apps",
            "gauge",
            "Deployed apps by state.",
            states
                .iter()
                .map(|(state, n)| format!("qyvol_apps{{state=\"{state}\"}} {n}\n"))
                .collect(),
        );
        out
    }
}
