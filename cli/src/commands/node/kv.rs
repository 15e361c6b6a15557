//! `qyvol kv ls|get|put|rm APP BUCKET [KEY]`: a deployed app's key-value buckets, through the
//! node's API. Keys are percent-encoded in the path; values are shown as text when they are
//! UTF-8 (escaped for the terminal) and as hex otherwise (`--hex` always).

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use qyvol_common::ByteSize;
use qyvol_node::{KvKeys, KvValue};
use qyvol_runtime::keyvalue::BucketUsage;

use super::{NodeArgs, block, check_name};
use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::{out, sanitize};

/// Look at and change a deployed app's key-value buckets
#[derive(Debug, Args)]
pub struct KvCommand {
    #[command(subcommand)]
    action: KvAction,

    #[command(flatten)]
    target: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum KvAction {
    /// List an app's buckets (keys, bytes), or a bucket's keys
    Ls {
        app: String,
        bucket: Option<String>,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Print a key's value
    Get {
        app: String,
        bucket: String,
        key: String,
        /// Print the value as hex, even when it is text
        #[arg(long)]
        hex: bool,
    },
    /// Write a key: VALUE, or the bytes of --file (`-`: stdin)
    Put {
        app: String,
        bucket: String,
        key: String,
        #[arg(conflicts_with = "file", required_unless_present = "file")]
        value: Option<String>,
        /// Read the value from this file (`-`: stdin)
        #[arg(long, value_name = "FILE")]
        file: Option<std::path::PathBuf>,
    },
    /// Delete a key
    Rm {
        app: String,
        bucket: String,
        key: String,
    },
}

fn part(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn key_path(app: &str, bucket: &str, key: &str) -> String {
    format!(
        "/api/v1/apps/{}/kv/{}/{}",
        part(app),
        part(bucket),
        part(key)
    )
}

/// The most `put --file` sends (a deploy-sized request).
const MAX_PUT: u64 = 1024 * 1024;

fn read_value(file: &std::path::Path) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_PUT + 1)
            .read_to_end(&mut bytes)
    } else {
        // Any readable file, a FIFO (`--file <(...)`) too, read up to the cap.
        let f = std::fs::File::open(file).map_err(|e| {
            Failure::new(
                Code::MissingFile,
                Msg::MissingFile,
                format!("`--file {}`: {e}", file.display()),
            )
        })?;
        f.take(MAX_PUT + 1).read_to_end(&mut bytes)
    };
    read.map_err(|e| {
        Failure::new(
            Code::Usage,
            Msg::BadFlag,
            format!("`--file {}`: {e}", file.display()),
        )
    })?;
    if bytes.len() as u64 > MAX_PUT {
        return Err(Failure::new(
            Code::Usage,
            Msg::BadFlag,
            format!(
                "`--file {}` is larger than {}",
                file.display(),
                ByteSize(MAX_PUT)
            ),
        ));
    }
    Ok(bytes)
}

impl KvCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let client = self.target.client()?;
        match self.action {
            KvAction::Ls {
                app,
                bucket: None,
                json,
            } => {
                check_name(&app)?;
                let path = format!("/api/v1/apps/{}/kv", part(&app));
                let buckets: Vec<BucketUsage> =
                    block(async { Ok(client.json(Method::GET, &path, None).await?) })?;
                if json {
                    out(&serde_json::to_string_pretty(&buckets).map_err(Failure::internal)?);
                } else {
                    out(&format!("{:<24} {:>10} {:>10}", "BUCKET", "KEYS", "BYTES"));
                    for b in &buckets {
                        out(&format!(
                            "{:<24} {:>10} {:>10}",
                            sanitize(&b.name),
                            b.keys,
                            ByteSize(b.bytes).to_string()
                        ));
                    }
                }
            }
            KvAction::Ls {
                app,
                bucket: Some(bucket),
                json,
            } => {
                check_name(&app)?;
                let mut all = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let mut path = format!("/api/v1/apps/{}/kv/{}", part(&app), part(&bucket));
                    if let Some(a) = &after {
                        path = format!("{path}?after={}", part(a));
                    }
                    let page: KvKeys =
                        block(async { Ok(client.json(Method::GET, &path, None).await?) })?;
                    all.extend(page.keys);
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                if json {
                    out(&serde_json::to_string_pretty(&all).map_err(Failure::internal)?);
                } else {
                    for k in &all {
                        out(&sanitize(k));
                    }
                }
            }
            KvAction::Get {
                app,
                bucket,
                key,
                hex,
            } => {
                check_name(&app)?;
                let path = key_path(&app, &bucket, &key);
                let value: KvValue =
                    block(async { Ok(client.json(Method::GET, &path, None).await?) })?;
                match value.text.filter(|_| !hex) {
                    Some(text) => out(&sanitize(&text)),
                    None => out(&value.hex),
                }
            }
            KvAction::Put {
                app,
                bucket,
                key,
                value,
                file,
            } => {
                check_name(&app)?;
                let body = match (value, file) {
                    (Some(v), _) => serde_json::json!({ "text": v }),
                    (None, Some(f)) => {
                        let bytes = read_value(&f)?;
                        match String::from_utf8(bytes) {
                            Ok(text) => serde_json::json!({ "text": text }),
                            Err(e) => serde_json::json!({ "hex": hex::encode(e.into_bytes()) }),
                        }
                    }
                    (None, None) => {
                        return Err(Failure::new(
                            Code::Usage,
                            Msg::BadFlag,
                            "give VALUE or --file",
                        ));
                    }
                };
                let path = key_path(&app, &bucket, &key);
                block(async {
                    Ok(client
                        .call(Method::PUT, &path, Some(&body))
                        .await
                        .map(drop)?)
                })?;
            }
            KvAction::Rm { app, bucket, key } => {
                check_name(&app)?;
                let path = key_path(&app, &bucket, &key);
                block(async {
                    Ok(client
                        .call(Method::DELETE, &path, Some(&serde_json::json!({})))
                        .await
                        .map(drop)?)
                })?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
