//! Work that runs beside a guest (writing compiled code to the cache, starting a tier-up
//! helper) and that the process waits for before it exits, never the guest.

/// Runs `work` on a thread beside the guest; [`finish_cache_writes`] waits for it before exit.
pub(crate) fn beside(name: &str, work: impl FnOnce() + Send + 'static) {
    match std::thread::Builder::new().name(name.into()).spawn(work) {
        Ok(handle) => PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle),
        Err(e) => tracing::warn!(error = %e, thread = name, "cannot start a thread"),
    }
}

static PENDING: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits for compiled code still being written to the cache.
pub fn finish_cache_writes() {
    let pending = std::mem::take(
        &mut *PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for handle in pending {
        let _ = handle.join();
    }
}
