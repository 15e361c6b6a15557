//! The local store's verbs, as Docker has them: `images`, `tag`, `rmi`, `prune`, `save`,
//! `load`.

use std::process::ExitCode;

use clap::Args;
use qyvol_common::ByteSize;
use qyvol_store::{Store, StoreError, parse_reference};

use crate::exit::{Code, Failure};
use crate::i18n::{Msg, lang};
use crate::ui::{self, out};

/// The store under `QYVOL_HOME/store`.
pub fn store() -> Result<Store, Failure> {
    Ok(Store::open(&super::home()?.store())?)
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::BadReference(_) => Failure::new(Code::Usage, Msg::BadFlag, e),
            StoreError::NotFound(_) => Failure::new(Code::MissingFile, Msg::MissingFile, e),
            StoreError::Damaged(_) | StoreError::Blob(_) => {
                Failure::new(Code::NotWasm, Msg::BadBundle, e)
            }
            StoreError::Registry(_) => Failure::new(Code::Internal, Msg::RegistryFailed, e),
            StoreError::Untrusted(_) => Failure::new(Code::Denied, Msg::Untrusted, e),
            StoreError::Policy(_) => Failure::new(Code::BadManifest, Msg::BadPolicy, e),
            StoreError::Io { .. } => Failure::internal(e),
        }
    }
}

/// List the images in the local store
#[derive(Debug, Args)]
pub struct ImagesCommand {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

impl ImagesCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let images = store()?.list()?;
        if self.json {
            out(&serde_json::to_string_pretty(&images).map_err(Failure::internal)?);
            return Ok(ExitCode::SUCCESS);
        }
        out(&Msg::ImagesHeader.text(lang()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for i in images {
            let short = i.digest.strip_prefix("sha256:").unwrap_or(&i.digest);
            out(&format!(
                "{:<44}{:<15}{:>10}  {}",
                ui::sanitize(&i.reference),
                &short[..12.min(short.len())],
                ByteSize(i.size).to_string(),
                ui::ago(now.saturating_sub(i.created))
            ));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Give an image in the local store another reference
#[derive(Debug, Args)]
pub struct TagCommand {
    /// The image to tag
    #[arg(value_name = "SRC")]
    src: String,
    /// The new reference
    #[arg(value_name = "DST")]
    dst: String,
}

impl TagCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        store()?.tag(&parse_reference(&self.src)?, &parse_reference(&self.dst)?)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Remove references from the local store (their blobs go with `qyvol prune`)
#[derive(Debug, Args)]
pub struct RmiCommand {
    /// The references to remove
    #[arg(value_name = "REF", required = true)]
    refs: Vec<String>,
}

impl RmiCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let store = store()?;
        for r in &self.refs {
            let digest = store.remove(&parse_reference(r)?)?;
            out(&Msg::Untagged(&ui::sanitize(r), &digest).text(lang()));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Remove blobs no reference in the local store reaches
#[derive(Debug, Args)]
pub struct PruneCommand {}

impl PruneCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let freed = store()?.prune()?;
        out(&Msg::Pruned(&ByteSize(freed).to_string()).text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}

/// Write an image of the local store to an OCI archive (for `qyvol load` or `ctr image import`)
#[derive(Debug, Args)]
pub struct SaveCommand {
    /// The image to save
    #[arg(value_name = "REF")]
    reference: String,
    /// The archive to write
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: std::path::PathBuf,
    /// An ordinary OCI image with the module in its filesystem (`/app.wasm`), for a
    /// containerd older than 1.6.25 / 1.7.7
    #[arg(long)]
    rootfs: bool,
}

impl SaveCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let reference = parse_reference(&self.reference)?;
        let image = store()?.image(&reference)?;
        let name = qyvol_store::canonical(&reference);
        let tag = reference
            .tag()
            .or(reference.digest())
            .unwrap_or("latest")
            .to_string();
        if self.rootfs {
            qyvol_store::bundle::save_rootfs(&image, &name, &tag, &self.output)?;
        } else {
            qyvol_store::bundle::save(&image, &name, &tag, &self.output)?;
        }
        out(&Msg::Saved(&name, &self.output.display().to_string()).text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}

/// Load an image from an OCI archive (`qyvol save`, `.qyvc`) into the local store
#[derive(Debug, Args)]
pub struct LoadCommand {
    /// The archive to read
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: std::path::PathBuf,
    /// The reference to store it under (default: the name the archive gives)
    #[arg(short = 't', long = "tag", value_name = "REF")]
    tag: Option<String>,
}

impl LoadCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let bundle = qyvol_store::bundle::Bundle::open(&self.input)?;
        // An archive enters the store as a bundle would run: the policy's `bundles` rule first.
        qyvol_store::trust::policy::admit_bundle(&super::home()?.trust_policy(), &bundle)?;
        let name = match (&self.tag, bundle.name()) {
            (Some(t), _) => t.clone(),
            (None, Some(n)) => n.to_string(),
            (None, None) => {
                return Err(Failure::new(
                    Code::Usage,
                    Msg::BadFlag,
                    format!(
                        "`{}` names no image: give one with `-t REF`",
                        self.input.display()
                    ),
                ));
            }
        };
        let reference = parse_reference(&name)?;
        let digest = store()?.import(&bundle, &reference)?;
        out(&Msg::Loaded(&ui::sanitize(&qyvol_store::canonical(&reference)), &digest).text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}
