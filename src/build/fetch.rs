//! `ADD <url>`: downloading a source over http or https, with `--checksum`.
//!
//! The client is `ureq` with rustls: redirects are followed (up to 10, as
//! Go's client in BuildKit), any final status but 200 is an error, and the
//! body is capped at [`MAX_DOWNLOAD`]. The `Last-Modified` header, when the
//! server sends one, becomes the file's mtime, as docker does.
//!
//! Trusted roots: the system bundle (`SSL_CERT_FILE`, else Debian's
//! `/etc/ssl/certs/ca-certificates.crt`), else the bundled Mozilla roots;
//! plus every certificate in the PEM file `KILN_EXTRA_CA_CERTS` names (a
//! private CA, or a test's self-signed server). Proxies come from the usual
//! `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` variables.
//!
//! Not here: where the file goes in the image (the executor) or caching (the
//! content digest is in the key).

use std::path::PathBuf;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Largest download accepted.
pub const MAX_DOWNLOAD: u64 = 1 << 30;

/// Redirects followed before giving up.
const MAX_REDIRECTS: u32 = 10;

/// Where Debian (and most distributions) keep the system CA bundle.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("failed to fetch {url}: only http:// and https:// URLs are supported")]
    Scheme { url: String },
    #[error("failed to fetch {url}")]
    Request {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("failed to fetch {url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("failed to fetch {url}: larger than {MAX_DOWNLOAD} bytes")]
    TooLarge { url: String },
    #[error("failed to read CA certificates from {} (named by {var})", path.display())]
    Certs {
        var: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read CA certificates from {} (named by {var}): no certificate in it", path.display())]
    NoCerts { var: &'static str, path: PathBuf },
    #[error("failed to verify {url}: --checksum wants {expected}, the download is {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub bytes: Vec<u8>,
    /// `Last-Modified`, seconds since the epoch, when sent and valid.
    pub last_modified: Option<i64>,
}

/// The last path segment of a URL, the file name ADD gives it under a
/// directory destination.
#[must_use]
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    match after_host.split_once('/') {
        Some((_, p)) => p.rsplit('/').next().unwrap_or("").to_owned(),
        None => String::new(),
    }
}

/// Downloads `url` (http or https) and returns its bytes.
///
/// # Errors
/// An unsupported scheme, unreadable CA files, a connection, TLS or
/// protocol error, a final status other than 200, or a body over
/// [`MAX_DOWNLOAD`].
pub fn fetch(url: &str) -> Result<Download, FetchError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::Scheme {
            url: url.to_owned(),
        });
    }
    let request = |source: ureq::Error| FetchError::Request {
        url: url.to_owned(),
        source: Box::new(source),
    };
    let tls = TlsConfig::builder().root_certs(root_certs()?).build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .max_redirects(MAX_REDIRECTS)
        .http_status_as_error(false)
        .user_agent("kiln")
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(request)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let last_modified = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge {
                url: url.to_owned(),
            },
            other => request(other),
        })?;
    Ok(Download {
        bytes,
        last_modified,
    })
}

/// The roots a download trusts (see the module docs).
fn root_certs() -> Result<RootCerts, FetchError> {
    let extra = env_path("KILN_EXTRA_CA_CERTS");
    let system = env_path("SSL_CERT_FILE")
        .map(|p| ("SSL_CERT_FILE", p))
        .or_else(|| {
            let p = PathBuf::from(SYSTEM_BUNDLE);
            p.is_file().then_some(("the system bundle", p))
        });
    if extra.is_none() && system.is_none() {
        return Ok(RootCerts::WebPki);
    }
    let mut certs = Vec::new();
    if let Some((var, path)) = system {
        certs.extend(read_pem(var, &path)?);
    }
    if let Some(path) = extra {
        certs.extend(read_pem("KILN_EXTRA_CA_CERTS", &path)?);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn read_pem(var: &'static str, path: &PathBuf) -> Result<Vec<Certificate<'static>>, FetchError> {
    let pem = std::fs::read(path).map_err(|source| FetchError::Certs {
        var,
        path: path.clone(),
        source,
    })?;
    // Unparsable sections are skipped, as OpenSSL skips them in a bundle.
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(FetchError::NoCerts {
            var,
            path: path.clone(),
        });
    }
    Ok(certs)
}

/// Checks `bytes` against `--checksum=sha256:<hex>`.
///
/// # Errors
/// A checksum in another algorithm or a mismatch.
pub fn verify(url: &str, expected: &str, bytes: &[u8]) -> Result<(), FetchError> {
    use sha2::{Digest as _, Sha256};
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if !expected.starts_with("sha256:") || expected != actual {
        return Err(FetchError::Checksum {
            url: url.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_is_the_last_path_segment() {
        assert_eq!(file_name("http://h:1/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("http://h/"), "");
        assert_eq!(file_name("http://h"), "");
    }

    #[test]
    fn other_schemes_are_refused_clearly() {
        assert!(matches!(
            fetch("ftp://example.invalid/x"),
            Err(FetchError::Scheme { .. })
        ));
    }
}
