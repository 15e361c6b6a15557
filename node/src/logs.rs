//! Per-app logs on disk: every line a guest prints, with its time and stream, appended to
//! `node/logs/<app>.log`; past `max` bytes the file is rotated to `<app>.log.1` (the older one
//! is dropped), so an app never holds more than twice `max` on disk however much it prints.
//! The lines come in process from the runtime ([`qyvol_runtime::output`]), and the file is open
//! only while an instance of the app is printing: an idle app holds no descriptor and no thread.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use qyvol_runtime::output::{LineSink, Stream};
use serde::{Deserialize, Serialize};

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

/// The open file an app's lines are appended to.
struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl Sink {
    fn open(path: PathBuf, max: u64) -> std::io::Result<Self> {
        let file = open_log(&path)?;
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
            match open_log(&self.path) {
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

/// Opens a log to append to, never through a symlink planted in its place (the log is opened
/// again whenever an app starts printing, so a link could be planted at any time).
fn open_log(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .create(true)
        .append(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// An app's log as its instances' output: the file is open while at least one prints.
struct AppLog {
    path: PathBuf,
    max: u64,
    state: Mutex<Printing>,
}

#[derive(Default)]
struct Printing {
    instances: usize,
    sink: Option<Sink>,
}

impl LineSink for AppLog {
    fn begin(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .instances += 1;
    }

    fn line(&self, stream: Stream, text: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.sink.is_none() {
            match Sink::open(self.path.clone(), self.max) {
                Ok(s) => state.sink = Some(s),
                // A full disk or no descriptor left loses lines, never the app.
                Err(e) => {
                    return tracing::warn!(error = %e, path = %self.path.display(), "cannot open a log");
                }
            }
        }
        if let Some(sink) = &mut state.sink {
            sink.write(stream.name(), text);
        }
    }

    fn end(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.instances = state.instances.saturating_sub(1);
        if state.instances == 0 {
            state.sink = None;
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

    /// Where `app`'s instances print: its log, written in process. Fails if the log cannot be
    /// opened now (a deploy says so rather than losing every line later).
    pub fn output(&self, app: &str) -> std::io::Result<qyvol_runtime::Output> {
        let path = self.path(app);
        drop(Sink::open(path.clone(), self.max)?);
        Ok(qyvol_runtime::Output::Lines(Arc::new(AppLog {
            path,
            max: self.max,
            state: Mutex::default(),
        })))
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

    /// Removes the logs of every app not in `apps`.
    pub fn remove_all_but(&self, apps: &std::collections::HashSet<&str>) {
        crate::paths::remove_files_where(&self.dir, |file| {
            file.strip_suffix(".log.1")
                .or_else(|| file.strip_suffix(".log"))
                .is_some_and(|app| !apps.contains(app))
        });
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
