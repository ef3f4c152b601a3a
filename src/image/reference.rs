//! Image references (`busybox`, `busybox:1.36`, `ghcr.io/a/b:tag`, `name@sha256:…`), with
//! Docker's normalisation.
//!
//! The grammar follows the distribution `reference` package that `docker` uses: a name is
//! an optional domain plus lowercase path components, then an optional `:tag` and an
//! optional `@digest`. A name without a domain lives on `docker.io`, and a single-component
//! Docker Hub name lives under `library/`, so `busybox`, `library/busybox` and
//! `docker.io/library/busybox:latest` are one reference. [`Reference::full`] is the form
//! the store records; [`Reference::familiar`] is the form users see (`busybox:latest`).

use std::fmt;

use super::digest::{Digest, DigestError};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a reference string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {input:?} is empty")]
    Empty { input: String },
    #[error("invalid reference format: repository name {input:?} must be lowercase")]
    Uppercase { input: String },
    #[error("invalid reference format: {input:?} is not a valid image name")]
    BadName { input: String },
    #[error("invalid reference format: tag {tag:?} in {input:?} is not valid")]
    BadTag { input: String, tag: String },
    #[error(
        "invalid reference format: repository name in {input:?} is longer than 255 characters"
    )]
    TooLong { input: String },
    #[error("invalid reference format: {input:?} has a bad digest")]
    BadDigest {
        input: String,
        #[source]
        source: DigestError,
    },
}

/// A parsed, normalised image reference. Without tag and digest, the tag is `latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference the way `docker` does.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.to_owned(),
            });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|source| ReferenceError::BadDigest {
                    input: input.to_owned(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains('/') => {
                (&rest[..colon], Some(rest[colon + 1..].to_owned()))
            }
            _ => (rest, None),
        };
        if let Some(tag) = &tag {
            if !is_tag(tag) {
                return Err(ReferenceError::BadTag {
                    input: input.to_owned(),
                    tag: tag.clone(),
                });
            }
        }
        let (domain, path) = split_domain(name);
        if !domain.is_empty() && !is_domain(domain) {
            return Err(ReferenceError::BadName {
                input: input.to_owned(),
            });
        }
        if path.is_empty() || !path.split('/').all(is_path_component) {
            let lower = path.to_ascii_lowercase();
            if lower != path && lower.split('/').all(is_path_component) {
                return Err(ReferenceError::Uppercase {
                    input: input.to_owned(),
                });
            }
            return Err(ReferenceError::BadName {
                input: input.to_owned(),
            });
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong {
                input: input.to_owned(),
            });
        }
        let domain = match domain {
            "" | LEGACY_DOMAIN => DEFAULT_DOMAIN,
            other => other,
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag,
        };
        Ok(Reference {
            domain: domain.to_owned(),
            path,
            tag,
            digest,
        })
    }

    /// The repository with its domain: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as `docker images` shows it: `busybox`, `ghcr.io/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_owned()
        } else {
            self.name()
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full normalised form: `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        self.render(self.name())
    }

    /// The short form users type and `docker` prints: `busybox:latest`.
    pub fn familiar(&self) -> String {
        self.render(self.familiar_name())
    }

    fn render(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(digest.as_str());
        }
        name
    }

    /// The same repository and tag without a digest (the key a tag is stored under).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            tag: Some(self.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned())),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Docker's rule: the first component is a domain when it contains `.` or `:`, is
/// `localhost`, or has an uppercase letter (repository paths never do).
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("", name),
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    matches!(bytes.next(), Some(b) if word(b))
        && tag.len() <= MAX_TAG_LEN
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[sep_start..i];
        let dashes = sep.bytes().all(|b| b == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return false;
        }
    }
}

/// `host(.host)*(:port)?` with DNS-label hosts.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().full()
    }

    #[test]
    fn normalises_docker_hub_names() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/library/busybox:1"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(full("user/app:v1"), "docker.io/user/app:v1");
    }

    #[test]
    fn keeps_other_registries() {
        assert_eq!(full("ghcr.io/a/b:tag"), "ghcr.io/a/b:tag");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!(r.familiar(), "localhost:5000/x:latest");
    }

    #[test]
    fn familiar_form_drops_default_domain_and_library() {
        let r = Reference::parse("docker.io/library/busybox:1").unwrap();
        assert_eq!(r.familiar(), "busybox:1");
        assert_eq!(r.familiar_name(), "busybox");
        let r = Reference::parse("docker.io/user/app").unwrap();
        assert_eq!(r.familiar(), "user/app:latest");
    }

    #[test]
    fn digest_references_have_no_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), d);
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        assert!(Reference::parse("busybox@sha256:../x").is_err());
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "",
            "Busybox",
            "busy box",
            "a//b",
            "-a",
            "a-",
            "a..b",
            ":tag",
            "a:",
            "a:-x",
            "a:b/c",
            "busybox@",
            "x.io/a:b@sha256:1234",
        ] {
            assert!(Reference::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(Reference::parse(&"a".repeat(256)).is_err());
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn accepts_separators_docker_accepts() {
        for good in ["a_b", "a__b", "a---b", "a.b", "a/b/c", "my-app:1.0_rc-1"] {
            assert!(Reference::parse(good).is_ok(), "refused {good:?}");
        }
    }
}
