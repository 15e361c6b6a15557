//! The grants a pod's author gives through the container's annotations (`qyvol.dev/...`), and
//! where an HTTP app listens when they do not say.

use std::collections::HashMap;

use anyhow::bail;
use qyvol_common::{ByteSize, DurationSpec, NetworkGrant};

/// Pod annotations that grant: network destinations (comma-separated, as `--allow-net`), a
/// time limit and a fuel budget. They are the operator's (the pod's author's); an image cannot
/// set them. `qyvol kube` writes them from a manifest.
pub const ANN_ALLOW_NET: &str = "qyvol.dev/allow-net";
pub const ANN_TIMEOUT: &str = "qyvol.dev/timeout";
pub const ANN_FUEL: &str = "qyvol.dev/fuel";
/// Where an HTTP app listens in its pod (default [`DEFAULT_LISTEN`]): the operator's to choose,
/// not the image's (whose environment variables are the container's too).
pub const ANN_LISTEN: &str = "qyvol.dev/listen";

const QYVOL_PREFIX: &str = "qyvol.dev/";

/// The grants a container's annotations carry.
#[derive(Debug, Default)]
pub struct PodGrants {
    pub network: Vec<NetworkGrant>,
    pub timeout: Option<DurationSpec>,
    pub fuel: Option<u64>,
    pub listen: Option<std::net::SocketAddr>,
    /// The container's memory limit (its spec's, as the orchestrator set it).
    pub memory: Option<ByteSize>,
}

impl PodGrants {
    /// Reads [`ANN_ALLOW_NET`], [`ANN_TIMEOUT`] and [`ANN_FUEL`]; a value that does not parse
    /// is an error naming the annotation (a typo must not quietly grant or limit nothing).
    pub fn from_annotations(annotations: Option<&HashMap<String, String>>) -> anyhow::Result<Self> {
        let mut grants = Self::default();
        let Some(annotations) = annotations else {
            return Ok(grants);
        };
        // A misspelt key would grant or limit nothing, silently.
        for key in annotations.keys() {
            let ours = key
                .get(..QYVOL_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(QYVOL_PREFIX));
            if ours && ![ANN_ALLOW_NET, ANN_TIMEOUT, ANN_FUEL, ANN_LISTEN].contains(&key.as_str()) {
                bail!(
                    "unknown annotation `{}`: Qyvol's are {ANN_ALLOW_NET}, {ANN_TIMEOUT}, {ANN_FUEL} \
                     and {ANN_LISTEN}",
                    qyvol_common::escape_controls(key)
                );
            }
        }
        let bad = |key: &str, value: &str, e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "the annotation {key}=`{}` is wrong: {e}",
                qyvol_common::escape_controls(value)
            )
        };
        if let Some(v) = annotations.get(ANN_ALLOW_NET) {
            for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                grants
                    .network
                    .push(g.parse().map_err(|e| bad(ANN_ALLOW_NET, g, &e))?);
            }
        }
        if let Some(v) = annotations.get(ANN_TIMEOUT) {
            grants.timeout = Some(v.trim().parse().map_err(|e| bad(ANN_TIMEOUT, v, &e))?);
        }
        if let Some(v) = annotations.get(ANN_FUEL) {
            grants.fuel = Some(v.trim().parse().map_err(|e| bad(ANN_FUEL, v, &e))?);
        }
        if let Some(v) = annotations.get(ANN_LISTEN) {
            grants.listen = Some(v.trim().parse().map_err(|e| bad(ANN_LISTEN, v, &e))?);
        }
        Ok(grants)
    }
}

/// Where an HTTP app listens in its pod (the Service `qyvol kube` writes targets it); the
/// `qyvol.dev/listen` annotation may say otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_grant_what_they_name_and_unknown_qyvol_keys_are_refused() {
        let of = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect();
            PodGrants::from_annotations(Some(&map))
        };
        let g = of(&[
            (ANN_ALLOW_NET, "api.example.com:443, 10.0.0.0/8:5432"),
            (ANN_TIMEOUT, "30s"),
            (ANN_FUEL, "1000"),
            (ANN_LISTEN, "127.0.0.1:9000"),
            ("other.io/key", "ignored"),
        ])
        .expect("grants");
        assert_eq!(g.network.len(), 2);
        assert_eq!(g.timeout.map(|t| t.0.as_secs()), Some(30));
        assert_eq!(g.fuel, Some(1000));
        assert_eq!(g.listen.map(|a| a.port()), Some(9000));
        for key in ["qyvol.dev/timeouts", "QYVOL.DEV/TIMEOUT", "Qyvol.dev/fuel"] {
            let e = of(&[(key, "1s")]).expect_err(key).to_string();
            assert!(e.starts_with(&format!("unknown annotation `{key}`")), "{e}");
        }
        assert!(of(&[(ANN_LISTEN, "everywhere")]).is_err());
    }
}
