//! The store's resource limiter: memory and table growth past the limits stop the guest with
//! an error we can recognise, instead of failing `memory.grow` quietly.

use wasmtime::ResourceLimiter;

/// Tables may not grow past this many elements: a `table.grow` to 2^32 must not allocate
/// gigabytes of host memory. Large real programs use tens of thousands.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    Table,
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
    /// Where the embedder reads the memory in use (summed over every live store of an app).
    gauge: Option<MemoryGauge>,
}

/// Bytes of linear memory in use by an app's live instances, for the embedder to report.
pub type MemoryGauge = std::sync::Arc<std::sync::atomic::AtomicU64>;

impl Limiter {
    pub(crate) fn new(memory_limit: Option<u64>) -> Self {
        Self {
            memory_limit,
            memory_total: 0,
            gauge: None,
        }
    }

    pub(crate) fn with_gauge(mut self, gauge: Option<MemoryGauge>) -> Self {
        self.gauge = gauge;
        self
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.fetch_sub(self.memory_total, std::sync::atomic::Ordering::Relaxed);
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
        if let Some(g) = &self.gauge {
            use std::sync::atomic::Ordering::Relaxed;
            g.fetch_add(total, Relaxed);
            g.fetch_sub(self.memory_total, Relaxed);
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
