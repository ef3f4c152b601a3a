//! The one error type of the image store ([`StoreError`]): every variant names the path or
//! digest involved so a user can act on it.

use std::io;
use std::path::PathBuf;

use super::digest::{Digest, DigestError};
use super::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O operation on a store or archive path failed (ENOSPC lands here too).
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to lock the store at {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("failed to verify blob {digest} at {}: its content hashes to {actual}", path.display())]
    Corrupt {
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    #[error("failed to verify blob {digest} at {}: expected {expected} bytes, found {actual}", path.display())]
    WrongSize {
        digest: Digest,
        expected: u64,
        actual: u64,
        path: PathBuf,
    },
    #[error("failed to find blob {digest} (expected at {})", path.display())]
    MissingBlob { digest: Digest, path: PathBuf },
    #[error("failed to store blob: expected {expected}, the data hashes to {actual}")]
    UnexpectedDigest { expected: Digest, actual: Digest },
    #[error("failed to read {what}: invalid digest")]
    BadDigest {
        what: String,
        #[source]
        source: DigestError,
    },
    #[error("failed to parse reference")]
    BadReference(#[from] ReferenceError),
    #[error("failed to find image {reference}")]
    ImageNotFound { reference: String },
    #[error("failed to resolve image id {prefix}: it matches several images")]
    AmbiguousId { prefix: String },
    #[error("failed to parse {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to read {what}: {reason}")]
    BadDocument { what: String, reason: String },
    #[error("failed to build {what}")]
    Oci {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("failed to load {}: {reason}", path.display())]
    BadArchive { path: PathBuf, reason: String },
    #[error("failed to verify layer {layer}: its uncompressed content hashes to {actual}, the config says {expected}")]
    DiffIdMismatch {
        layer: Digest,
        expected: String,
        actual: Digest,
    },
    /// A lazy layer (a RUN's tree kept in place of its blob) could not be read back into
    /// its tar stream.
    #[error("failed to regenerate layer {digest} from its source tree {}", path.display())]
    LazyLayer {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("failed to use cache key {key:?}: keys are 1-200 characters of [A-Za-z0-9._:-] starting with a letter or digit")]
    BadCacheKey { key: String },
    #[error("failed to {action}: it needs the exclusive store lock (open the store with Store::open_exclusive)")]
    NeedsExclusive { action: &'static str },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        // A verified reader reports a corrupt blob as an io::Error wrapping a StoreError;
        // unwrap it so the caller sees the digest, not "invalid data".
        match source.get_ref().map(|inner| inner.is::<StoreError>()) {
            Some(true) => match source
                .into_inner()
                .map(|inner| inner.downcast::<StoreError>())
            {
                Some(Ok(inner)) => *inner,
                _ => StoreError::Io {
                    action,
                    path: path.into(),
                    source: io::Error::other("unreadable error"),
                },
            },
            _ => StoreError::Io {
                action,
                path: path.into(),
                source,
            },
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        StoreError::Json {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn document(what: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::BadDocument {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Whether the error is the user's input being wrong (exit 2) rather than the store or
    /// an archive failing (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StoreError::BadReference(_) | StoreError::BadCacheKey { .. }
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
