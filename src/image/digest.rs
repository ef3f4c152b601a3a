//! Content digests: the strict `sha256:<64 lowercase hex>` grammar and a hashing writer.
//!
//! Every digest that reaches the store from outside (an archive, a manifest, the command
//! line, a cache record) is parsed into a [`Digest`] first, and store paths are built only
//! from parsed digests (security catalogue row I1: `sha256:../../x`, uppercase hex, a wrong
//! length, another algorithm or a NUL byte never get near the filesystem). Only sha256 is
//! accepted: it is the only algorithm kiln writes, and refusing the rest keeps one grammar.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {input}: expected `sha256:` followed by 64 lowercase hex digits")]
    Malformed { input: String },
    #[error("unsupported digest algorithm {algorithm} in {input}: only sha256 is supported")]
    UnsupportedAlgorithm { algorithm: String, input: String },
}

/// A sha256 content digest, always `sha256:` + 64 lowercase hex digits.
///
/// The only ways to make one are [`Digest::parse`] (strict) and hashing, so holding a
/// `Digest` proves the string is safe to use as a file name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

const PREFIX: &str = "sha256:";
const HEX_LEN: usize = 64;

/// Quote untrusted input for an error message: escaped, and cut short when long.
fn quote(input: &str) -> String {
    const MAX: usize = 80;
    let mut cut: String = input.chars().take(MAX).collect();
    if cut.len() < input.len() {
        cut.push('…');
    }
    format!("{:?}", cut)
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; anything else is an error.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::Malformed {
                input: quote(input),
            });
        };
        if algorithm != "sha256" {
            let known = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if known {
                DigestError::UnsupportedAlgorithm {
                    algorithm: quote(algorithm),
                    input: quote(input),
                }
            } else {
                DigestError::Malformed {
                    input: quote(input),
                }
            });
        }
        if !is_lower_hex(hex, HEX_LEN) {
            return Err(DigestError::Malformed {
                input: quote(input),
            });
        }
        Ok(Digest(input.to_owned()))
    }

    /// Parses the bare 64-hex form used as a blob file name (`blobs/sha256/<hex>`).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if is_lower_hex(hex, HEX_LEN) {
            Ok(Digest(format!("{PREFIX}{hex}")))
        } else {
            Err(DigestError::Malformed { input: quote(hex) })
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }

    fn from_sha256(raw: [u8; 32]) -> Digest {
        Digest(format!("{PREFIX}{}", hex::encode(raw)))
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits, as used in `blobs/sha256/<hex>`.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The first 12 hex digits, as `docker images` shows an image id.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// The same digest as the `oci-spec` type, for building OCI descriptors.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // Invariant, not input: a strict sha256 digest always satisfies oci-spec's laxer grammar.
        #[allow(clippy::expect_used)]
        oci_spec::image::Digest::from_str(&self.0)
            .expect("strict sha256 digest is a valid OCI digest")
    }

    /// Parses an `oci-spec` digest strictly.
    pub fn from_oci(digest: &oci_spec::image::Digest) -> Result<Digest, DigestError> {
        Digest::parse(digest.as_ref())
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A `Write` sink that hashes and counts what passes through it.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest and length of everything hashed.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256(self.sha.finalize().into()), self.len)
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_accepts_lowercase_sha256() {
        let d = Digest::parse(GOOD).unwrap();
        assert_eq!(d.as_str(), GOOD);
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(Digest::of(b""), d);
    }

    #[test]
    fn parse_refuses_everything_else() {
        let long = format!("{GOOD}0");
        let short = &GOOD[..GOOD.len() - 1];
        let upper = GOOD.to_uppercase().replace("SHA256", "sha256");
        let nul = format!("{}\0", &GOOD[..GOOD.len() - 1]);
        let bad = [
            "",
            "sha256:",
            "sha256:../../../../etc/passwd",
            "sha256:../blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7",
            long.as_str(),
            short,
            upper.as_str(),
            nul.as_str(),
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            " sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ];
        for input in bad {
            assert!(Digest::parse(input).is_err(), "accepted {input:?}");
        }
    }

    #[test]
    fn parse_names_unsupported_algorithms() {
        let sha512 = format!("sha512:{}", "a".repeat(128));
        let err = Digest::parse(&sha512).unwrap_err();
        assert!(matches!(err, DigestError::UnsupportedAlgorithm { .. }));
        assert!(err.to_string().contains("sha512"), "{err}");
    }

    #[test]
    fn error_message_escapes_control_characters() {
        let err = Digest::parse("sha256:\0\n../x").unwrap_err().to_string();
        assert!(!err.contains('\0') && !err.contains('\n'), "{err:?}");
    }

    #[test]
    fn from_hex_is_as_strict_as_parse() {
        assert!(Digest::from_hex(&GOOD[7..]).is_ok());
        assert!(Digest::from_hex("..").is_err());
        assert!(Digest::from_hex(&GOOD[7..].to_uppercase()).is_err());
    }

    #[test]
    fn hasher_matches_one_shot_digest() {
        let mut h = Hasher::new();
        h.write_all(b"hello ").unwrap();
        h.write_all(b"world").unwrap();
        let (d, n) = h.finish();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
    }

    #[test]
    fn deserialize_is_strict() {
        let ok: Result<Digest, _> = serde_json::from_str(&format!("\"{GOOD}\""));
        assert!(ok.is_ok());
        let bad: Result<Digest, _> = serde_json::from_str("\"sha256:../x\"");
        assert!(bad.is_err());
    }

    #[test]
    fn converts_to_oci_digest() {
        let d = Digest::parse(GOOD).unwrap();
        assert_eq!(Digest::from_oci(&d.to_oci()).unwrap(), d);
    }
}
