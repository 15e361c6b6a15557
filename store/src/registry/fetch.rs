//! Reading from a registry under bounds Qyvol sets rather than trusts: a manifest is cut at
//! 4 MiB while it streams (its `Content-Length` is checked first but never relied on) and must
//! arrive within the timeout; a blob is cut at its descriptor's size and whenever less than
//! 1 KiB arrives within the timeout (curl's and git's "low speed limit"), so a slow but moving
//! pull of a large module goes on while a stalled or trickling one ends.
//!
//! oci-client reads manifests and error bodies whole before anything can look at their size,
//! and follows any redirect and any token service a registry names, so pulls are made here
//! with reqwest, the HTTP client oci-client itself is built on (same TLS; credentials are
//! dropped on a redirect to another host or scheme), under Qyvol's rules for plain HTTP: the
//! token protocol (`Session::authenticate`) too. oci-client pushes.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use crate::bundle::Descriptor;
use oci_client::errors::OciEnvelope;
use reqwest::header::{ACCEPT, HeaderMap};

use super::failure::FetchError;
use super::pace::Pace;
use super::{ACCEPTED_MANIFESTS, Progress, Remote};
use crate::Reference;

/// No image manifest is larger (containerd and Docker cap them at 4 MiB too).
const MAX_MANIFEST: u64 = 4 << 20;
/// How much of an error answer is read for its message.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// How long Qyvol waits on a registry unless `QYVOL_REGISTRY_TIMEOUT` says otherwise: the whole
/// of a request that is not a blob, and the window in which a blob must move 1 KiB.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

enum Credentials {
    None,
    Bearer(String),
    Basic(String, String),
}

/// `localhost` or a loopback address (as a URL writes it: IPv6 in brackets).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `Bearer` challenge's token service and its `service` name.
struct Challenge {
    realm: String,
    service: Option<String>,
}

/// Parses `Bearer realm="...",service="...",scope="..."` (values quoted or not; a quoted value
/// may hold commas and `\"`); `None` for another scheme or no realm.
fn bearer_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut chars = params.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

/// Which redirects a pull follows: to HTTPS anywhere (registries send blobs to a CDN), but to
/// plain HTTP only on loopback unless `--insecure` allowed it, the rule the first request
/// follows; a registry cannot send the node to fetch `http://` addresses elsewhere (cloud
/// metadata, internal services) on its behalf.
fn redirects(insecure: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("more than 10 redirects");
        }
        let url = attempt.url();
        let host = url.host_str().unwrap_or_default().to_string();
        let scheme = url.scheme().to_string();
        let loopback = is_loopback(&host);
        match scheme.as_str() {
            "https" => attempt.follow(),
            "http" if loopback || insecure => attempt.follow(),
            "http" => attempt.error(format!(
                "the registry redirected to plain HTTP at `{host}`: refused (only loopback, or \
                 with --insecure)"
            )),
            other => attempt.error(format!("the registry redirected to a `{other}:` URL")),
        }
    })
}

/// A connection to one repository of a registry, authorised for pulling.
pub(super) struct Session {
    http: reqwest::Client,
    /// `scheme://registry/v2/repository`
    base: String,
    registry: String,
    credentials: Credentials,
    timeout: Duration,
}

impl Session {
    /// Opens a session and answers the registry's authentication challenge, each within the
    /// timeout.
    pub(super) async fn open(reference: &Reference, remote: &Remote) -> Result<Self, FetchError> {
        let registry = reference.resolve_registry().to_string();
        let timeout = remote.timeout;
        let http = reqwest::Client::builder()
            .user_agent(concat!("qyvol/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .redirect(redirects(remote.insecure))
            .build()
            .map_err(FetchError::from)?;
        let mut session = Self {
            http,
            base: format!(
                "{}://{registry}/v2/{}",
                remote.scheme(reference),
                reference.repository()
            ),
            registry,
            credentials: Credentials::None,
            timeout,
        };
        session.credentials = session.authenticate(reference, remote).await?;
        Ok(session)
    }

    /// Docker's token protocol, spoken with this session's client so its redirect rules hold
    /// for it too: `GET /v2/`; a `Bearer` challenge names a token service (`realm`), asked
    /// with the user's credentials for a pull token. The realm must be HTTPS, or plain HTTP on
    /// loopback or with `--insecure`, as the registry itself: a registry cannot send the
    /// node, or the user's password, to a plain-HTTP address elsewhere. No challenge, or
    /// another scheme: the credentials go with each request (Basic), as oci-client does.
    async fn authenticate(
        &self,
        reference: &Reference,
        remote: &Remote,
    ) -> Result<Credentials, FetchError> {
        let basic = || match &remote.credentials {
            Some(c) => Credentials::Basic(c.username.clone(), c.password.clone()),
            None => Credentials::None,
        };
        let root = format!("{}://{}/v2/", remote.scheme(reference), self.registry);
        let mut pace = Pace::deadline(self.timeout, "answer to authentication");
        let response = pace.wait(self.http.get(&root).send()).await??;
        let Some(challenge) = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer_challenge)
        else {
            return Ok(basic());
        };
        let realm = reqwest::Url::parse(&challenge.realm).map_err(|e| {
            FetchError::Http(format!(
                "the registry's token service `{}`: {e}",
                challenge.realm
            ))
        })?;
        let host = realm.host_str().unwrap_or_default().to_string();
        match realm.scheme() {
            "https" => {}
            "http" if is_loopback(&host) || remote.insecure => {}
            other => {
                return Err(FetchError::Http(format!(
                    "the registry's token service is `{other}:` at `{host}`: refused (plain HTTP \
                     only on loopback, or with --insecure)"
                )));
            }
        }
        let mut query = vec![(
            "scope",
            format!("repository:{}:pull", reference.repository()),
        )];
        if let Some(service) = challenge.service {
            query.push(("service", service));
        }
        let mut request = self.http.get(realm).query(&query);
        if let Some(c) = &remote.credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        let mut pace = Pace::deadline(self.timeout, "token");
        let mut response = self.answer(&mut pace, request.send()).await?;
        let mut body = Vec::new();
        while let Some(chunk) = pace.next(&mut response).await? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_ERROR_BODY {
                return Err(FetchError::Http(
                    "the registry's token answer is larger than 64 KiB".into(),
                ));
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&body).map_err(|e| {
            FetchError::Http(format!("the registry's token answer is not a token: {e}"))
        })?;
        token
            .token
            .or(token.access_token)
            .map(Credentials::Bearer)
            .ok_or_else(|| FetchError::Http("the registry's token answer has no token".into()))
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.credentials {
            Credentials::None => request,
            Credentials::Bearer(token) => request.bearer_auth(token),
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password)),
        }
    }

    /// The manifest `reference` names, at most 4 MiB, and the digest the registry gives for it.
    pub(super) async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, Option<String>), FetchError> {
        self.manifest_of(reference, &ACCEPTED_MANIFESTS).await
    }

    /// [`Session::manifest`], accepting the media types `accept` (e.g. indexes too, to see
    /// whatever a tag holds).
    pub(super) async fn manifest_of(
        &self,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let name = reference.digest().or(reference.tag()).unwrap_or("latest");
        let mut pace = Pace::deadline(self.timeout, "manifest");
        let request = self
            .get(&format!("{}/manifests/{name}", self.base))
            .header(ACCEPT, accept.join(", "));
        let mut response = self.answer(&mut pace, request.send()).await?;
        if let Some(n) = response.content_length().filter(|&n| n > MAX_MANIFEST) {
            return Err(FetchError::ManifestAnnounced(n));
        }
        let digest = docker_digest(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = pace.next(&mut response).await? {
            if (body.len() + chunk.len()) as u64 > MAX_MANIFEST {
                return Err(FetchError::ManifestTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, digest))
    }

    /// Streams the blob `desc` into `out`, cut at the descriptor's size and when it stalls.
    pub(super) async fn blob(
        &self,
        desc: &Descriptor,
        out: &mut dyn Write,
        progress: Option<(&dyn Progress, usize)>,
    ) -> Result<(), FetchError> {
        let mut pace = Pace::rate(self.timeout, desc.size);
        let request = self.get(&format!("{}/blobs/{}", self.base, desc.digest));
        let mut response = self.answer(&mut pace, request.send()).await?;
        if let Some(announced) = response.content_length().filter(|&n| n > desc.size) {
            return Err(FetchError::BlobAnnounced {
                announced,
                size: desc.size,
            });
        }
        let mut written = 0u64;
        while let Some(chunk) = pace.next(&mut response).await? {
            written += chunk.len() as u64;
            if written > desc.size {
                return Err(FetchError::BlobTooLarge(desc.size));
            }
            out.write_all(&chunk).map_err(FetchError::Store)?;
            if let Some((p, id)) = progress {
                p.advance(id, chunk.len() as u64);
            }
        }
        Ok(())
    }

    /// The response to `request` once its head is in and says 200; anything else becomes an
    /// error carrying the registry's own message (read within bounds).
    async fn answer(
        &self,
        pace: &mut Pace,
        request: impl Future<Output = reqwest::Result<reqwest::Response>>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut response = pace.wait(request).await??;
        let status = response.status();
        if status == reqwest::StatusCode::OK {
            return Ok(response);
        }
        let mut body = Vec::new();
        while let Some(chunk) = pace.next(&mut response).await? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 >= MAX_ERROR_BODY {
                break;
            }
        }
        let message = match serde_json::from_slice::<OciEnvelope>(&body) {
            Ok(envelope) => envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
            Err(_) => String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        };
        let text = format!("the registry answered {status}: {message}");
        Err(if status == reqwest::StatusCode::UNAUTHORIZED {
            FetchError::Unauthorized(text, self.registry.clone())
        } else if status == reqwest::StatusCode::NOT_FOUND {
            FetchError::NotFound(text)
        } else {
            FetchError::Status(text)
        })
    }
}

/// The registry's `Docker-Content-Digest`, when it is a sha256 digest Qyvol can check.
fn docker_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_with_quoted_commas() {
        let c = bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .expect("a challenge");
        assert_eq!(c.realm, "https://auth.example/token");
        assert_eq!(c.service.as_deref(), Some("registry.example"));
        let bare = bearer_challenge("bearer realm=http://127.0.0.1:5000/t").expect("unquoted");
        assert_eq!(bare.realm, "http://127.0.0.1:5000/t");
        assert!(bearer_challenge(r#"Basic realm="x""#).is_none());
        assert!(bearer_challenge("Bearer service=x").is_none());
    }
}
