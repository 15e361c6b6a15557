//! Opening a private signing key, as `build --sign`, `push --sign` and `sign` do, with its
//! password from `QYVOL_KEY_PASSWORD` or stdin; and the exit code of each way that can fail.

use std::io::BufRead;
use std::path::Path;

use qyvol_store::trust::{Signer, TrustError};
use zeroize::Zeroizing;

use crate::exit::{Code, Failure};
use crate::i18n::Msg;

impl From<TrustError> for Failure {
    fn from(e: TrustError) -> Self {
        match &e {
            TrustError::ReadKey { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Failure::new(Code::MissingFile, Msg::MissingFile, e)
            }
            TrustError::EmptyPassword => Failure::new(Code::Usage, Msg::BadFlag, e),
            TrustError::Crypto(_) => Failure::internal(e),
            _ => Failure::new(Code::Denied, Msg::BadKey, e),
        }
    }
}

/// The key's password: `QYVOL_KEY_PASSWORD`, else the first line of stdin.
pub(super) fn password() -> Result<Zeroizing<String>, Failure> {
    if let Ok(p) = std::env::var("QYVOL_KEY_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::Read::take(std::io::stdin().lock(), 4096)
        .read_line(&mut line)
        .map_err(Failure::internal)?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

/// The private key at `key`, opened with the password (stdin or `QYVOL_KEY_PASSWORD`).
pub(super) fn signer(key: &Path) -> Result<Signer, Failure> {
    Ok(Signer::load(key, password()?.as_bytes())?)
}
