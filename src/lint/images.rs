//! Base images from the local image store, for the rules that compare a
//! `FROM` with the image a build would use (InvalidBaseImagePlatform).
//!
//! Lint only reads: [`StoreImages::open`] opens an existing store with the
//! shared lock (never creates one) and looks images up by reference through
//! `crate::image`; it never pulls. Rules see the store through the
//! [`BaseImages`] trait, so tests give them a fixed table instead.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::dag::Platform;
use crate::image::Store;

/// What lint may ask about base images.
pub trait BaseImages: Send + Sync {
    /// The platform of the image `reference` names in the local store, or
    /// `None` when it is not there (or cannot be read).
    fn platform(&self, reference: &str) -> Option<Platform>;
}

/// The local image store, read-only, with a cache of lookups (files are
/// linted in parallel and often share their base images).
pub struct StoreImages {
    store: Store,
    cache: Mutex<HashMap<String, Option<Platform>>>,
}

impl StoreImages {
    /// Opens the store at `root` read-only if one exists there; `None`
    /// otherwise (or when it cannot be opened: lint then skips the rules
    /// that need it). Lint never creates, cleans or changes a store.
    pub fn open(root: &Path) -> Option<Self> {
        let store = Store::open_read_only(root).ok()??;
        Some(Self {
            store,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn lookup(&self, reference: &str) -> Option<Platform> {
        let image = self.store.resolve(reference).ok()?;
        let config = &image.config;
        let os = config.os().to_string();
        let arch = config.architecture().to_string();
        let spec = match config.variant() {
            Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
            _ => format!("{os}/{arch}"),
        };
        Platform::parse(&spec)
    }
}

impl BaseImages for StoreImages {
    fn platform(&self, reference: &str) -> Option<Platform> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache.get(reference) {
                return hit.clone();
            }
        }
        let found = self.lookup(reference);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(reference.to_owned(), found.clone());
        }
        found
    }
}

/// A fixed table of images (tests, and callers that already know them).
#[derive(Debug, Default, Clone)]
pub struct KnownImages(pub Vec<(String, Platform)>);

impl BaseImages for KnownImages {
    fn platform(&self, reference: &str) -> Option<Platform> {
        self.0
            .iter()
            .find(|(r, _)| r == reference)
            .map(|(_, p)| p.clone())
    }
}
