//! Descriptors: how many a guest may hold, and how many the process may open.
//!
//! Every file, folder, socket and stream a guest opens is an entry in its store's resource
//! table, most of them backed by a host descriptor. Left alone, one guest opening a file in a
//! loop takes every descriptor of the process, and `qyvol node` stops accepting its API, its
//! dashboard and every other app's requests. So each instance may hold [`GUEST_HANDLES`] at
//! once, and the process raises its own soft limit to the hard one at start, which leaves the
//! node's own work room beside its guests.
//!
//! A preview 1 guest gets `EMFILE` from `path_open` once it holds all but [`HEADROOM`] of them,
//! as a process past its limit would, and can still sleep, poll and write (which take handles
//! too); a WASI 0.2 guest that fills its table is stopped with an error, because
//! wasmtime-wasi 49 turns a full table into a trap and 0.2's `error-code` has no "too many open
//! files".

use wasmtime::component::ResourceTableError;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p1::WasiP1Ctx;

/// Handles (open files and folders, sockets, streams, pollables) one instance may hold at
/// once: macOS's default soft limit on a process's descriptors.
pub const GUEST_HANDLES: usize = 256;

/// Raises the soft limit on open descriptors to the hard one (most Linux systems start
/// processes at 1,024 while allowing far more), and returns the limit now in force.
pub fn raise_open_files() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let Some(current) = limit.current else {
        return Ok(u64::MAX);
    };
    if limit.maximum.is_none_or(|max| max > current) {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)?;
    }
    Ok(limit.current.unwrap_or(u64::MAX))
}

/// The soft limit on open descriptors now in force.
pub fn open_files_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// `wanted` connections, or fewer when the descriptor limit would not leave room beside them
/// for guests' files, outgoing connections and the process's own work: a server keeps at most
/// a quarter of its descriptors for connections.
pub fn connections_within_budget(wanted: u32) -> u32 {
    let budget = u32::try_from(open_files_limit() / 4).unwrap_or(u32::MAX);
    let allowed = wanted.min(budget.max(16));
    if allowed < wanted {
        tracing::info!(
            wanted,
            allowed,
            "fewer connections than asked, to fit the limit on open descriptors"
        );
    }
    allowed
}

/// Lets a repeated warning through once every ten seconds, counting the ones held back.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<std::time::Instant>,
    held: u64,
}

impl Throttle {
    /// `Some(times it happened since the last one let through)` when it is time to say it.
    pub fn due(&mut self) -> Option<u64> {
        self.due_at(std::time::Instant::now())
    }

    fn due_at(&mut self, now: std::time::Instant) -> Option<u64> {
        self.held += 1;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(10))
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// A preview 1 context whose resource table holds at most [`GUEST_HANDLES`] entries.
pub(crate) fn build_p1(b: &mut wasmtime_wasi::WasiCtxBuilder) -> WasiP1Ctx {
    let mut ctx = b.build_p1();
    ctx.ctx().table.set_max_capacity(GUEST_HANDLES);
    ctx
}

/// The WASI 0.2 store's table, capped the same way.
pub(crate) fn table() -> wasmtime::component::ResourceTable {
    let mut table = wasmtime::component::ResourceTable::new();
    table.set_max_capacity(GUEST_HANDLES);
    table
}

/// Handles a preview 1 guest keeps for what it does besides opening files.
const HEADROOM: usize = 32;

/// The errno preview 1 gives for "too many open files".
const EMFILE: i32 = wasmtime_wasi::p1::types::Errno::Mfile as i32;

/// Replaces `path_open` in a linker that has all of preview 1 with one that answers `EMFILE`
/// past `GUEST_HANDLES - HEADROOM` handles and otherwise delegates to wasmtime-wasi's (and
/// answers `EMFILE` too where that would trap on a full table).
pub(crate) fn link_p1_open<T: Send + 'static>(
    linker: &mut Linker<T>,
    wasi: fn(&mut T) -> &mut WasiP1Ctx,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
    type Args = (i32, i32, i32, i32, i32, i64, i64, i32, i32);
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "path_open",
        move |mut caller: Caller<'_, T>, (a0, a1, a2, a3, a4, a5, a6, a7, a8): Args| {
            Box::new(async move {
                let fuel = caller.as_context_mut().hostcall_fuel();
                let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                    wasmtime::bail!("the module exports no memory for `path_open` to use");
                };
                let (bytes, data) = memory.data_and_store_mut(&mut caller);
                let ctx = wasi(data);
                if ctx.ctx().table.iter_mut().count() >= GUEST_HANDLES - HEADROOM {
                    return Ok(EMFILE);
                }
                ctx.set_hostcall_fuel(fuel);
                let mut mem = wiggle::GuestMemory::Unshared(bytes);
                match p1::path_open(ctx, &mut mem, a0, a1, a2, a3, a4, a5, a6, a7, a8).await {
                    Err(e) if e.downcast_ref::<ResourceTableError>().is_some() => Ok(EMFILE),
                    other => other,
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An accept loop failing every 50 ms for 20 s says so three times: at once, after 10 s
    /// (with the 200 held back), after 20 s.
    #[test]
    fn a_repeated_warning_is_let_through_once_every_ten_seconds_with_its_count() {
        let start = std::time::Instant::now();
        let mut throttle = Throttle::default();
        let said: Vec<(u64, u64)> = (0..=400u64)
            .filter_map(|i| {
                let at = start + std::time::Duration::from_millis(50 * i);
                throttle.due_at(at).map(|times| (i * 50, times))
            })
            .collect();
        assert_eq!(said, [(0, 1), (10_000, 200), (20_000, 200)]);
    }
}
