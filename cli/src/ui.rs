//! All of Qyvol's own output goes through here, so language, `-q` and sanitising of
//! guest-controlled text are decided in one place. Status lines go to stderr: stdout belongs
//! to the guest.

use std::io::Write;

use crate::i18n::{Msg, lang};

#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub quiet: bool,
}

impl Ui {
    /// A status line on stderr, unless `-q`.
    pub fn status(&self, msg: Msg<'_>) {
        if !self.quiet {
            eprintln!("{}", msg.text(lang()));
        }
    }

    /// A line that reports a failure: printed even with `-q`.
    pub fn alert(&self, msg: Msg<'_>) {
        eprintln!("{}", msg.text(lang()));
    }
}

/// Reports each connection or bind the grants refused, naming the address so the user learns
/// what to grant.
pub fn denial_sink() -> qyvol_runtime::DenialSink {
    qyvol_runtime::DenialSink::new(|d| eprintln!("{}", denial_text(d)))
}

/// The line that reports a refused connection, bind, lookup or request, saying what would
/// allow it.
pub fn denial_text(d: &qyvol_runtime::Denial) -> String {
    use qyvol_runtime::Refusal;
    let target = sanitize(&d.target);
    match &d.reason {
        Refusal::Private(addr) => Msg::NetworkPrivate(&target, &addr.to_string()).text(lang()),
        Refusal::BadAuthority => Msg::NetworkBadAuthority(&target).text(lang()),
        Refusal::Lookup => Msg::LookupDenied(&target).text(lang()),
        Refusal::NoRootCertificates(why) => {
            Msg::NoRootCertificates(&target, &sanitize(why)).text(lang())
        }
        _ => {
            let grant = match d.kind {
                qyvol_common::GrantKind::Connect => target,
                qyvol_common::GrantKind::Listen => format!("listen {target}"),
            };
            Msg::NetworkDenied(d.kind.as_str(), &grant).text(lang())
        }
    }
}

/// Text for the document on stdout (`inspect`), in the user's language.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// A compact age: `12s`, `5m`, `3h`, `2d`.
pub fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A spinner with elapsed time while a module compiles, on a terminal only.
pub struct CompileSpinner {
    bar: std::cell::RefCell<Option<indicatif::ProgressBar>>,
}

impl CompileSpinner {
    /// `None` when stderr is not a terminal or `-q` was given: then nothing is drawn.
    pub fn new(quiet: bool) -> Option<Self> {
        use std::io::IsTerminal;
        (!quiet && std::io::stderr().is_terminal()).then(|| Self { bar: None.into() })
    }
}

impl qyvol_runtime::CompileProgress for CompileSpinner {
    fn started(&self, wasm_bytes: u64) {
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        let size = qyvol_common::ByteSize(wasm_bytes).to_string();
        bar.set_message(Msg::Compiling(&size).text(lang()));
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn finished(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// One bar per blob moving to or from a registry, on a terminal only.
pub struct TransferBars {
    bars: indicatif::MultiProgress,
    active: std::sync::Mutex<Vec<indicatif::ProgressBar>>,
}

impl TransferBars {
    pub fn new(quiet: bool) -> Option<Self> {
        use std::io::IsTerminal;
        (!quiet && std::io::stderr().is_terminal()).then(|| Self {
            bars: indicatif::MultiProgress::new(),
            active: Vec::new().into(),
        })
    }
}

impl qyvol_store::Progress for TransferBars {
    fn begin(&self, digest: &str, size: u64) -> usize {
        let bar = self.bars.add(indicatif::ProgressBar::new(size));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(
            digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>(),
        );
        let mut active = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        active.push(bar);
        active.len() - 1
    }

    fn advance(&self, id: usize, bytes: u64) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            bar.inc(bytes);
        }
    }

    fn end(&self, id: usize) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            bar.finish();
        }
    }
}

/// Text a module or a file name controls, made safe to print (see `qyvol_common`).
pub use qyvol_common::escape_controls as sanitize;
