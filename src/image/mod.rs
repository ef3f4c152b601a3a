//! The local image store and image import/export.
//!
//! A content-addressed OCI image layout under `--root` (see [`Store`]): blobs named by
//! their sha256, tags as annotations in `index.json`, a cache index of small JSON records
//! for the builder, a flock so concurrent processes are safe, `prune` and `fsck`, and
//! `load`/`save` of docker-archive and OCI-archive tars. It knows nothing of Dockerfiles;
//! the builder streams layers in through [`Store::blob_writer`] and names images with
//! [`Store::put_image`].
//!
//! Modules: `digest` (strict digests, hashing), `reference` (image names), `store`
//! (directory, lock, blobs, cache records), `lazy` (RUN layers kept as
//! their trees until read), `index` (tags and images), `gc` (prune,
//! fsck), `archive` (load, save), `error` (the module's error type).

mod archive;
mod digest;
mod error;
mod gc;
mod index;
mod lazy;
mod reference;
mod store;

pub use archive::{ArchiveFormat, Loaded, SaveOptions};
pub use digest::{Digest, DigestError, Hasher};
pub use error::{Result, StoreError};
pub use gc::{error_chain, FsckReport, Problem, PruneOptions, PruneReport, TRASH_DELAY};
pub use index::{canonical_json, Image, ImageSummary, Removed, IMAGE_NAME, REF_NAME};
pub use lazy::{sync_tree_files, LazyLayer};
pub use reference::{Reference, ReferenceError};
pub(crate) use store::remove_tree;
pub use store::{Blob, BlobSink, BlobWriter, LockMode, Store, VerifiedReader, MAX_DOCUMENT_SIZE};

/// The store location: `$KILN_ROOT` is handled by the CLI; this is the default under the
/// user's data directory (`$XDG_DATA_HOME/kiln`, else `~/.local/share/kiln`).
pub fn default_root() -> Option<std::path::PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    from_env("XDG_DATA_HOME")
        .filter(|p| p.is_absolute())
        .map(|p| p.join("kiln"))
        .or_else(|| from_env("HOME").map(|h| h.join(".local/share/kiln")))
}
