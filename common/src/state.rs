//! What an app keeps and reads besides its files: key-value buckets with their quotas, and the
//! names of configuration variables and secrets (`wasi:keyvalue`, `wasi:config`).

use std::fmt;

use serde::{Deserialize, Deserializer, de};

use crate::types::ByteSize;

/// Per-bucket limits on what an app may store. A bundle's or image's manifest may only lower
/// them; the operator's own manifest may set them to anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KvQuotas {
    pub max_keys: u64,
    pub max_value: ByteSize,
    pub max_bytes: ByteSize,
}

impl Default for KvQuotas {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            max_value: ByteSize::mib(1),
            max_bytes: ByteSize::mib(64),
        }
    }
}

/// `limits.keyvalue` as written: each unset field keeps its default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvLimits {
    pub max_keys: Option<u64>,
    pub max_value: Option<ByteSize>,
    pub max_bytes: Option<ByteSize>,
}

impl KvQuotas {
    /// These quotas with `limits` applied: set as written when `trusted` (the operator's
    /// manifest), only lowered otherwise.
    pub fn with(self, limits: &KvLimits, trusted: bool) -> Self {
        let pick = |default: u64, asked: Option<u64>| match asked {
            Some(asked) if trusted => asked,
            Some(asked) => asked.min(default),
            None => default,
        };
        Self {
            max_keys: pick(self.max_keys, limits.max_keys),
            max_value: ByteSize(pick(self.max_value.0, limits.max_value.map(|b| b.0))),
            max_bytes: ByteSize(pick(self.max_bytes.0, limits.max_bytes.map(|b| b.0))),
        }
    }
}

/// The name of a configuration variable or secret, as the guest asks `wasi:config/store` for
/// it: ASCII letters, digits, `_`, `.` and `-`, 1 to 128 characters. Shown in lists, logs
/// and the dashboard, so nothing that could mislead a terminal or a page is let through.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ConfigKey(String);

impl ConfigKey {
    pub const MAX_LEN: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ConfigKey {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let hint = "use ASCII letters, digits, `_`, `.` and `-` (e.g. `api_key`)";
        if s.is_empty() {
            return Err(format!("a variable name is empty: {hint}"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "the variable name `{}…` is {} bytes long; the limit is {}",
                s.chars().take(16).collect::<String>(),
                s.len(),
                Self::MAX_LEN
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!("the variable name {s:?} contains {c:?}: {hint}"));
        }
        Ok(Self(s))
    }
}

impl std::str::FromStr for ConfigKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_string())
    }
}

impl<'de> Deserialize<'de> for ConfigKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s).map_err(de::Error::custom)
    }
}

/// The largest configuration value or secret accepted.
pub const MAX_CONFIG_VALUE: usize = 64 * 1024;

/// Checks a variable's or secret's value: UTF-8 (what `wasi:config` hands the guest) and at
/// most [`MAX_CONFIG_VALUE`] bytes.
pub fn config_value(name: &ConfigKey, bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() > MAX_CONFIG_VALUE {
        return Err(format!(
            "the value of `{name}` is {} bytes; the limit is {}",
            bytes.len(),
            ByteSize(MAX_CONFIG_VALUE as u64)
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| format!("the value of `{name}` is not UTF-8 text, which wasi:config needs"))
}

/// A secret's value: never shown by `Debug`, so no log line or error can print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Checks `bytes` as [`config_value`] does.
    pub fn new(name: &ConfigKey, bytes: Vec<u8>) -> Result<Self, String> {
        config_value(name, bytes).map(Self)
    }

    /// The value, for the guest and the file it is kept in; nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// `K=V` for `--config`.
pub fn parse_config_pair(s: &str) -> Result<(ConfigKey, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE, e.g. `greeting=Hola`"))?;
    let key: ConfigKey = k.parse()?;
    let value = config_value(&key, v.as_bytes().to_vec())?;
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packaged_manifest_only_lowers_quotas() {
        let asked = KvLimits {
            max_keys: Some(10),
            max_value: Some(ByteSize::mib(1024)),
            max_bytes: None,
        };
        let packaged = KvQuotas::default().with(&asked, false);
        assert_eq!(packaged.max_keys, 10);
        assert_eq!(packaged.max_value, KvQuotas::default().max_value);
        let operator = KvQuotas::default().with(&asked, true);
        assert_eq!(operator.max_value, ByteSize::mib(1024));
    }

    #[test]
    fn names_that_could_mislead_a_terminal_are_refused() {
        for bad in ["", "a b", "k\u{1b}[2J", "ключ", "a/b", &"x".repeat(129)] {
            assert!(ConfigKey::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
        assert!(ConfigKey::try_from("db.url_2-x".to_string()).is_ok());
    }

    #[test]
    fn a_secret_does_not_print_its_value() {
        let name: ConfigKey = "api_key".parse().expect("name");
        let secret = Secret::new(&name, b"hunter2".to_vec()).expect("secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }
}
