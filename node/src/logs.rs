//! Per-app logs on disk: every line a guest prints, with its time and stream, appended to
//! `node/logs/<app>.log`; past `max` bytes the file is rotated to `<app>.log.1` (the older one
//! is dropped), so an app never holds more than twice `max` on disk however much it prints.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// A line longer than this is cut into pieces of this size.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Logs {
    dir: PathBuf,
    max: u64,
}

/// One line of an app's output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogLine {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub stream: String,
    pub text: String,
}

impl LogLine {
    fn parse(line: &str) -> Option<Self> {
        let (time, rest) = line.split_once(' ')?;
        let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(Self {
            time: time.into(),
            stream: stream.into(),
            text: text.into(),
        })
    }

    /// Unix milliseconds of `time` (0 if it does not parse).
    pub fn unix_ms(&self) -> u64 {
        humantime::parse_rfc3339(&self.time)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The file an app's lines are appended to, shared by its stdout and stderr collectors.
struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl Sink {
    fn open(path: PathBuf, max: u64) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            max,
        })
    }

    fn write(&mut self, stream: &str, text: &[u8]) {
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let text = String::from_utf8_lossy(text);
        let line = format!("{time} {stream} {}\n", text.trim_end_matches(['\n', '\r']));
        if self.size + line.len() as u64 > self.max && self.size > 0 {
            let _ = std::fs::rename(&self.path, rotated(&self.path));
            match File::options().create(true).append(true).open(&self.path) {
                Ok(f) => {
                    self.file = f;
                    self.size = 0;
                }
                Err(e) => {
                    tracing::warn!(error = %e, path = %self.path.display(), "cannot rotate a log")
                }
            }
        }
        // A full disk loses lines, never the app: the guest's writes go on.
        if self.file.write_all(line.as_bytes()).is_ok() {
            self.size += line.len() as u64;
        }
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// The write ends an app's instances print to, and the threads that collect them.
pub struct Collector {
    pub output: qyvol_runtime::Output,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl Collector {
    /// Waits until every line printed so far is on disk: call after dropping every copy of
    /// `output` (the collectors end when the last write end closes).
    pub fn finish(self) {
        drop(self.output);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Logs {
    pub fn new(dir: PathBuf, max: u64) -> std::io::Result<Self> {
        qyvol_common::create_private_dir(&dir)?;
        Ok(Self { dir, max })
    }

    fn path(&self, app: &str) -> PathBuf {
        self.dir.join(format!("{app}.log"))
    }

    /// Pipes for an app's stdout and stderr, each read by a thread that timestamps its lines
    /// into the app's log.
    pub fn collector(&self, app: &str) -> std::io::Result<Collector> {
        let sink = Arc::new(Mutex::new(Sink::open(self.path(app), self.max)?));
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let mut threads = Vec::new();
        for (read, stream) in [(out_read, "stdout"), (err_read, "stderr")] {
            let sink = sink.clone();
            let read = File::from(read);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("qyvol-log-{stream}"))
                    // A collector needs little stack; a node runs two per app.
                    .stack_size(64 * 1024)
                    .spawn(move || collect(read, stream, &sink))?,
            );
        }
        Ok(Collector {
            output: qyvol_runtime::Output::Files {
                stdout: Arc::new(File::from(out_write)),
                stderr: Arc::new(File::from(err_write)),
            },
            threads,
        })
    }

    /// Appends a line of the node's own about `app` (e.g. why it could not start).
    pub fn note(&self, app: &str, text: &str) {
        if let Ok(mut sink) = Sink::open(self.path(app), self.max) {
            sink.write("node", text.as_bytes());
        }
    }

    /// The last `tail` lines (all when `None`) written at or after `since` (Unix ms), and a
    /// cursor where they end, to follow the log from exactly there.
    pub fn read(
        &self,
        app: &str,
        tail: Option<usize>,
        since: Option<u64>,
    ) -> (Vec<LogLine>, Cursor) {
        // Only the lines asked for are kept while the files are read: a tail of a log of
        // megabytes holds its tail, not the megabytes.
        let mut lines = std::collections::VecDeque::new();
        let mut keep = |line: LogLine| {
            if since.is_some_and(|s| line.unix_ms() < s) {
                return;
            }
            if tail == Some(lines.len()) && lines.pop_front().is_none() {
                return;
            }
            lines.push_back(line);
        };
        if let Ok(f) = File::open(rotated(&self.path(app))) {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| LogLine::parse(&l))
                .for_each(&mut keep);
        }
        // The current file through the cursor that will follow it, so no line is read twice
        // or missed between the two.
        let mut cursor = Cursor {
            path: self.path(app),
            inode: None,
            offset: 0,
        };
        loop {
            let more = cursor.poll();
            if more.is_empty() {
                break;
            }
            more.into_iter().for_each(&mut keep);
        }
        (lines.into(), cursor)
    }

    /// [`Logs::read`] on a blocking thread, for async callers (the API, the dashboard).
    pub async fn read_off_thread(
        &self,
        app: &str,
        tail: Option<usize>,
        since: Option<u64>,
    ) -> Option<(Vec<LogLine>, Cursor)> {
        let (logs, app) = (self.clone(), app.to_string());
        tokio::task::spawn_blocking(move || logs.read(&app, tail, since))
            .await
            .ok()
    }

    pub fn remove(&self, app: &str) {
        let _ = std::fs::remove_file(self.path(app));
        let _ = std::fs::remove_file(rotated(&self.path(app)));
    }
}

/// A position in an app's log, for following it.
#[derive(Debug)]
pub struct Cursor {
    path: PathBuf,
    inode: Option<u64>,
    offset: u64,
}

impl Cursor {
    /// [`Cursor::poll`] on a blocking thread, for async callers: the cursor back, and the lines.
    pub async fn poll_off_thread(mut self) -> Option<(Self, Vec<LogLine>)> {
        tokio::task::spawn_blocking(move || {
            let lines = self.poll();
            (self, lines)
        })
        .await
        .ok()
    }

    /// The complete lines appended since the last call (following a rotation to the new file).
    pub fn poll(&mut self) -> Vec<LogLine> {
        use std::os::unix::fs::MetadataExt;
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        let Ok(meta) = f.metadata() else {
            return Vec::new();
        };
        if Some(meta.ino()) != self.inode || meta.len() < self.offset {
            // Rotated: the rest of the old file is in `.1`; read the new one from its start.
            self.inode = Some(meta.ino());
            self.offset = 0;
        }
        if meta.len() == self.offset || f.seek(std::io::SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.take(8 * 1024 * 1024).read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        // Only whole lines; a line being written is read next time.
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        self.offset += end as u64 + 1;
        String::from_utf8_lossy(&buf[..end])
            .lines()
            .filter_map(LogLine::parse)
            .collect()
    }
}

fn collect(mut read: File, stream: &str, sink: &Mutex<Sink>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8 * 1024];
    let write = |line: &[u8]| {
        sink.lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(stream, line);
    };
    loop {
        let n = match read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            write(&pending[..i]);
            pending.drain(..=i);
        }
        while pending.len() >= MAX_LINE {
            write(&pending[..MAX_LINE]);
            pending.drain(..MAX_LINE);
        }
    }
    if !pending.is_empty() {
        write(&pending);
    }
}
