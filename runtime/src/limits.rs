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
}

impl Limiter {
    pub(crate) fn new(memory_limit: Option<u64>) -> Self {
        Self {
            memory_limit,
            memory_total: 0,
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
