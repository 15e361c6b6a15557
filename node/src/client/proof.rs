//! The server's proof, on each new connection, that it holds the token (see `access`), before
//! a request goes out signed for the challenge it gave: the token itself never travels.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use super::{ClientError, Endpoint};

/// How long a server may take to prove itself.
const PROOF_TIME: Duration = Duration::from_secs(10);

/// What went wrong on a connection, before the endpoint is named.
pub(super) enum Fault {
    Io(String),
    Impostor(String),
}

impl Fault {
    pub(super) fn at(self, endpoint: &Endpoint) -> ClientError {
        match self {
            Self::Io(reason) => ClientError::Unreachable {
                endpoint: endpoint.to_string(),
                reason,
            },
            Self::Impostor(reason) => ClientError::Impostor {
                endpoint: endpoint.to_string(),
                reason,
            },
        }
    }
}

/// Sends `req` on a new connection. With `proof` (the token, the `Host` to ask and the body),
/// the server must first prove on this same connection that it holds the token (see
/// `access`); then `req` goes out signed for the challenge it gave. The token never does.
pub(super) async fn exchange<IO>(
    io: IO,
    proof: Option<(&str, &str, &Bytes)>,
    mut req: Request<Full<Bytes>>,
) -> Result<(hyper::Response<hyper::body::Incoming>, Option<String>), Fault>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| Fault::Io(e.to_string()))?;
    tokio::spawn(conn);
    let mut signed_for = None;
    if let Some((token, host, body)) = proof {
        let challenge = tokio::time::timeout(PROOF_TIME, prove(&mut sender, token, host))
            .await
            .map_err(|_| {
                Fault::Impostor(format!(
                    "it gave no proof within {} s",
                    PROOF_TIME.as_secs()
                ))
            })??;
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
        let signed = crate::access::sign(token, &challenge, req.method().as_str(), &path, body);
        let signed =
            hyper::header::HeaderValue::from_str(&signed).map_err(|e| Fault::Io(e.to_string()))?;
        req.headers_mut()
            .insert(hyper::header::AUTHORIZATION, signed);
        sender.ready().await.map_err(|e| Fault::Io(e.to_string()))?;
        signed_for = Some(challenge);
    }
    let answer = sender
        .send_request(req)
        .await
        .map_err(|e| Fault::Io(e.to_string()))?;
    Ok((answer, signed_for))
}

/// Asks the server to prove it holds `token`; the challenge it gave with a right proof.
async fn prove(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    token: &str,
    host: &str,
) -> Result<String, Fault> {
    let nonce = crate::access::nonce().map_err(|e| Fault::Io(e.to_string()))?;
    let ask = Request::builder()
        .uri(format!("{}?nonce={nonce}", crate::access::PROOF_PATH))
        .header(hyper::header::HOST, host)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Fault::Io(e.to_string()))?;
    let answer = sender
        .send_request(ask)
        .await
        .map_err(|e| Fault::Io(e.to_string()))?;
    let status = answer.status();
    // A proof is a small JSON object: read no more than a few KiB.
    let body = http_body_util::Limited::new(answer.into_body(), 4096)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let given: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !status.is_success() {
        // Nothing unproven is shown as the node's words: a refusal of the Host gets a fixed
        // hint of our own.
        return Err(Fault::Impostor(
            if given["code"].as_str() == Some("bad-host") {
                format!(
                    "it refused the Host `{host}`; if it is your node, start it with `qyvol node \
                 --api-host` naming that host"
                )
            } else {
                format!("it answered {status} when asked to prove it holds the token")
            },
        ));
    }
    let proof = given["proof"].as_str().unwrap_or_default();
    let challenge = given["challenge"].as_str().unwrap_or_default();
    if !crate::access::is_nonce(challenge)
        || !crate::access::verify(token, &nonce, challenge, proof)
    {
        return Err(Fault::Impostor("its proof of the token is wrong".into()));
    }
    Ok(challenge.to_string())
}

pub(super) fn answer_signature(response: &hyper::Response<hyper::body::Incoming>) -> String {
    response
        .headers()
        .get(crate::access::ANSWER_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
