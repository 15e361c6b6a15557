//! The flags that grant state and configuration (`--keyvalue`, `--config`, `--secret`), shared
//! by `run`, `serve` and `deploy`. Secrets are read here, from a file or stdin, never from
//! the command line, where other users see it (`/proc/PID/cmdline`).

use std::io::Read;
use std::path::PathBuf;

use qyvol_common::{AppName, ConfigKey, MAX_CONFIG_VALUE, Secret};
use qyvol_launch::StateGrants;

use crate::exit::{Code, Failure};
use crate::i18n::Msg;

/// `--keyvalue NAME`.
pub(crate) fn parse_bucket(s: &str) -> Result<AppName, String> {
    AppName::try_from(s.to_string()).map_err(|e| format!("bucket `{s}`: {e}"))
}

/// `--secret NAME=FILE` (`-` for stdin).
pub(crate) fn parse_secret_flag(s: &str) -> Result<(ConfigKey, PathBuf), String> {
    let (name, file) = s.split_once('=').ok_or_else(|| {
        format!("`{s}` is not NAME=FILE: a secret is read from a file (or `NAME=-` from stdin), never given on the command line")
    })?;
    if file.is_empty() {
        return Err(format!("`{s}` names no file: give NAME=FILE or NAME=-"));
    }
    Ok((name.parse()?, PathBuf::from(file)))
}

/// Reads each secret's value (at most one from stdin).
pub(crate) fn read_secrets(
    flags: &[(ConfigKey, PathBuf)],
) -> Result<Vec<(ConfigKey, Secret)>, Failure> {
    let usage = |e: String| Failure::new(Code::Usage, Msg::BadFlag, e);
    if flags.iter().filter(|(_, f)| f.as_os_str() == "-").count() > 1 {
        return Err(usage("only one `--secret NAME=-` can read stdin".into()));
    }
    let mut out: Vec<(ConfigKey, Secret)> = Vec::new();
    for (name, file) in flags {
        if out.iter().any(|(n, _)| n == name) {
            return Err(usage(format!("`--secret {name}` is given twice")));
        }
        let limit = MAX_CONFIG_VALUE as u64 + 1;
        let mut bytes = Vec::new();
        let read = if file.as_os_str() == "-" {
            std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
        } else {
            // Any readable file, a FIFO too (`--secret k=<(pass show k)`), read up to the cap.
            // What the flag named is not repeated: a value typed there by mistake stays unseen.
            match std::fs::File::open(file) {
                Ok(f) => f.take(limit).read_to_end(&mut bytes),
                Err(e) => {
                    return Err(Failure::new(
                        Code::MissingFile,
                        Msg::MissingFile,
                        format!(
                            "secret `{name}`: the file it names cannot be opened ({e}); give NAME=FILE, or NAME=- for stdin"
                        ),
                    ));
                }
            }
        };
        read.map_err(|e| usage(format!("secret `{name}`: its file cannot be read: {e}")))?;
        out.push((name.clone(), Secret::new(name, bytes).map_err(usage)?));
    }
    Ok(out)
}

/// The operator's state grants from the flags, with the key-value folder of `QYVOL_HOME`.
pub(crate) fn grants(
    keyvalue: &[AppName],
    config: &[(ConfigKey, String)],
    secrets: &[(ConfigKey, PathBuf)],
) -> Result<StateGrants, Failure> {
    Ok(StateGrants {
        keyvalue: keyvalue.to_vec(),
        config: config.to_vec(),
        secrets: read_secrets(secrets)?,
        keyvalue_dir: qyvol_common::Home::open().ok().map(|h| h.keyvalue()),
        owner: None,
        refusals: qyvol_runtime::keyvalue::QuotaSink::new(|app, why| {
            eprintln!(
                "{}",
                Msg::KvRefused(app, &qyvol_common::escape_controls(why)).text(crate::i18n::lang())
            );
        }),
    })
}
