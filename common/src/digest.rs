//! Content digests (`sha256:<64 hex>`), parsed once, strictly, before anything uses them.
//!
//! Digests arrive from untrusted places (a bundle's `index.json`, an image manifest, a
//! registry) and end up in file names (`blobs/sha256/<hex>`, the compile cache). A [`Digest`]
//! can only be made by [`Digest::parse`] (or by hashing bytes), so `sha256:../../x` never
//! becomes a path: every descriptor is parsed into one when it is deserialized.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A sha256 digest: `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a digest Qyvol accepts: {why}")]
pub struct DigestError {
    shown: String,
    why: &'static str,
}

impl Digest {
    const PREFIX: &'static str = "sha256:";

    /// Parses `sha256:<64 lowercase hex>`; anything else (other algorithms, upper case, path
    /// characters, the wrong length) is refused.
    pub fn parse(text: &str) -> Result<Self, DigestError> {
        let fail = |why| DigestError {
            shown: text
                .chars()
                .take(80)
                .collect::<String>()
                .escape_debug()
                .to_string(),
            why,
        };
        let hex = text
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| fail("only `sha256:` digests are supported"))?;
        if hex.len() != 64 {
            return Err(fail("a sha256 digest has 64 hex digits"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(fail("a digest's hex digits are 0-9 and a-f"));
        }
        Ok(Self(text.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest a hasher has computed.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(hasher.finalize())
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits: safe as a file name.
    pub fn hex(&self) -> &str {
        &self.0[Self::PREFIX.len()..]
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> Self {
        d.0
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::ops::Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl std::borrow::Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_sha256_with_64_hex_digits_parses() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&good).map(|d| d.hex().len()), Ok(64));
        for bad in [
            "sha256:../../x".to_string(),
            format!("sha256:{}/..", "a".repeat(61)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "a".repeat(65)),
            format!("sha256:{}\0", "a".repeat(63)),
            "sha256:".to_string(),
            String::new(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_descriptor_with_a_traversal_digest_does_not_deserialize() {
        let err =
            serde_json::from_str::<Digest>("\"sha256:../../../etc/passwd\"").expect_err("refused");
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }

    #[test]
    fn hashing_gives_the_known_digest() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
