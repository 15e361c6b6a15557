//! The client's calls: one request on a new connection, its answer read whole or line by line,
//! and over TCP every answer checked as signed by the node.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};

use super::proof::{answer_signature, exchange};
use super::{Answer, Client, ClientError, Endpoint};

/// Beyond the node's own time for a call, for the answer to travel.
const ANSWER_GRACE: Duration = Duration::from_secs(10);

impl Client {
    /// Sends one request; the answer, with the challenge it was signed for over TCP (its
    /// answer must then be signed for it too).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Option<String>), ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            endpoint: self.endpoint.to_string(),
            reason,
        };
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp { authority, .. } => authority.clone(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host);
        let bytes = match body {
            Some(v) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(v).map_err(|e| ClientError::Protocol(e.to_string()))?,
                )
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes.clone()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let io = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                exchange(io, None, req)
                    .await
                    .map_err(|e| e.at(&self.endpoint))
            }
            Endpoint::Tcp { authority, token } => {
                let io = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let proof = token.as_deref().map(|t| (t, authority.as_str(), &bytes));
                exchange(io, proof, req)
                    .await
                    .map_err(|e| e.at(&self.endpoint))
            }
        }
    }

    /// One call; an error status becomes [`ClientError::Api`] with the node's message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ClientError> {
        // The node answers within its own time for the call (or says it gave up); a server
        // that keeps the CLI waiting past that is not doing the node's work.
        let limit = crate::api::call_time(&method, path) + ANSWER_GRACE;
        let call = async {
            let (response, challenge) = self.send(method, path, body).await?;
            Ok::<_, ClientError>((challenge, whole(response).await?))
        };
        let (challenge, (status, bytes, signature)) = tokio::time::timeout(limit, call)
            .await
            .map_err(|_| self.silent(limit))??;
        self.verify_answer(challenge, status, &bytes, &signature)?;
        check(status, &bytes)?;
        Ok((status, bytes))
    }

    /// The error for a server that did not answer within `limit`.
    fn silent(&self, limit: Duration) -> ClientError {
        ClientError::Unreachable {
            endpoint: self.endpoint.to_string(),
            reason: format!("no whole answer within {} s", limit.as_secs()),
        }
    }

    /// Over TCP, an answer counts only signed by the node for its request's challenge: a relay
    /// cannot make up or change one.
    fn verify_answer(
        &self,
        challenge: Option<String>,
        status: StatusCode,
        bytes: &[u8],
        signature: &str,
    ) -> Result<(), ClientError> {
        match (challenge, &self.endpoint) {
            (
                Some(challenge),
                Endpoint::Tcp {
                    token: Some(token), ..
                },
            ) if !crate::access::verify_answer(
                token,
                &challenge,
                status.as_u16(),
                bytes,
                signature,
            ) =>
            {
                Err(ClientError::Impostor {
                    endpoint: self.endpoint.to_string(),
                    reason: "its answer is not signed by the node".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// A call whose answer is a JSON value of type `T`.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let (_, bytes) = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("the node's answer is not understood: {e}")))
    }

    /// A streaming GET (logs, events): `each` gets every complete line until the stream ends
    /// or `each` returns false. The stream must start within the call's time, and, with
    /// `idle`, no wait between two of its pieces may be longer (a stream that is followed may
    /// rightly be quiet for hours).
    pub async fn lines(
        &self,
        path: &str,
        idle: Option<Duration>,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), ClientError> {
        let limit = crate::api::call_time(&Method::GET, path) + ANSWER_GRACE;
        let (response, challenge) = tokio::time::timeout(limit, self.send(Method::GET, path, None))
            .await
            .map_err(|_| self.silent(limit))??;
        let status = response.status();
        if !status.is_success() {
            let (status, bytes, signature) = whole(response).await?;
            self.verify_answer(challenge, status, &bytes, &signature)?;
            check(status, &bytes)?;
            return Ok(());
        }
        // Over TCP each line is signed for the request's challenge, and so is the end.
        let mut signed = match (challenge, &self.endpoint) {
            (
                Some(challenge),
                Endpoint::Tcp {
                    token: Some(token), ..
                },
            ) => Some(StreamCheck {
                token: token.clone(),
                challenge,
                seq: 0,
                ended: false,
            }),
            _ => None,
        };
        let impostor = |reason: &str| ClientError::Impostor {
            endpoint: self.endpoint.to_string(),
            reason: reason.into(),
        };
        let mut body = response.into_body();
        let mut pending = Vec::new();
        loop {
            let next = match idle {
                Some(idle) => tokio::time::timeout(idle, body.frame())
                    .await
                    .map_err(|_| self.silent(idle))?,
                None => body.frame().await,
            };
            let Some(frame) = next else {
                break;
            };
            let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                pending.extend_from_slice(data);
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let line = match &mut signed {
                        None => Some(&pending[..i]),
                        Some(check) => check.line(&pending[..i]).ok_or_else(|| {
                            impostor("a line of its stream is not signed by the node")
                        })?,
                    };
                    if let Some(line) = line
                        && !each(line)
                    {
                        return Ok(());
                    }
                    pending.drain(..=i);
                }
            }
        }
        if signed.is_some_and(|c| !c.ended) {
            return Err(impostor("its stream ended before the node ended it"));
        }
        Ok(())
    }
}

/// An answer read whole: its status, body and signature (empty when unsigned).
async fn whole(
    response: hyper::Response<hyper::body::Incoming>,
) -> Result<(StatusCode, Bytes, String), ClientError> {
    let status = response.status();
    let signature = answer_signature(&response);
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?
        .to_bytes();
    Ok((status, bytes, signature))
}

/// Checks a signed stream's lines in order (see `access::sign_line`).
struct StreamCheck {
    token: String,
    challenge: String,
    seq: u64,
    ended: bool,
}

impl StreamCheck {
    /// The line without its signature (`Some(None)` for the signed end), or `None` if the
    /// signature is wrong or the stream went on after its end.
    fn line<'a>(&mut self, signed: &'a [u8]) -> Option<Option<&'a [u8]>> {
        if self.ended {
            return None;
        }
        let (mac, line) = match signed.iter().position(|b| *b == b' ') {
            Some(i) => (&signed[..i], Some(&signed[i + 1..])),
            None => (signed, None),
        };
        let mac = std::str::from_utf8(mac).ok()?;
        if !crate::access::verify_line(&self.token, &self.challenge, self.seq, line, mac) {
            return None;
        }
        self.seq += 1;
        self.ended = line.is_none();
        Some(line)
    }
}

fn check(status: StatusCode, bytes: &[u8]) -> Result<(), ClientError> {
    if status.is_success() {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    Err(ClientError::Api {
        status: status.as_u16(),
        code: v["code"].as_str().unwrap_or("error").to_string(),
        message: v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the node answered {status}")),
    })
}
