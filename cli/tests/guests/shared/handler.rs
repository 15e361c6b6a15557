//! What both test handlers (`http-probe`, `cgi-probe`) do alike, included by each with
//! `#[path]`: reading the query, and a barrier between instances.

use std::time::{Duration, Instant};

/// The value of `key` in a query string (`a=1&b=2`).
pub fn query<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A barrier between instances through a writable folder they all see: each takes the first
/// free slot (a file made with `create_new`, which only one instance can make), then waits
/// until `n` slots are taken, so it is passed only when `n` handlers run at once. Returns the
/// slot, unique to this instance, or how far the barrier got by the deadline.
pub fn barrier(dir: &str, n: usize, within: Duration) -> Result<usize, String> {
    let slot = (0..n)
        .find(|i| std::fs::File::create_new(format!("{dir}/{i}")).is_ok())
        .ok_or_else(|| format!("all {n} slots in {dir} are taken"))?;
    let deadline = Instant::now() + within;
    loop {
        let taken = std::fs::read_dir(dir)
            .map_err(|e| format!("{dir}: {e}"))?
            .count();
        if taken >= n {
            return Ok(slot);
        }
        if Instant::now() >= deadline {
            return Err(format!("only {taken} of {n} reached the barrier"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
