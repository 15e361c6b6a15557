//! The store's resource limiter: memory and table growth past the limits stop the guest with
//! an error we can recognise, instead of failing `memory.grow` quietly.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Tables may not grow past this many elements: a `table.grow` to 2^32 must not allocate
/// gigabytes of host memory. Large real programs use tens of thousands.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// One instance's linear memory.
    Memory,
    Table,
    /// The memory of all of an app's live instances together.
    AppMemory,
    /// The memory of every guest of the process together (the node's).
    NodeMemory,
}

/// Returned (inside the trap's error) when a guest grows past a limit.
#[derive(Debug, thiserror::Error)]
#[error("{resource:?} limit of {limit} exceeded")]
pub(crate) struct LimitExceeded {
    pub resource: Resource,
    pub limit: u64,
}

#[derive(Debug)]
pub(crate) struct Limiter {
    memory_limit: Option<u64>,
    /// Bytes of linear memory currently allocated across all memories of the store.
    memory_total: u64,
    /// Where the memory is counted with that of the app's other live stores, and the most
    /// they may hold together.
    app: Option<(MemoryGauge, Option<u64>)>,
    /// The same for every guest of the process.
    node: Option<MemoryBudget>,
}

/// Bytes of linear memory in use by an app's live instances, for the embedder to report.
pub type MemoryGauge = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// Memory shared by many apps' instances, and the most they may hold together.
#[derive(Debug, Clone, Default)]
pub struct MemoryBudget {
    pub used: MemoryGauge,
    pub limit: Option<u64>,
}

/// Adds `delta` to `gauge` unless that would pass `limit`.
fn reserve(gauge: &MemoryGauge, delta: u64, limit: Option<u64>) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    gauge
        .fetch_update(Relaxed, Relaxed, |used| {
            let next = used.saturating_add(delta);
            limit.is_none_or(|l| next <= l).then_some(next)
        })
        .is_ok()
}

fn release(gauge: &MemoryGauge, amount: u64) {
    gauge.fetch_sub(amount, std::sync::atomic::Ordering::Relaxed);
}

impl Limiter {
    pub(crate) fn new(memory_limit: Option<u64>) -> Self {
        Self {
            memory_limit,
            memory_total: 0,
            app: None,
            node: None,
        }
    }

    /// Counts this store's memory in the app's gauge, bounded by `app_limit` across the app,
    /// and in `node`'s.
    pub(crate) fn shared(
        mut self,
        gauge: Option<MemoryGauge>,
        app_limit: Option<u64>,
        node: Option<MemoryBudget>,
    ) -> Self {
        self.app = gauge.map(|g| (g, app_limit));
        self.node = node;
        self
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        if let Some((g, _)) = &self.app {
            release(g, self.memory_total);
        }
        if let Some(n) = &self.node {
            release(&n.used, self.memory_total);
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_total
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if let Some(limit) = self.memory_limit
            && total > limit
        {
            {
                return Err(LimitExceeded {
                    resource: Resource::Memory,
                    limit,
                }
                .into());
            }
        }
        // Memory only grows while a store lives; it is all given back when the store drops.
        let delta = total.saturating_sub(self.memory_total);
        if let Some((g, limit)) = &self.app
            && !reserve(g, delta, *limit)
        {
            return Err(LimitExceeded {
                resource: Resource::AppMemory,
                limit: limit.unwrap_or_default(),
            }
            .into());
        }
        if let Some(n) = &self.node
            && !reserve(&n.used, delta, n.limit)
        {
            if let Some((g, _)) = &self.app {
                release(g, delta);
            }
            return Err(LimitExceeded {
                resource: Resource::NodeMemory,
                limit: n.limit.unwrap_or_default(),
            }
            .into());
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(LimitExceeded {
                resource: Resource::Table,
                limit: MAX_TABLE_ELEMENTS as u64,
            }
            .into());
        }
        Ok(true)
    }
}

/// What one run may use; `None` is no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Total bytes of linear memory.
    pub memory: Option<u64>,
    /// Wall-clock time from instantiation to exit.
    pub timeout: Option<Duration>,
    /// Units of fuel (roughly, wasm instructions).
    pub fuel: Option<u64>,
    /// Compilation time: wasmtime does not bound it (compile-time DoS is the embedder's job).
    pub compile: Option<Duration>,
    /// Bytes of linear memory all the instances sharing `RunRequest::memory_gauge` may hold
    /// together (an app's concurrent requests).
    pub memory_total: Option<u64>,
}
