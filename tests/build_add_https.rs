//! `ADD <https url>` against a loopback HTTPS server started here with a
//! self-signed certificate (rcgen): untrusted until `KILN_EXTRA_CA_CERTS`
//! names it, then redirects are followed, `--checksum` is checked, the
//! server's `Last-Modified` becomes the file's mtime, and a 404 is a clear
//! error. Nothing leaves the loopback interface.

mod image_support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use image_support::{sha256, stderr};

const BODY: &[u8] = b"payload over tls\n";
/// Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example date).
const LAST_MODIFIED: i64 = 784_111_777;

/// Starts the server; returns its base URL and the PEM of its certificate.
fn serve_https() -> (String, String) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let certs = vec![rustls::pki_types::CertificateDer::from(cert.der().to_vec())];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key_pair.serialize_der(),
    ));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let reply: Vec<u8> = match path.as_str() {
                    "/redirect" => b"HTTP/1.1 302 Found\r\nLocation: /files/pkg.txt\r\n\
                        Content-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                    "/files/pkg.txt" => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\
                             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                             Connection: close\r\n\r\n",
                            BODY.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(BODY);
                        r
                    }
                    _ => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = tls.write_all(&reply);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (format!("https://{addr}"), cert.pem())
}

fn kiln_build(root: &Path, ctx: &Path, extra_ca: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("--root")
        .arg(root)
        .args(["build", "--progress=plain"])
        .args(args)
        .arg(ctx)
        .env_remove("SSL_CERT_FILE")
        .env_remove("KILN_EXTRA_CA_CERTS")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    if let Some(ca) = extra_ca {
        cmd.env("KILN_EXTRA_CA_CERTS", ca);
    }
    cmd.output().unwrap()
}

#[test]
fn add_https_url_needs_a_trusted_certificate_then_downloads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    let (base, pem) = serve_https();
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, pem).unwrap();
    let good = sha256(BODY);
    let dockerfile = |checksum: &str, path: &str| {
        fs::write(
            ctx.join("Dockerfile"),
            format!("FROM scratch\nADD --checksum={checksum} {base}{path} /dl/pkg.txt\n"),
        )
        .unwrap();
    };

    // Self-signed and not trusted: refused, and the error says why.
    dockerfile(&good, "/redirect");
    let out = kiln_build(&root, &ctx, None, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed to fetch") && stderr(&out).contains("certificate"),
        "{}",
        stderr(&out)
    );

    // Trusted through KILN_EXTRA_CA_CERTS: the redirect is followed.
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    let out = kiln_build(&root, &ctx, Some(&ca), &["-o", &spec]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = out_dir.join("dl/pkg.txt");
    assert_eq!(fs::read(&file).unwrap(), BODY);
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(
        meta.mode() & 0o777,
        0o600,
        "downloads are 0600 as in docker"
    );
    assert_eq!(
        meta.mtime(),
        LAST_MODIFIED,
        "mtime is the Last-Modified header"
    );

    // A checksum mismatch and a 404 are errors that name the URL.
    dockerfile(&sha256(b"other"), "/files/pkg.txt");
    let out = kiln_build(&root, &ctx, Some(&ca), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--checksum wants"),
        "{}",
        stderr(&out)
    );
    dockerfile(&good, "/missing");
    let out = kiln_build(&root, &ctx, Some(&ca), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/missing: the server answered 404"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreadable_extra_ca_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD https://127.0.0.1:9/x /x\n",
    )
    .unwrap();
    let missing = dir.path().join("nope.pem");
    let out = kiln_build(&dir.path().join("store"), &ctx, Some(&missing), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nope.pem") && stderr(&out).contains("KILN_EXTRA_CA_CERTS"),
        "{}",
        stderr(&out)
    );
}
