//! Who may reach the node over TCP, beyond its token: the proof a node gives before a client
//! uses the token, the signatures that stand in for the token on each request and answer, and
//! the one-time login links that open a dashboard session.
//!
//! A TCP port is not an identity: when the node is not running (or, before it bound both
//! loopback families, on `[::1]`), another local user can listen on the printed port. So a
//! client first sends a random nonce, and the server must answer with a challenge kept by that
//! connection and an HMAC of both keyed by the token, which only the real node can compute (the
//! challenge is in it, so a relay cannot swap in one it recorded earlier, with its answers).
//! A server that merely relays to the real node could pass that check, so the client never
//! sends the token at all: its request carries an HMAC, keyed by the token, of the challenge,
//! the method, the path and the body's digest (`Authorization: Qyvol-Proof challenge=…,
//! mac=…`), which the node accepts once, on that connection; the node's answer carries an
//! HMAC of the challenge, its status and its body (`Qyvol-Proof-Answer`), which the client
//! checks; each line of a streamed answer (logs, events) carries an HMAC of the challenge, its
//! number and its digest, and the stream's end is signed too. A relay can pass on what it was
//! given, and read it (plain HTTP), never forge, change, reorder or replay it, nor cut a stream
//! short unnoticed. A browser cannot run such a check on a page the server itself serves,
//! so the dashboard never asks for the token: `qyvol dashboard` asks the node (through its
//! Unix socket, or over TCP after the proof) for a one-time link, which opens a session only
//! with a verifier that never crossed the wire (the request carries its digest).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The proof's path on the TCP API (answered without the token).
pub const PROOF_PATH: &str = "/api/v1/proof";
/// How long a login link works, and how many may be pending at once.
pub const LOGIN_LINK_TIME: Duration = Duration::from_secs(300);
const PENDING_LINKS: usize = 16;
/// How long a connection's challenge works.
const CHALLENGE_TIME: Duration = Duration::from_secs(60);
/// The `Authorization` scheme of a signed request.
pub const SIGNED: &str = "Qyvol-Proof";
/// The header of a signed answer.
pub const ANSWER_HEADER: &str = "qyvol-proof-answer";

/// 32 random bytes, hex: a nonce, a challenge, a login code, a verifier.
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Whether `nonce` has the shape [`nonce`] gives (64 lowercase hex digits): the node computes
/// proofs for nothing else.
pub fn is_nonce(nonce: &str) -> bool {
    nonce.len() == 64
        && nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// SHA-256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Constant-time equality, so a wrong token's answer does not tell how much of it was right.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// HMAC-SHA256 keyed by the token of `label` and each part, hex.
fn mac(token: &str, label: &str, parts: &[&str]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(label.as_bytes());
    for part in parts {
        mac.update(b"\n");
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The node's proof that it holds `token`, for a client's `nonce` and the `challenge` it gives
/// with it: so the challenge, which every later signature of the exchange covers, is bound to
/// the client's fresh nonce, and a relay cannot hand the client a challenge it recorded before
/// (and then the answers it recorded for it).
pub fn proof(token: &str, nonce: &str, challenge: &str) -> String {
    mac(token, "qyvol node proof v2", &[nonce, challenge])
}

/// Whether `answer` is the proof of `nonce` and `challenge` for `token` (in constant time).
pub fn verify(token: &str, nonce: &str, challenge: &str, answer: &str) -> bool {
    same(
        proof(token, nonce, challenge).as_bytes(),
        answer.trim().as_bytes(),
    )
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
    mac(
        token,
        "qyvol request v1",
        &[challenge, method, path, &digest(body)],
    )
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

/// The node's signature of its answer to a request signed for `challenge`.
pub fn sign_answer(token: &str, challenge: &str, status: u16, body: &[u8]) -> String {
    mac(
        token,
        "qyvol answer v1",
        &[challenge, &status.to_string(), &digest(body)],
    )
}

/// The node's signature of line `seq` (from 0) of a stream answering a request signed for
/// `challenge`; `None` is the stream's end, which the node signs too, so a stream cut short by
/// a relay is told from one the node ended.
pub fn sign_line(token: &str, challenge: &str, seq: u64, line: Option<&[u8]>) -> String {
    let what = line.map_or_else(|| "end".to_string(), |l| format!("line {}", digest(l)));
    mac(
        token,
        "qyvol stream v1",
        &[challenge, &seq.to_string(), &what],
    )
}

/// Whether `given` signs line `seq` (or the end) of that stream (in constant time).
pub fn verify_line(
    token: &str,
    challenge: &str,
    seq: u64,
    line: Option<&[u8]>,
    given: &str,
) -> bool {
    same(
        sign_line(token, challenge, seq, line).as_bytes(),
        given.as_bytes(),
    )
}

/// Whether `given` signs this answer (in constant time).
pub fn verify_answer(token: &str, challenge: &str, status: u16, body: &[u8], given: &str) -> bool {
    same(
        sign_answer(token, challenge, status, body).as_bytes(),
        given.as_bytes(),
    )
}

/// The challenge a connection's last proof gave, until a request uses it: a request is
/// accepted only on the connection that asked for the proof, once, so a challenge cannot be
/// replayed elsewhere or crowded out by other clients. Also tells the connection's keeper when
/// a request on it proved it is the owner's (see `api::Strangers`).
#[derive(Clone, Default)]
pub struct Pending(
    Arc<Mutex<Option<(String, Instant)>>>,
    Arc<tokio::sync::Notify>,
);

impl Pending {
    /// A request on this connection carried the token, a valid signature or a live session.
    pub fn trust(&self) {
        self.1.notify_one();
    }

    /// Resolves once [`Pending::trust`] was called.
    pub async fn trusted(&self) {
        self.1.notified().await;
    }

    /// A new challenge for this connection (replacing one not used).
    pub fn issue(&self) -> Result<String, getrandom::Error> {
        let challenge = nonce()?;
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((challenge.clone(), Instant::now() + CHALLENGE_TIME));
        Ok(challenge)
    }

    /// Whether `challenge` is this connection's, unexpired (it is kept for [`Pending::take`]).
    pub fn holds(&self, challenge: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|(c, expires)| {
                *expires > Instant::now() && same(c.as_bytes(), challenge.as_bytes())
            })
    }

    /// This connection's challenge, used up.
    pub fn take(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(c, _)| c)
    }
}

/// Whether `mac` signs this request for `challenge`, which must be `pending`'s (it is used up
/// either way).
pub fn verify_signed(
    pending: &Pending,
    token: &str,
    (challenge, mac): (&str, &str),
    method: &str,
    path: &str,
    body: &[u8],
) -> bool {
    pending
        .take()
        .is_some_and(|c| same(c.as_bytes(), challenge.as_bytes()))
        && same(
            request_mac(token, challenge, method, path, body).as_bytes(),
            mac.as_bytes(),
        )
}

/// One-time login codes, each good for one session within [`LOGIN_LINK_TIME`], and only with
/// the verifier whose digest the link's request carried.
#[derive(Default)]
pub struct Logins(Mutex<HashMap<String, (Instant, String)>>);

impl Logins {
    /// A new code for the verifier of digest `verifier` (the oldest pending code is dropped
    /// past [`PENDING_LINKS`]).
    pub fn issue(&self, verifier: &str) -> Result<String, getrandom::Error> {
        let code = nonce()?;
        let mut codes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        codes.retain(|_, (expires, _)| *expires > now);
        if codes.len() >= PENDING_LINKS
            && let Some(oldest) = codes
                .iter()
                .min_by_key(|(_, (e, _))| *e)
                .map(|(c, _)| c.clone())
        {
            codes.remove(&oldest);
        }
        codes.insert(code.clone(), (now + LOGIN_LINK_TIME, verifier.to_string()));
        Ok(code)
    }

    /// Whether `code` was pending, unexpired and issued for `verifier` (whose digest the link's
    /// request carried); it is used up either way.
    pub fn redeem(&self, code: &str, verifier: &str) -> bool {
        let mut codes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        codes.remove(code).is_some_and(|(expires, wanted)| {
            expires > Instant::now()
                && same(digest(verifier.as_bytes()).as_bytes(), wanted.as_bytes())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_for_its_token_nonce_and_challenge() {
        let (n, c) = (nonce().expect("nonce"), nonce().expect("challenge"));
        let p = proof("token-a", &n, &c);
        assert!(verify("token-a", &n, &c, &p));
        assert!(!verify("token-b", &n, &c, &p));
        assert!(!verify("token-a", &nonce().expect("nonce"), &c, &p));
        assert!(!verify(
            "token-a",
            &n,
            &nonce().expect("another challenge"),
            &p
        ));
        assert!(!verify("token-a", &n, &c, ""));
    }

    fn params(header: &str) -> (&str, &str) {
        parse_signed(header.strip_prefix("Qyvol-Proof ").expect("scheme")).expect("parses")
    }

    #[test]
    fn a_signed_request_verifies_once_on_its_connection_and_only_as_signed() {
        let (get, apps) = ("GET", "/api/v1/apps?all=true");
        let conn = Pending::default();
        let header = sign("tok", &conn.issue().expect("challenge"), get, apps, b"");
        assert!(verify_signed(&conn, "tok", params(&header), get, apps, b""));
        assert!(
            !verify_signed(&conn, "tok", params(&header), get, apps, b""),
            "a replay"
        );
        for (token, method, path, body) in [
            ("other", get, apps, &b""[..]),
            ("tok", "DELETE", apps, b""),
            ("tok", get, "/api/v1/node", b""),
            ("tok", get, apps, b"{}"),
        ] {
            let header = sign("tok", &conn.issue().expect("challenge"), get, apps, b"");
            assert!(
                !verify_signed(&conn, token, params(&header), method, path, body),
                "{token} {method} {path} {body:?}"
            );
        }
        // Another connection's challenge, however well signed, is refused here.
        let other = Pending::default();
        let header = sign("tok", &other.issue().expect("challenge"), get, apps, b"");
        conn.issue().expect("challenge");
        assert!(!verify_signed(
            &conn,
            "tok",
            params(&header),
            get,
            apps,
            b""
        ));
    }

    #[test]
    fn an_answer_verifies_only_as_signed() {
        let s = sign_answer("tok", "c", 200, b"[]");
        assert!(verify_answer("tok", "c", 200, b"[]", &s));
        assert!(!verify_answer("tok", "c", 201, b"[]", &s));
        assert!(!verify_answer("tok", "c", 200, b"[{}]", &s));
        assert!(!verify_answer("tok", "d", 200, b"[]", &s));
        assert!(!verify_answer("other", "c", 200, b"[]", &s));
    }

    #[test]
    fn a_login_code_opens_one_session_only_with_its_verifier() {
        let logins = Logins::default();
        let verifier = nonce().expect("verifier");
        let code = logins.issue(&digest(verifier.as_bytes())).expect("code");
        assert!(!logins.redeem("not-a-code", &verifier));
        assert!(!logins.redeem(&code, "not-the-verifier"), "wrong verifier");
        assert!(!logins.redeem(&code, &verifier), "used up by the wrong try");
        let code = logins.issue(&digest(verifier.as_bytes())).expect("code");
        assert!(logins.redeem(&code, &verifier));
        assert!(!logins.redeem(&code, &verifier), "used up");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }

    #[test]
    fn nonces_are_64_lowercase_hex_digits() {
        assert!(is_nonce(&nonce().expect("nonce")));
        assert!(!is_nonce("ABC"));
        assert!(!is_nonce(&"g".repeat(64)));
    }
}
