//! `ADD <url>`: downloading a source over plain HTTP, with `--checksum`.
//!
//! A deliberately small HTTP/1.0 client on `std::net` (GET, `Connection:
//! close`, status 200 only, a size cap). https needs a TLS stack, which is not
//! built in yet: such URLs get a clear error. Not here: where the file goes in
//! the image (the executor) or caching (the content digest is in the key).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest download accepted.
pub const MAX_DOWNLOAD: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("failed to fetch {url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("failed to fetch {url}: https is not supported yet (no TLS stack built in)")]
    Https { url: String },
    #[error("failed to verify {url}: --checksum wants {expected}, the download is {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
}

/// The last path segment of a URL, the file name ADD gives it under a
/// directory destination.
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    match after_host.split_once('/') {
        Some((_, p)) => p.rsplit('/').next().unwrap_or("").to_owned(),
        None => String::new(),
    }
}

/// Downloads `url` (http only) and returns its bytes.
///
/// # Errors
/// An unsupported scheme, a connection or protocol error, a status other
/// than 200, or a body over [`MAX_DOWNLOAD`].
pub fn fetch(url: &str) -> Result<Vec<u8>, FetchError> {
    let fail = |reason: String| FetchError::Failed {
        url: url.to_owned(),
        reason,
    };
    if url.starts_with("https://") {
        return Err(FetchError::Https {
            url: url.to_owned(),
        });
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs are supported".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or(path);
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&addr).map_err(|e| fail(e.to_string()))?;
    let timeout = Some(Duration::from_secs(60));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    // One write: a request split over segments can race a server that
    // answers after its first read and closes (a reset loses the reply).
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: kiln\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .take(MAX_DOWNLOAD + 64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| fail(e.to_string()))?;
    let end = memchr::memmem::find(&response, b"\r\n\r\n")
        .ok_or_else(|| fail("malformed HTTP response".into()))?;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(fail(format!("server answered {status:?}")));
    }
    let body = response.split_off(end + 4);
    if body.len() as u64 > MAX_DOWNLOAD {
        return Err(fail(format!("larger than {MAX_DOWNLOAD} bytes")));
    }
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if let Some(n) = length {
        if n != body.len() {
            return Err(fail(format!("truncated: {} of {n} bytes", body.len())));
        }
    }
    Ok(body)
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
    fn https_is_refused_clearly() {
        assert!(matches!(
            fetch("https://example.invalid/x"),
            Err(FetchError::Https { .. })
        ));
    }
}
