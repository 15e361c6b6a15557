//! Who may reach the node over TCP, beyond its token: the proof a node gives before a client
//! sends it the token, and the one-time login links that open a dashboard session.
//!
//! A TCP port is not an identity: when the node is not running (or, before it bound both
//! loopback families, on `[::1]`), another local user can listen on the printed port. So a
//! client never sends the token first: it sends a random nonce, and the server must answer
//! with an HMAC of it keyed by the token, which only the real node can compute. A browser
//! cannot run such a check on a page the server itself serves, so the dashboard never asks
//! for the token at all: `qyvol dashboard` asks the node (through its Unix socket, or over TCP
//! after the proof) for a one-time link that opens a session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The proof's path on the TCP API (answered without the token).
pub const PROOF_PATH: &str = "/api/v1/proof";
/// How long a login link works, and how many may be pending at once.
pub const LOGIN_LINK_TIME: Duration = Duration::from_secs(300);
const PENDING_LINKS: usize = 16;

/// A proof's nonce: 32 random bytes, hex.
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Whether `nonce` has the shape a client sends (64 lowercase hex digits): the node computes
/// proofs for nothing else.
pub fn is_nonce(nonce: &str) -> bool {
    nonce.len() == 64
        && nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// HMAC-SHA256 keyed by the token over a fixed label and the nonce, hex.
pub fn proof(token: &str, nonce: &str) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(b"qyvol node proof v1\n");
    mac.update(nonce.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `answer` is the proof of `nonce` for `token` (in constant time).
pub fn verify(token: &str, nonce: &str, answer: &str) -> bool {
    crate::api::same(proof(token, nonce).as_bytes(), answer.trim().as_bytes())
}

/// One-time login codes, each good for one session within [`LOGIN_LINK_TIME`].
#[derive(Default)]
pub struct Logins(Mutex<HashMap<String, Instant>>);

impl Logins {
    /// A new code (the oldest pending one is dropped past [`PENDING_LINKS`]).
    pub fn issue(&self) -> Result<String, getrandom::Error> {
        let code = nonce()?;
        let mut codes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        codes.retain(|_, expires| *expires > now);
        if codes.len() >= PENDING_LINKS
            && let Some(oldest) = codes
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(c, _)| c.clone())
        {
            codes.remove(&oldest);
        }
        codes.insert(code.clone(), now + LOGIN_LINK_TIME);
        Ok(code)
    }

    /// Whether `code` was pending and unexpired; it is used up either way.
    pub fn redeem(&self, code: &str) -> bool {
        let mut codes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        codes
            .remove(code)
            .is_some_and(|expires| expires > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_for_its_token_and_nonce() {
        let n = nonce().expect("nonce");
        let p = proof("token-a", &n);
        assert!(verify("token-a", &n, &p));
        assert!(!verify("token-b", &n, &p));
        assert!(!verify("token-a", &nonce().expect("nonce"), &p));
        assert!(!verify("token-a", &n, ""));
    }

    #[test]
    fn a_login_code_opens_one_session_only() {
        let logins = Logins::default();
        let code = logins.issue().expect("code");
        assert!(!logins.redeem("not-a-code"));
        assert!(logins.redeem(&code));
        assert!(!logins.redeem(&code), "used up");
    }

    #[test]
    fn nonces_are_64_lowercase_hex_digits() {
        assert!(is_nonce(&nonce().expect("nonce")));
        assert!(!is_nonce("ABC"));
        assert!(!is_nonce(&"g".repeat(64)));
    }
}
