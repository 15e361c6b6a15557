//! Who may reach the node over TCP, beyond its token: the proof a node gives before a client
//! sends it the token, and the one-time login links that open a dashboard session.
//!
//! A TCP port is not an identity: when the node is not running (or, before it bound both
//! loopback families, on `[::1]`), another local user can listen on the printed port. So a
//! client first sends a random nonce, and the server must answer with an HMAC of it keyed by
//! the token, which only the real node can compute, and a one-time challenge. A server that
//! merely relays to the real node could pass that check, so the client never sends the token
//! at all: each request carries an HMAC, keyed by the token, of the challenge, the method, the
//! path and the body's digest (`Authorization: Qyvol-Proof challenge=…, mac=…`), which the node
//! accepts once. A relay can forward the request it was given, never forge another. A browser
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
/// How long a request challenge works, and how many may be pending at once.
const CHALLENGE_TIME: Duration = Duration::from_secs(60);
const PENDING_CHALLENGES: usize = 1024;
/// The `Authorization` scheme of a signed request.
pub const SIGNED: &str = "Qyvol-Proof";

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

/// The `Authorization` value of a request signed for `challenge`: an HMAC keyed by the token
/// of the challenge, the method, the path with its query and the body's SHA-256.
pub fn sign(token: &str, challenge: &str, method: &str, path: &str, body: &[u8]) -> String {
    format!(
        "{SIGNED} challenge={challenge}, mac={}",
        request_mac(token, challenge, method, path, body)
    )
}

fn request_mac(token: &str, challenge: &str, method: &str, path: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    for part in [
        "qyvol request v1",
        challenge,
        method,
        path,
        &hex::encode(Sha256::digest(body)),
    ] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The challenge and MAC of a `Qyvol-Proof` authorization (after the scheme).
pub fn parse_signed(params: &str) -> Option<(&str, &str)> {
    let mut challenge = None;
    let mut mac = None;
    for kv in params.split(',') {
        match kv.trim().split_once('=')? {
            ("challenge", v) => challenge = Some(v),
            ("mac", v) => mac = Some(v),
            _ => return None,
        }
    }
    Some((challenge?, mac?))
}

/// Whether `mac` signs this request for `challenge`, and `challenge` was pending (it is used
/// up either way).
pub fn verify_signed(
    challenges: &OneTime,
    token: &str,
    (challenge, mac): (&str, &str),
    method: &str,
    path: &str,
    body: &[u8],
) -> bool {
    challenges.redeem(challenge)
        && crate::api::same(
            request_mac(token, challenge, method, path, body).as_bytes(),
            mac.as_bytes(),
        )
}

/// Random one-time codes: login links (good for one session within [`LOGIN_LINK_TIME`]) and
/// request challenges.
pub struct OneTime {
    codes: Mutex<HashMap<String, Instant>>,
    lifetime: Duration,
    most: usize,
}

impl OneTime {
    pub fn logins() -> Self {
        Self::new(LOGIN_LINK_TIME, PENDING_LINKS)
    }

    pub fn challenges() -> Self {
        Self::new(CHALLENGE_TIME, PENDING_CHALLENGES)
    }

    fn new(lifetime: Duration, most: usize) -> Self {
        Self {
            codes: Mutex::default(),
            lifetime,
            most,
        }
    }

    /// A new code (the oldest pending one is dropped past the most pending).
    pub fn issue(&self) -> Result<String, getrandom::Error> {
        let code = nonce()?;
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        codes.retain(|_, expires| *expires > now);
        if codes.len() >= self.most
            && let Some(oldest) = codes
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(c, _)| c.clone())
        {
            codes.remove(&oldest);
        }
        codes.insert(code.clone(), now + self.lifetime);
        Ok(code)
    }

    /// Whether `code` was pending and unexpired; it is used up either way.
    pub fn redeem(&self, code: &str) -> bool {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
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

    /// A `Qyvol-Proof` header's value, signed by `token` for a new challenge of `challenges`.
    fn signed_for(
        challenges: &OneTime,
        token: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> String {
        let challenge = challenges.issue().expect("challenge");
        sign(token, &challenge, method, path, body)
    }

    fn params(header: &str) -> (&str, &str) {
        parse_signed(header.strip_prefix("Qyvol-Proof ").expect("scheme")).expect("parses")
    }

    #[test]
    fn a_signed_request_verifies_once_and_only_as_signed() {
        let challenges = OneTime::challenges();
        let (get, apps) = ("GET", "/api/v1/apps?all=true");
        let header = signed_for(&challenges, "tok", get, apps, b"");
        assert!(verify_signed(
            &challenges,
            "tok",
            params(&header),
            get,
            apps,
            b""
        ));
        assert!(
            !verify_signed(&challenges, "tok", params(&header), get, apps, b""),
            "a replay"
        );
        for (token, method, path, body) in [
            ("other", get, apps, &b""[..]),
            ("tok", "DELETE", apps, b""),
            ("tok", get, "/api/v1/node", b""),
            ("tok", get, apps, b"{}"),
        ] {
            let header = signed_for(&challenges, "tok", get, apps, b"");
            assert!(
                !verify_signed(&challenges, token, params(&header), method, path, body),
                "{token} {method} {path} {body:?}"
            );
        }
        // An unknown challenge, however well signed, is refused.
        let header = sign("tok", &nonce().expect("nonce"), get, apps, b"");
        assert!(!verify_signed(
            &challenges,
            "tok",
            params(&header),
            get,
            apps,
            b""
        ));
    }

    #[test]
    fn a_login_code_opens_one_session_only() {
        let logins = OneTime::logins();
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
