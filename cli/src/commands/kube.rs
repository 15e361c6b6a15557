//! `qyvol kube FILE|REF`: the Kubernetes objects that run an app through containerd's Qyvol
//! shim, like `spin kube scaffold`: a RuntimeClass whose handler is `qyvol`, a Deployment of
//! the image with the manifest's memory limit, and a Service for HTTP apps. The manifest's
//! network grants (or an image's requests) become the `qyvol.dev/allow-net` annotation the
//! shim enforces; applying the output is the operator granting them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qyvol_common::RuntimeKind;
use serde_json::{Value, json};

use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::out;

/// The port a wasi-http app listens on inside its pod (the shim serves it there).
pub const HTTP_PORT: u16 = 8080;

/// Print the Kubernetes objects (RuntimeClass, Deployment, Service) that run an app
#[derive(Debug, Args)]
pub struct KubeCommand {
    /// A manifest, bundle or wasm (then give --image), or an image reference
    #[arg(value_name = "FILE|REF")]
    file: PathBuf,

    /// The image the pods run (default: the reference given)
    #[arg(long, value_name = "REF")]
    image: Option<String>,

    /// How many pods
    #[arg(long, default_value_t = 1)]
    replicas: u32,

    /// Plain HTTP to a registry that is not on loopback, if the reference must be pulled
    #[arg(long)]
    insecure: bool,
}

impl KubeCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = crate::ui::Ui { quiet: true };
        let cache = super::cache::open()?;
        let insecure = self.insecure;
        let opened = qyvol_launch::open(
            &self.file,
            &qyvol_launch::Operator::default(),
            Some(&cache),
            &mut |r| super::registry::pull(r, insecure, &ui).map(drop),
        )?;
        let given = self.file.to_string_lossy().to_string();
        let image = match (&self.image, &opened.image) {
            (Some(i), _) => i.clone(),
            (None, Some(_)) if !self.file.exists() => qyvol_store::parse_reference(&given)
                .map(|r| qyvol_store::canonical(&r))
                .map_err(Failure::from)?,
            _ => {
                return Err(Failure::new(
                    Code::Usage,
                    Msg::BadFlag,
                    format!(
                        "`{}` is a file: name the image its pods run with `--image REF` (after `qyvol push REF`)",
                        crate::ui::sanitize(&given)
                    ),
                ));
            }
        };
        let documents = objects(&opened.manifest, &image, self.replicas);
        let mut text = String::new();
        for doc in documents {
            text.push_str("---\n");
            text.push_str(&serde_saphyr::to_string(&doc).map_err(Failure::internal)?);
        }
        out(text.trim_end());
        Ok(ExitCode::SUCCESS)
    }
}

/// A byte count as a Kubernetes quantity (`128Mi` when it divides evenly).
fn quantity(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// The objects for `manifest`'s app running `image`.
pub fn objects(manifest: &qyvol_common::Manifest, image: &str, replicas: u32) -> Vec<Value> {
    let name = manifest.name.as_str();
    let labels = json!({ "app.kubernetes.io/name": name });
    // Grants: an operator's manifest's own, or what an image's manifest asks for.
    let network: Vec<String> = if manifest.from_image {
        &manifest.requested.network
    } else {
        &manifest.network
    }
    .iter()
    .map(ToString::to_string)
    .collect();
    let mut annotations = serde_json::Map::new();
    if !network.is_empty() {
        annotations.insert("qyvol.dev/allow-net".into(), network.join(",").into());
    }
    // The manifest's limits, or its environment's defaults (as `run` applies them).
    let policy = manifest.environment.policy();
    let memory = manifest.limits.memory.or(policy.memory_cap);
    if let Some(t) = manifest.limits.timeout.or(policy.timeout_cap) {
        annotations.insert("qyvol.dev/timeout".into(), t.to_string().into());
    }
    if let Some(f) = manifest.limits.fuel {
        annotations.insert("qyvol.dev/fuel".into(), f.to_string().into());
    }
    let http = manifest.runtime == RuntimeKind::WasiHttp;
    // The module's path as the program's name, for either image form: the filesystem form's
    // entrypoint, and what a Wasm OCI artifact (no entrypoint in its config) needs, since
    // containerd's CRI refuses a container with neither a command nor an entrypoint, and the
    // shim takes the first argument as the program's name (tested through CRI on 1.7).
    let mut container = json!({
        "name": name,
        "image": image,
        "command": [format!("/{}", qyvol_store::bundle::ROOTFS_WASM)],
    });
    if let Some(m) = memory {
        let q = quantity(m.0);
        container["resources"] = json!({ "limits": { "memory": q }, "requests": { "memory": q } });
    }
    if http {
        container["ports"] = json!([{ "name": "http", "containerPort": HTTP_PORT }]);
    }
    // An operator's manifest may set arguments and variables for a packaged module.
    if !manifest.from_image {
        if !manifest.args.is_empty() {
            container["args"] = json!(manifest.args);
        }
        if !manifest.env.is_empty() {
            container["env"] = Value::Array(
                manifest
                    .env
                    .iter()
                    .map(|(k, v)| json!({ "name": k, "value": v }))
                    .collect(),
            );
        }
    }
    let mut template_meta = json!({ "labels": labels });
    if !annotations.is_empty() {
        template_meta["annotations"] = Value::Object(annotations);
    }
    let mut objects = vec![
        json!({
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": { "name": "qyvol" },
            "handler": "qyvol",
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": name, "labels": labels },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": template_meta,
                    "spec": {
                        "runtimeClassName": "qyvol",
                        "containers": [container],
                    },
                },
            },
        }),
    ];
    if http {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": name, "labels": labels },
            "spec": {
                "selector": labels,
                "ports": [{ "name": "http", "port": 80, "targetPort": "http", "protocol": "TCP" }],
            },
        }));
    }
    objects
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantities_use_binary_units_when_they_divide() {
        assert_eq!(super::quantity(128 << 20), "128Mi");
        assert_eq!(super::quantity(1 << 30), "1Gi");
        assert_eq!(super::quantity(1000), "1000");
        assert_eq!(super::quantity(1536 << 10), "1536Ki");
    }
}
