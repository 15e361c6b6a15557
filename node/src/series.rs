//! The last minutes of each app's load, sampled once a second from the node's counters, for
//! the dashboard's charts: requests per second, latency percentiles, memory in use. Kept in
//! memory only (like `docker stats`); a restarted node starts with empty charts. An app that
//! has been quiet (no request, no memory in use) for all of the kept minutes keeps no samples: a
//! node of thousands of idle apps would otherwise hold five minutes of zeros for each.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::metrics::{BUCKETS, Totals};

/// Samples kept per series: five minutes at one a second.
pub const KEEP: usize = 300;

/// One second of one app (or of the whole node).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Unix milliseconds at the end of the second.
    pub time: u64,
    pub requests_per_sec: f64,
    /// Latency percentiles in milliseconds, `None` when no request ended in that second.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub memory: u64,
}

#[derive(Debug, Default)]
pub struct Series {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The counters at the previous sample, to take differences from.
    last: BTreeMap<String, Totals>,
    last_time: u64,
    apps: BTreeMap<String, Ring>,
    node: VecDeque<Sample>,
}

/// An app's samples, and how many of the newest are quiet.
#[derive(Debug, Default)]
struct Ring {
    samples: VecDeque<Sample>,
    quiet: usize,
}

impl Sample {
    /// No request ended and no memory was in use.
    fn is_quiet(&self) -> bool {
        self.requests_per_sec == 0.0 && self.p50.is_none() && self.memory == 0
    }
}

fn push(ring: &mut VecDeque<Sample>, s: Sample) {
    if ring.len() == KEEP {
        ring.pop_front();
    }
    ring.push_back(s);
}

impl Series {
    /// Records one sample per app from the counters now (`totals`) and the memory in use.
    /// `apps` is every deployed app: one that has gone is forgotten.
    pub fn sample(
        &self,
        now: u64,
        apps: &[String],
        totals: &BTreeMap<String, Totals>,
        memory: &BTreeMap<String, u64>,
    ) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let secs = if s.last_time == 0 {
            1.0
        } else {
            (now.saturating_sub(s.last_time) as f64 / 1000.0).max(0.001)
        };
        let deployed: std::collections::HashSet<&str> = apps.iter().map(String::as_str).collect();
        s.apps.retain(|name, _| deployed.contains(name.as_str()));
        s.last.retain(|name, _| deployed.contains(name.as_str()));
        let mut all = Totals::default();
        let mut all_before = Totals::default();
        let mut all_memory = 0;
        for name in apps {
            let now_t = totals.get(name).cloned().unwrap_or_default();
            let before = s.last.get(name).cloned().unwrap_or_default();
            // A removed and redeployed app starts its counters again from zero.
            let before = if now_t.count < before.count {
                Totals::default()
            } else {
                before
            };
            let mem = memory.get(name).copied().unwrap_or(0);
            let sample = between(&before, &now_t, secs, now, mem);
            all.add(&now_t);
            all_before.add(&before);
            all_memory += mem;
            if sample.is_quiet() {
                if let Some(ring) = s.apps.get_mut(name) {
                    push(&mut ring.samples, sample);
                    ring.quiet += 1;
                    if ring.quiet >= KEEP {
                        s.apps.remove(name);
                    }
                }
            } else {
                let ring = s.apps.entry(name.clone()).or_default();
                push(&mut ring.samples, sample);
                ring.quiet = 0;
            }
            // An app that has served no request (or no longer has counters: removed and deployed
            // again) has nothing to take a difference from; an entry of its earlier counters
            // would be one, wrongly, once the new ones pass them.
            if now_t.count > 0 {
                s.last.insert(name.clone(), now_t);
            } else {
                s.last.remove(name);
            }
        }
        let node = between(&all_before, &all, secs, now, all_memory);
        push(&mut s.node, node);
        s.last_time = now;
    }

    /// An app's samples, oldest first.
    pub fn of(&self, app: &str) -> Vec<Sample> {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.apps
            .get(app)
            .map(|r| r.samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The whole node's samples, oldest first.
    pub fn node(&self) -> Vec<Sample> {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.node.iter().copied().collect()
    }
}

/// The sample for the second between two readings of the counters.
fn between(before: &Totals, now: &Totals, secs: f64, time: u64, memory: u64) -> Sample {
    let count = now.count.saturating_sub(before.count);
    let mut buckets = [0u64; BUCKETS.len()];
    for (i, b) in buckets.iter_mut().enumerate() {
        *b = now.buckets[i].saturating_sub(before.buckets[i]);
    }
    Sample {
        time,
        requests_per_sec: count as f64 / secs,
        p50: quantile(0.50, &buckets, count),
        p95: quantile(0.95, &buckets, count),
        p99: quantile(0.99, &buckets, count),
        memory,
    }
}

/// The `q` quantile in milliseconds of a cumulative histogram of `count` observations,
/// interpolated within its bucket as Prometheus' `histogram_quantile` does.
pub fn quantile(q: f64, cumulative: &[u64; BUCKETS.len()], count: u64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for (i, &le) in BUCKETS.iter().enumerate() {
        let c = cumulative[i];
        if c as f64 >= rank {
            let inside = (c - below) as f64;
            let within = if inside == 0.0 {
                1.0
            } else {
                (rank - below as f64) / inside
            };
            return Some((lower + (le - lower) * within) * 1000.0);
        }
        lower = le;
        below = c;
    }
    // Beyond the last bound: all that can be said is "at least".
    Some(BUCKETS[BUCKETS.len() - 1] * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket_that_holds_the_rank() {
        // 100 requests: 50 under 1 ms, 50 between 1 and 2.5 ms.
        let mut c = [100u64; BUCKETS.len()];
        c[0] = 50;
        assert_eq!(quantile(0.5, &c, 100), Some(1.0));
        let p99 = quantile(0.99, &c, 100).expect("p99");
        assert!((p99 - 2.47).abs() < 0.01, "{p99}");
        assert_eq!(quantile(0.5, &[0; BUCKETS.len()], 0), None);
    }

    #[test]
    fn a_second_of_requests_is_their_difference_and_gone_apps_are_forgotten() {
        let series = Series::default();
        let apps = vec!["a".to_string()];
        let mut totals = BTreeMap::new();
        totals.insert("a".to_string(), Totals::default());
        series.sample(1000, &apps, &totals, &BTreeMap::new());
        let mut t = Totals {
            count: 30,
            ..Totals::default()
        };
        t.buckets = [30; BUCKETS.len()];
        totals.insert("a".to_string(), t);
        let memory = BTreeMap::from([("a".to_string(), 65536)]);
        series.sample(3000, &apps, &totals, &memory);
        let last = *series.of("a").last().expect("a sample");
        assert_eq!(last.requests_per_sec, 15.0);
        assert_eq!(last.memory, 65536);
        assert_eq!(series.node().last().expect("node").requests_per_sec, 15.0);
        series.sample(4000, &[], &totals, &memory);
        assert!(series.of("a").is_empty());
    }

    #[test]
    fn an_app_deployed_again_counts_its_new_requests_from_zero() {
        let series = Series::default();
        let apps = vec!["a".to_string()];
        let counted = |count| {
            BTreeMap::from([(
                "a".to_string(),
                Totals {
                    count,
                    buckets: [count; BUCKETS.len()],
                },
            )])
        };
        series.sample(1000, &apps, &counted(10), &BTreeMap::new());
        // Removed and deployed again: its counters start from nothing...
        series.sample(2000, &apps, &BTreeMap::new(), &BTreeMap::new());
        // ...and its 12 new requests in the next second are 12, not 12 − 10.
        series.sample(3000, &apps, &counted(12), &BTreeMap::new());
        assert_eq!(
            series.of("a").last().expect("a sample").requests_per_sec,
            12.0
        );
    }

    #[test]
    fn an_app_keeps_no_samples_while_it_has_been_quiet_for_all_the_kept_minutes() {
        let series = Series::default();
        let apps = vec!["idle".to_string(), "busy".to_string()];
        let mut totals = BTreeMap::new();
        let quiet = BTreeMap::new();
        series.sample(1000, &apps, &totals, &quiet);
        assert!(series.of("idle").is_empty(), "never active: no samples");
        totals.insert(
            "busy".to_string(),
            Totals {
                count: 5,
                buckets: [5; BUCKETS.len()],
            },
        );
        series.sample(2000, &apps, &totals, &quiet);
        for i in 0..KEEP - 1 {
            series.sample(3000 + 1000 * i as u64, &apps, &totals, &quiet);
        }
        // The busy second and the quiet ones after it, up to the kept minutes.
        let kept = series.of("busy");
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].requests_per_sec, 5.0);
        assert!(kept[1..].iter().all(|s| s.requests_per_sec == 0.0));
        series.sample(3000 + 1000 * KEEP as u64, &apps, &totals, &quiet);
        assert!(
            series.of("busy").is_empty(),
            "quiet for all of them: dropped"
        );
        assert!(series.of("idle").is_empty());
    }
}
