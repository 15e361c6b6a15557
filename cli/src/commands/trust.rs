//! `key generate`, `sign` and `verify`: who published an image, in cosign's format
//! (qyvol_store::trust).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use qyvol_store::parse_reference;
use qyvol_store::trust::PublicKey;

use super::keys::{password, signer};
use super::registry::remote;
use crate::exit::{Code, Failure};
use crate::i18n::{Msg, lang};
use crate::ui::{out, sanitize};

/// Make and manage signing keys
#[derive(Debug, Args)]
pub struct KeyCommand {
    #[command(subcommand)]
    action: KeyAction,
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Write a new key pair: PREFIX.key (encrypted, as cosign writes it) and PREFIX.pub
    Generate {
        /// Where to write the pair (PREFIX.key and PREFIX.pub)
        #[arg(short, long, value_name = "PREFIX", default_value = "qyvol")]
        output: PathBuf,
    },
}

impl KeyCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let KeyAction::Generate { output } = self.action;
        let private = with_extension(&output, "key");
        let public = with_extension(&output, "pub");
        for path in [&private, &public] {
            // A dangling symlink counts: writing through it would fail halfway.
            if path.symlink_metadata().is_ok() {
                return Err(Failure::new(
                    Code::Usage,
                    Msg::BadFlag,
                    format!(
                        "`{}` exists: Qyvol does not overwrite a key; choose another --output",
                        path.display()
                    ),
                ));
            }
        }
        let password = password()?;
        let (private_pem, public_pem) = qyvol_store::trust::generate(password.as_bytes())?;
        write_new(&private, private_pem.as_bytes(), 0o600)?;
        write_new(&public, public_pem.as_bytes(), 0o644)?;
        out(&Msg::KeyWritten(
            &private.display().to_string(),
            &public.display().to_string(),
        )
        .text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}

fn with_extension(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Creates `path` (never replacing a file) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            Failure::new(
                Code::MissingFile,
                Msg::MissingFile,
                format!("cannot write `{}`: {e}", path.display()),
            )
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Failure::internal)
}

/// Sign an image in its registry, as cosign does (the password on stdin or in QYVOL_KEY_PASSWORD)
#[derive(Debug, Args)]
pub struct SignCommand {
    /// The private key (`qyvol key generate`'s or cosign's)
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The image in its registry, e.g. localhost:5000/hello:1
    #[arg(value_name = "REF")]
    reference: String,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    insecure: bool,
}

impl SignCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let reference = parse_reference(&self.reference)?;
        let signer = signer(&self.key)?;
        let remote = remote(&reference, self.insecure, true)?;
        let digest = super::images::store()?.sign(&reference, &signer, &remote)?;
        out(&Msg::Signed(&sanitize(&qyvol_store::canonical(&reference)), &digest).text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}

/// Check that an image in its registry is signed by one of the keys
#[derive(Debug, Args)]
pub struct VerifyCommand {
    /// A public key (repeatable: any of them will do)
    #[arg(long, value_name = "KEY", required = true)]
    key: Vec<PathBuf>,
    /// The image in its registry, e.g. localhost:5000/hello:1
    #[arg(value_name = "REF")]
    reference: String,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    insecure: bool,
}

impl VerifyCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let reference = parse_reference(&self.reference)?;
        let keys = self
            .key
            .iter()
            .map(|k| PublicKey::load(k))
            .collect::<Result<Vec<_>, _>>()?;
        let remote = remote(&reference, self.insecure, true)?;
        let (digest, key) = super::images::store()?.verify(&reference, &keys, &remote)?;
        out(&Msg::Verified(
            &sanitize(&qyvol_store::canonical(&reference)),
            &digest,
            &sanitize(&key.display().to_string()),
        )
        .text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}
