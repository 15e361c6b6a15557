//! Tiered compilation: the first run of a big module runs Winch's code (wasmtime's baseline
//! compiler: quick to compile, slower code) while a detached helper process compiles Cranelift's
//! optimised code into the cache, so every later run maps that code and starts warm.
//!
//! The helper is the running executable again (`qyvol __tier-up …`, see [`HELPER_ARG`]),
//! given the wasm bytes on its standard input as a sealed memfd. It:
//! - keeps nothing of its parent but the memfd: no other file descriptor (a pipe or lock the
//!   caller holds would otherwise stay open until the helper ends), no environment, `/` as its
//!   folder; it leaves the user's session (`setsid`), so closing the terminal or Ctrl-C on the
//!   run does not end it;
//! - runs under `SCHED_IDLE` at nice 19: it takes only cycles no other task wants, so it never
//!   slows the user's command beyond the cores both share;
//! - is bounded: `RLIMIT_CPU` ends a compilation that runs away, `RLIMIT_AS` one that would
//!   take the machine's memory (Cranelift can need gigabytes for a hostile 2 MB module), and
//!   the OOM killer picks it first; a module whose helper died [`MAX_ATTEMPTS`] times is not
//!   tried again (its runs keep Winch's code);
//! - one helper compiles at a time per cache (`tiering/slot.lock`), at most [`QUEUE`] more
//!   wait for their turn (the rest exit: a later run tries again), and one per module
//!   (`tiering/<key>.lock`) decides who does the work when runs race;
//! - checks the bytes against the sha256 it was told, so it only stores code under the digest
//!   of the wasm it compiled;
//! - stores Cranelift's code with the usual seal and removes Winch's.
//!
//! When the helper dies (killed, rebooted), the next run finds Winch's code without a helper
//! holding the module's lock and starts one again.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::artifact::Artifact;
use crate::cache::{Cache, lock_path, open_lock, upgrading};
use crate::engine::{self, EngineConfig, Tier};
use crate::inspect::WasmKind;

/// The first argument that makes the executable a tier-up helper instead of the CLI.
pub const HELPER_ARG: &str = "__tier-up";

/// Modules at least this big start on Winch when the cache has no code for them: below it,
/// Cranelift compiles in well under a second and a helper process is not worth its start.
pub const TIER_MIN_BYTES: u64 = 1024 * 1024;

/// CPU time a helper may spend: several times what Cranelift needs for a 256 MiB module here.
const HELPER_CPU: Duration = Duration::from_secs(30 * 60);

/// Address space a helper may map, per byte of wasm (yosys: 69 MB of wasm, under 2 GB of
/// compiler memory), and its floor and ceiling.
const HELPER_MEMORY_PER_BYTE: u64 = 64;
const HELPER_MEMORY_MIN: u64 = 2 << 30;
const HELPER_MEMORY_MAX: u64 = 16 << 30;

/// Helpers that may wait for the compilation slot.
const QUEUE: usize = 4;

/// Helpers a module gets before it is left on Winch's code.
pub const MAX_ATTEMPTS: u32 = 3;

static HELPER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Declares that this executable runs [`helper_main`] when started with [`HELPER_ARG`] (the
/// `qyvol` binary does, first thing in `main`): until then nothing tiers up, since another
/// embedder's executable would not know the argument.
pub fn enable_helper() {
    HELPER.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn helper_enabled() -> bool {
    HELPER.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether a helper should start for the Winch entry with this fingerprint: none is at work on
/// it and fewer than [`MAX_ATTEMPTS`] died trying.
pub(crate) fn wanted(cache: &Cache, winch_fingerprint: &str, sha256: &str, kind: WasmKind) -> bool {
    let lock = lock_path(cache, winch_fingerprint, sha256, kind);
    !upgrading(cache, winch_fingerprint, sha256, kind)
        && attempts(&lock.with_extension("attempts")) < MAX_ATTEMPTS
}

/// How many helpers a module has had (`tiering/<key>.attempts`).
fn attempts(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Starts a helper that compiles `bytes` (the wasm with sha256 `sha256`) with Cranelift for
/// engines like `config`, unless one already is. Failing to start one only costs the next run
/// Winch's code again.
/// The helper is started beside the guest (copying a big module into the memfd takes a few
/// milliseconds); the run waits for that before it exits, never for the compilation.
/// `winch` is the fingerprint of the Winch engine the run's code came from.
pub(crate) fn start(
    cache: &Cache,
    config: EngineConfig,
    winch: &str,
    kind: WasmKind,
    sha256: &str,
    bytes: Arc<[u8]>,
) {
    let (cache, winch, sha256) = (cache.clone(), winch.to_owned(), sha256.to_owned());
    crate::background::beside("qyvol-tier-up", move || {
        if !wanted(&cache, &winch, &sha256, kind) {
            return;
        }
        if let Err(e) = spawn(&cache, config, kind, &sha256, &bytes) {
            tracing::warn!(error = %e, "cannot start the background compilation; the next run tries again");
        }
    });
}

fn spawn(
    cache: &Cache,
    config: EngineConfig,
    kind: WasmKind,
    sha256: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create(
        "qyvol-tier-up",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut wasm = File::from(fd);
    wasm.write_all(bytes)?;
    wasm.rewind()?;
    rustix::fs::fcntl_add_seals(
        &wasm,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )?;
    // This very executable, even if its file was replaced or removed since it started.
    let mut child = Command::new("/proc/self/exe")
        .arg0("qyvol")
        .arg(HELPER_ARG)
        .arg(cache.dir())
        .arg(cache.max_bytes().to_string())
        .arg(crate::cache::kind_name(kind))
        .arg(sha256)
        .args(config.with(Tier::Cranelift).to_args())
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(wasm))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    tracing::debug!(
        pid = child.id(),
        "compiling with cranelift in the background"
    );
    // A long-lived process (the node) reaps it; a `qyvol run` exits first and leaves it to init.
    let _ = std::thread::Builder::new()
        .name("qyvol-tier-up-wait".into())
        .spawn(move || {
            if let Ok(status) = child.wait()
                && !status.success()
            {
                tracing::warn!(%status, "the background compilation failed; runs keep Winch's code");
            }
        });
    Ok(())
}

/// Why a helper stopped without storing code.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error(
        "usage: {HELPER_ARG} CACHE_DIR MAX_BYTES module|component SHA256 fuel|- epoch|- cranelift < WASM"
    )]
    Usage,
    #[error("the wasm on standard input does not have the sha256 it was given")]
    Digest,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Runtime(#[from] crate::RuntimeError),
}

/// The helper's whole life, from its arguments (after [`HELPER_ARG`]). `Ok` also when there was
/// nothing to do (another helper has the module, or its code is already stored).
pub fn helper_main(args: &[std::ffi::OsString]) -> Result<(), HelperError> {
    // First: nothing of the parent's but the memfd on stdin.
    close_inherited();
    let [dir, max, kind, sha256, fuel, epoch, concurrent, tier] = args else {
        return Err(HelperError::Usage);
    };
    let arg = |a: &std::ffi::OsString| a.to_str().map(str::to_owned).ok_or(HelperError::Usage);
    let max: u64 = arg(max)?.parse().map_err(|_| HelperError::Usage)?;
    let kind = match arg(kind)?.as_str() {
        "module" => WasmKind::CoreModule,
        "component" => WasmKind::Component,
        _ => return Err(HelperError::Usage),
    };
    let sha256 = arg(sha256)?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(HelperError::Usage);
    }
    let config = EngineConfig::parse([&arg(fuel)?, &arg(epoch)?, &arg(concurrent)?, &arg(tier)?])
        .filter(|c| c.tier == Tier::Cranelift)
        .ok_or(HelperError::Usage)?;
    detach(stdin_len());
    let cache = Cache::new(PathBuf::from(dir), max);
    let winch = engine::fingerprint(&engine::new(config.with(Tier::Winch))?);
    let lock = lock_path(&cache, &winch, &sha256, kind);
    let tiering = lock.parent().unwrap_or(Path::new(".")).to_path_buf();
    qyvol_common::create_private_dir(&tiering)?;
    let mine = open_lock(&lock, true)?;
    if mine.try_lock().is_err() {
        return Ok(()); // another helper has this module
    }
    // A helper that dies (the memory or CPU limit, the OOM killer) cannot say so: each one
    // counts itself first, and a module past the limit stays on Winch's code.
    let tries = lock.with_extension("attempts");
    let tried = attempts(&tries);
    if tried >= MAX_ATTEMPTS {
        return Ok(());
    }
    crate::cache::write_atomic(&tries, (tried + 1).to_string().as_bytes())?;
    // A place in the queue, or leave it to a later run.
    let mut queued = None;
    for i in 0..QUEUE {
        let place = open_lock(&tiering.join(format!("queue-{i}.lock")), true)?;
        if place.try_lock().is_ok() {
            queued = Some(place);
            break;
        }
    }
    if queued.is_none() {
        crate::cache::write_atomic(&tries, tried.to_string().as_bytes())?;
        return Ok(());
    }
    // One compilation at a time per cache: Cranelift already uses every core.
    let slot = open_lock(&tiering.join("slot.lock"), true)?;
    slot.lock()?;
    drop(queued);
    let engine = engine::new(config)?;
    let fingerprint = engine::fingerprint(&engine);
    if cache.contains(&fingerprint, &sha256, kind) {
        cache.remove_tier(&winch, &sha256, kind, Tier::Winch);
        return Ok(());
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(crate::DEFAULT_MAX_MODULE_SIZE + 1)
        .read_to_end(&mut bytes)?;
    if crate::inspect::sha256_hex(&bytes) != sha256 {
        return Err(HelperError::Digest);
    }
    fn store<A: Artifact>(
        engine: &wasmtime::Engine,
        bytes: &[u8],
        put: impl FnOnce(&[u8]) -> std::io::Result<std::path::PathBuf>,
    ) -> Result<(), HelperError> {
        let compiled = A::compile(engine, bytes).map_err(crate::RuntimeError::engine)?;
        put(compiled.image())?;
        Ok(())
    }
    let put = |image: &[u8]| cache.put(&fingerprint, &sha256, kind, Tier::Cranelift, image);
    match kind {
        WasmKind::CoreModule => store::<wasmtime::Module>(&engine, &bytes, put)?,
        WasmKind::Component => store::<wasmtime::component::Component>(&engine, &bytes, put)?,
    }
    cache.remove_tier(&winch, &sha256, kind, Tier::Winch);
    let _ = std::fs::remove_file(&tries);
    let _ = std::fs::remove_file(&lock);
    Ok(())
}

/// The size of the memfd the helper was given (0 if stdin is not a file).
fn stdin_len() -> u64 {
    use std::os::fd::AsFd;
    rustix::fs::fstat(std::io::stdin().as_fd()).map_or(0, |s| u64::try_from(s.st_size).unwrap_or(0))
}

/// Out of the user's session and behind every other task on the CPU, with bounded CPU time
/// and memory (for a module of `wasm_size` bytes), first in line for the OOM killer.
fn detach(wasm_size: u64) {
    use rustix::process::{Resource, Rlimit};
    let _ = rustix::process::setsid();
    let _ = rustix::process::setpriority_process(None, 19);
    let secs = HELPER_CPU.as_secs();
    let _ = rustix::process::setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(secs),
            maximum: Some(secs + 10),
        },
    );
    let memory = wasm_size
        .saturating_mul(HELPER_MEMORY_PER_BYTE)
        .clamp(HELPER_MEMORY_MIN, HELPER_MEMORY_MAX);
    let _ = rustix::process::setrlimit(
        Resource::As,
        Rlimit {
            current: Some(memory),
            maximum: Some(memory),
        },
    );
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    idle_scheduling();
}

#[expect(
    unsafe_code,
    reason = "close_range has no safe wrapper in rustix or std"
)]
fn close_inherited() {
    // SAFETY: nothing in this process has opened a descriptor above 2 yet (the helper starts
    // here, before any file, thread or engine), so no owner is left holding a closed fd.
    unsafe {
        libc::close_range(3, libc::c_uint::MAX, 0);
    }
}

#[expect(
    unsafe_code,
    reason = "sched_setscheduler has no safe wrapper in rustix or std"
)]
fn idle_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is this thread (the only one yet), `param` is a valid sched_param, and
    // SCHED_IDLE takes priority 0; a failure leaves the nice level above in place.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}
