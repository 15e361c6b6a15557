//! A guest's output as lines, handed to the embedder in process: no pipe, no thread and no
//! descriptor per app (a node keeps thousands of apps; each used to hold two pipes and two
//! reader threads). Each instance frames its own lines, so two instances of one app printing at
//! once never splice half-lines together, and a line the guest leaves unfinished is handed over
//! when the instance ends.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A line longer than this is handed over in pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// Which of a guest's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Where an embedder takes a guest's lines (a node: the app's log).
///
/// For each instance that prints, `begin` comes before its first line and `end` after its last:
/// a sink may hold a file open only while some instance is printing. Calls come from the
/// guest's own thread, inside its write: a sink must not block for long.
pub trait LineSink: Send + Sync + 'static {
    fn begin(&self) {}
    /// One line, without its newline (at most [`MAX_LINE`] bytes; not necessarily UTF-8).
    fn line(&self, stream: Stream, text: &[u8]);
    fn end(&self) {}
}

/// One instance's output: the lines it has not finished, per stream.
struct Instance {
    sink: Arc<dyn LineSink>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    begun: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Instance {
    fn write(&self, stream: Stream, mut bytes: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.begun {
            p.begun = true;
            self.sink.begin();
        }
        let pending = match stream {
            Stream::Stdout => &mut p.stdout,
            Stream::Stderr => &mut p.stderr,
        };
        while let Some(i) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = (&bytes[..i], &bytes[i + 1..]);
            if pending.is_empty() {
                self.pieces(stream, line);
            } else {
                pending.extend_from_slice(line);
                self.pieces(stream, pending);
                pending.clear();
            }
            bytes = rest;
        }
        pending.extend_from_slice(bytes);
        // An endless line is handed over in pieces: the pending buffer never outgrows a piece.
        while pending.len() >= MAX_LINE {
            self.sink.line(stream, &pending[..MAX_LINE]);
            pending.drain(..MAX_LINE);
        }
    }

    fn pieces(&self, stream: Stream, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return self.sink.line(stream, line);
        }
        for piece in line.chunks(MAX_LINE) {
            self.sink.line(stream, piece);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let p = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if !p.begun {
            return;
        }
        for (stream, rest) in [(Stream::Stdout, &p.stdout), (Stream::Stderr, &p.stderr)] {
            if !rest.is_empty() {
                self.sink.line(stream, rest);
            }
        }
        self.sink.end();
    }
}

/// One stream of one instance, as WASI's stdout or stderr (preview 1, 2 and 3).
#[derive(Clone)]
pub(crate) struct LineStream {
    instance: Arc<Instance>,
    stream: Stream,
}

impl LineStream {
    /// The stdout and stderr of a new instance printing to `sink`.
    pub(crate) fn pair(sink: Arc<dyn LineSink>) -> (Self, Self) {
        let instance = Arc::new(Instance {
            sink,
            pending: Mutex::default(),
        });
        let out = Self {
            instance: instance.clone(),
            stream: Stream::Stdout,
        };
        (
            out,
            Self {
                instance,
                stream: Stream::Stderr,
            },
        )
    }
}

impl IsTerminal for LineStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LineStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LineStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.instance.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // What one write may hand over, as wasmtime's own streams allow.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LineStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.instance.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl LineSink for Record {
        fn begin(&self) {
            self.0.lock().unwrap().push("begin".into());
        }
        fn line(&self, stream: Stream, text: &[u8]) {
            let text = String::from_utf8_lossy(text);
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {text}", stream.name()));
        }
        fn end(&self) {
            self.0.lock().unwrap().push("end".into());
        }
    }

    fn lines(record: &Record) -> Vec<String> {
        record.0.lock().unwrap().clone()
    }

    #[test]
    fn lines_split_across_writes_are_joined_and_an_unfinished_one_comes_at_the_end() {
        let record = Arc::new(Record::default());
        let (mut out, mut err) = LineStream::pair(record.clone());
        out.write(Bytes::from_static(b"hel")).unwrap();
        err.write(Bytes::from_static(b"oops\r\n")).unwrap();
        out.write(Bytes::from_static(b"lo\n\nbye")).unwrap();
        assert_eq!(
            lines(&record),
            ["begin", "stderr oops", "stdout hello", "stdout "]
        );
        drop((out, err));
        assert_eq!(
            lines(&record),
            [
                "begin",
                "stderr oops",
                "stdout hello",
                "stdout ",
                "stdout bye",
                "end"
            ]
        );
    }

    #[test]
    fn two_instances_never_splice_their_half_lines() {
        let record = Arc::new(Record::default());
        let (mut a, _) = LineStream::pair(record.clone());
        let (mut b, _) = LineStream::pair(record.clone());
        a.write(Bytes::from_static(b"from a ")).unwrap();
        b.write(Bytes::from_static(b"from b\n")).unwrap();
        a.write(Bytes::from_static(b"done\n")).unwrap();
        assert_eq!(
            lines(&record),
            ["begin", "begin", "stdout from b", "stdout from a done"]
        );
    }

    #[test]
    fn an_endless_line_is_handed_over_in_pieces_without_growing_a_buffer() {
        let record = Arc::new(Record::default());
        let (mut out, _) = LineStream::pair(record.clone());
        for _ in 0..5 {
            out.write(Bytes::from(vec![b'x'; MAX_LINE - 1])).unwrap();
        }
        assert_eq!(lines(&record).len(), 1 + 4);
        assert!(out.instance.pending.lock().unwrap().stdout.len() < MAX_LINE);
        drop(out);
        let all = lines(&record);
        let bytes: usize = all[1..all.len() - 1]
            .iter()
            .map(|l| l.len() - "stdout ".len())
            .sum();
        assert_eq!(bytes, 5 * (MAX_LINE - 1));
    }

    #[test]
    fn an_instance_that_prints_nothing_never_begins() {
        let record = Arc::new(Record::default());
        drop(LineStream::pair(record.clone()));
        assert!(lines(&record).is_empty());
    }
}
