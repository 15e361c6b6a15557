//! Newtypes for manifest fields. Each parses its input once, and its error tells the user how
//! to write the value correctly ("parse, don't validate").

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// An application name: lowercase ASCII letters, digits and `-`, 1 to 63 characters, starting
/// and ending with a letter or digit. Names become file and store paths, so nothing else is let
/// through (no `/`, `..`, unicode look-alikes or control characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppName(String);

impl AppName {
    pub const MAX_LEN: usize = 63;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AppName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let hint = "use lowercase letters, digits and `-` (e.g. `hello-qyvol`)";
        if s.is_empty() {
            return Err(format!("the name is empty: {hint}"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "the name is {} bytes long; the limit is {}",
                s.len(),
                Self::MAX_LEN
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
        {
            return Err(format!("the name contains {:?}: {hint}", c));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(format!("the name `{s}` starts or ends with `-`: {hint}"));
        }
        Ok(Self(s))
    }
}

impl<'de> Deserialize<'de> for AppName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s).map_err(de::Error::custom)
    }
}

/// What kind of program the manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// A command: a WASI preview 1 module or a WASI 0.2 `wasi:cli/command` component.
    Wasi,
    /// An HTTP handler (`wasi:http/proxy`), served by `qyvol serve`.
    WasiHttp,
}

/// A number of bytes, written `64MiB`, `512KiB`, `1GiB`, `100MB`, `4096B` or a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (unit, size) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let hint = "write a size like `64MiB`, `512KiB` or `1GiB`";
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{input}` is not a size: {hint}"))?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KiB" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => return Err(format!("`{other}` is not a size unit in `{input}`: {hint}")),
        };
        n.checked_mul(factor)
            .map(Self)
            .ok_or_else(|| format!("`{input}` is too large"))
    }
}

/// As a plain number of bytes, which [`Deserialize`] reads back.
impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like `64MiB`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration, written with a unit: `500ms`, `30s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationSpec(pub Duration);

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl std::str::FromStr for DurationSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let hint = "write a duration like `500ms`, `30s`, `2m` or `1h`";
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{input}` is not a duration: {hint}"))?;
        let ms_per: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "" => return Err(format!("`{input}` has no unit: {hint}")),
            other => {
                return Err(format!(
                    "`{other}` is not a duration unit in `{input}`: {hint}"
                ));
            }
        };
        let ms = n
            .checked_mul(ms_per)
            .ok_or_else(|| format!("`{input}` is too long"))?;
        if ms == 0 {
            return Err(format!("`{input}` is zero: a time limit must be positive"));
        }
        Ok(Self(Duration::from_millis(ms)))
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like `30s`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationSpec, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit: write a duration like `{v}s`"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationSpec, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit: write a duration like `30s`"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// An absolute path inside the guest, such as `/data`: no `..`, no NUL, no empty components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPath(String);

impl GuestPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for GuestPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') {
            return Err(format!("guest path `{s}` must be absolute, like `/data`"));
        }
        if s.contains('\0') {
            return Err("guest path contains a NUL byte".into());
        }
        if s.split('/').any(|c| c == "..") {
            return Err(format!("guest path `{s}` must not contain `..`"));
        }
        let trimmed = s.trim_end_matches('/');
        Ok(Self(if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.into()
        }))
    }
}

impl<'de> Deserialize<'de> for GuestPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// Checks one environment variable: a non-empty name without `=` or NUL, a value without NUL.
pub fn check_env(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty()
        || key.contains('=')
        || key.contains('\0')
        || key.contains(char::is_whitespace)
    {
        return Err(format!("`{key}` is not a valid environment variable name"));
    }
    if value.contains('\0') {
        return Err(format!("the value of `{key}` contains a NUL byte"));
    }
    Ok(())
}

/// Parses `K=V` as given to `--env`; `K` alone means "take `K` from the host's environment".
pub fn parse_env_pair(s: &str) -> Result<(String, Option<String>), String> {
    match s.split_once('=') {
        Some((k, v)) => check_env(k, v).map(|()| (k.to_string(), Some(v.to_string()))),
        None => check_env(s, "").map(|()| (s.to_string(), None)),
    }
}

/// The variables of an env file, as Docker reads one (`--env-file`): a `K=V` or `K` per line
/// (`K` alone: take it from the caller's environment), blank lines and lines starting with `#`
/// skipped, nothing unquoted or trimmed in a value. Errors name the line.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            parse_env_pair(l.trim_start().trim_end_matches('\r'))
                .map_err(|e| format!("line {}: {e}", i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_docker_reads_them() {
        let vars =
            parse_env_file("# a comment\n\nA=1\n  B=two words \nC\nD=x=y\r\n").expect("valid");
        assert_eq!(
            vars,
            [
                ("A".into(), Some("1".into())),
                ("B".into(), Some("two words ".into())),
                ("C".into(), None),
                ("D".into(), Some("x=y".into())),
            ]
        );
        assert_eq!(
            parse_env_file("A=1\n=oops\n").unwrap_err(),
            "line 2: `` is not a valid environment variable name"
        );
        // As Docker: no white space in a name (`export K=V` is a shell's line, not a name).
        assert!(parse_env_file("C = 3\n").is_err());
        assert!(parse_env_file("export D=4\n").is_err());
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!("64MiB".parse::<ByteSize>(), Ok(ByteSize(64 << 20)));
        assert_eq!("1GiB".parse::<ByteSize>(), Ok(ByteSize(1 << 30)));
        assert_eq!("100MB".parse::<ByteSize>(), Ok(ByteSize(100_000_000)));
        assert_eq!("4096".parse::<ByteSize>(), Ok(ByteSize(4096)));
        assert!("64 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999999999999999GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize::mib(256).to_string(), "256MiB");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(
            "30s".parse::<DurationSpec>(),
            Ok(DurationSpec(Duration::from_secs(30)))
        );
        assert_eq!(
            "250ms".parse::<DurationSpec>(),
            Ok(DurationSpec(Duration::from_millis(250)))
        );
        assert!(
            "30".parse::<DurationSpec>()
                .unwrap_err()
                .contains("no unit")
        );
        assert!("0s".parse::<DurationSpec>().is_err());
    }

    #[test]
    fn names_are_strict() {
        assert!(AppName::try_from("hello-qyvol".to_string()).is_ok());
        for bad in ["", "Hello", "a/b", "..", "-a", "a-", "héllo", "a\u{202e}b"] {
            assert!(
                AppName::try_from(bad.to_string()).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(AppName::try_from("a".repeat(64)).is_err());
    }

    #[test]
    fn guest_paths_are_absolute_without_dotdot() {
        assert_eq!(
            "/data/".parse::<GuestPath>().map(|p| p.0),
            Ok("/data".to_string())
        );
        assert!("data".parse::<GuestPath>().is_err());
        assert!("/data/../etc".parse::<GuestPath>().is_err());
    }
}
