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

/// Text for the document on stdout (`inspect`), in the user's language.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// Makes text that a module or a file name controls safe to print on a terminal: control
/// characters (ANSI and OSC escapes among them) are shown escaped, never interpreted.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_are_shown_not_interpreted() {
        assert_eq!(super::sanitize("memory"), "memory");
        assert_eq!(
            super::sanitize("a\u{1b}]0;pwned\u{7}b"),
            "a\\u{1b}]0;pwned\\u{7}b"
        );
    }
}
