//! The node's streams: `logs` (an app's output) and `events` (the node's, as they happen).

use std::process::ExitCode;

use clap::Args;
use qyvol_common::DurationSpec;
use qyvol_node::{Event, LogLine};

use super::{NodeArgs, block, check_name, sanitize_line};
use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::{out, sanitize};

/// Show an app's output
#[derive(Debug, Args)]
pub struct LogsCommand {
    /// Keep printing new lines as the app writes them
    #[arg(short, long)]
    follow: bool,

    /// Only the last N lines
    #[arg(long, value_name = "N")]
    tail: Option<usize>,

    /// Only lines since a time (RFC 3339) or for a duration back (e.g. 10m)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,

    /// Show each line's time
    #[arg(short = 't', long)]
    timestamps: bool,

    #[command(flatten)]
    target: NodeArgs,

    /// The app
    #[arg(value_name = "NAME")]
    name: String,
}

fn since_ms(text: &str) -> Result<u64, Failure> {
    let bad = |e: String| {
        Failure::new(
            Code::Usage,
            Msg::BadFlag,
            format!(
                "`--since {text}`: {e}; write a duration like `10m` or a time like `2026-11-25T10:00:00Z`"
            ),
        )
    };
    let when = match text.parse::<DurationSpec>() {
        Ok(d) => std::time::SystemTime::now()
            .checked_sub(d.0)
            .ok_or_else(|| bad("too far back".into()))?,
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|e| bad(e.to_string()))?,
    };
    Ok(when
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

impl LogsCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let mut path = format!("/api/v1/apps/{}/logs?follow={}", self.name, self.follow);
        if let Some(n) = self.tail {
            path.push_str(&format!("&tail={n}"));
        }
        if let Some(s) = &self.since {
            path.push_str(&format!("&since={}", since_ms(s)?));
        }
        check_name(&self.name)?;
        let client = self.target.client()?;
        let stamps = self.timestamps;
        // What is there is sent at once; only a followed stream may go quiet.
        let idle = (!self.follow).then_some(std::time::Duration::from_secs(60));
        block(async {
            use std::io::Write;
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            client
                .lines(&path, idle, |raw| {
                    let Ok(line) = serde_json::from_slice::<LogLine>(raw) else {
                        return true;
                    };
                    let text = if stamps {
                        format!("{} {}\n", line.time, line.text)
                    } else {
                        format!("{}\n", line.text)
                    };
                    // A guest's bytes reach the terminal without its control sequences.
                    let text = sanitize_line(&text);
                    if line.stream == "stderr" {
                        stderr.lock().write_all(text.as_bytes()).is_ok()
                    } else {
                        let mut o = stdout.lock();
                        o.write_all(text.as_bytes())
                            .and_then(|()| o.flush())
                            .is_ok()
                    }
                })
                .await?;
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Show the node's events as they happen
#[derive(Debug, Args)]
pub struct EventsCommand {
    /// Output JSON lines
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    target: NodeArgs,
}

impl EventsCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let client = self.target.client()?;
        let json = self.json;
        block(async {
            client
                .lines("/api/v1/events", None, |raw| {
                    if json {
                        out(&String::from_utf8_lossy(raw));
                    } else if let Ok(e) = serde_json::from_slice::<Event>(raw) {
                        out(&sanitize(&format!(
                            "{} {} {} {}",
                            e.time,
                            e.app,
                            e.action,
                            e.detail.unwrap_or_default()
                        )));
                    }
                    true
                })
                .await?;
            Ok(ExitCode::SUCCESS)
        })
    }
}
