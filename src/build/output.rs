//! Build outputs (`-o/--output`): where the finished image goes besides the store.
//!
//! `type=image` (the default) only names it in the store. `type=oci` and
//! `type=docker` write archives through the store's exporter (the OCI one also
//! carries a docker `manifest.json`, so `docker load` takes either);
//! `type=local` writes the final filesystem into a directory.

use std::path::PathBuf;

use super::rootfs::{self, RootfsError};
use crate::image::{ArchiveFormat, Digest, Reference, SaveOptions, Store, StoreError};

/// One `--output` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Image,
    Oci { dest: PathBuf },
    Docker { dest: PathBuf },
    Local { dest: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("failed to parse --output {spec:?}: {reason}")]
    Parse { spec: String, reason: String },
    #[error("failed to export the image")]
    Store(#[from] StoreError),
    #[error("failed to write the filesystem")]
    Rootfs(#[from] RootfsError),
}

impl Output {
    /// Parses `type=oci,dest=x.tar` (docker's CSV form; a bare path means
    /// `type=local,dest=PATH`, as `docker build -o DIR` does).
    ///
    /// # Errors
    /// An unknown type, or a type that needs `dest` without it.
    pub fn parse(spec: &str) -> Result<Output, OutputError> {
        let fail = |reason: &str| OutputError::Parse {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        if !spec.contains('=') {
            return Ok(Output::Local {
                dest: PathBuf::from(spec),
            });
        }
        let mut kind = None;
        let mut dest = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_owned()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                Some(("name" | "push" | "compression" | "oci-mediatypes", _)) => {}
                _ => return Err(fail(&format!("unknown field {field:?}"))),
            }
        }
        let need = |dest: Option<PathBuf>| dest.ok_or_else(|| fail("dest=PATH is required"));
        match kind.as_deref() {
            Some("image") | None if dest.is_none() => Ok(Output::Image),
            Some("oci") => Ok(Output::Oci { dest: need(dest)? }),
            Some("docker") => Ok(Output::Docker { dest: need(dest)? }),
            Some("local") => Ok(Output::Local { dest: need(dest)? }),
            Some(other) => Err(fail(&format!(
                "unknown type {other:?} (expected image, oci, docker or local)"
            ))),
            None => Err(fail("type= is required")),
        }
    }
}

/// Writes `output` for the image `digest` (named by `tags` in archives).
///
/// # Errors
/// A store error (e.g. a corrupt blob, never exported) or a write error.
pub fn export(
    store: &Store,
    digest: &Digest,
    tags: &[Reference],
    output: &Output,
) -> Result<(), OutputError> {
    let inputs: Vec<String> = if tags.is_empty() {
        vec![digest.to_string()]
    } else {
        tags.iter().map(Reference::full).collect()
    };
    match output {
        Output::Image => Ok(()),
        Output::Oci { dest } => Ok(store.save_with(
            &inputs,
            dest,
            SaveOptions {
                format: ArchiveFormat::Oci,
                gzip: true,
            },
        )?),
        Output::Docker { dest } => Ok(store.save(&inputs, dest, ArchiveFormat::Docker)?),
        Output::Local { dest } => {
            let image = store.image(digest)?;
            rootfs::extract(store, &image.layers, dest)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_parse_like_docker() {
        assert_eq!(Output::parse("type=image").unwrap(), Output::Image);
        assert_eq!(
            Output::parse("type=oci,dest=x.tar").unwrap(),
            Output::Oci {
                dest: "x.tar".into()
            }
        );
        assert_eq!(
            Output::parse("out").unwrap(),
            Output::Local { dest: "out".into() }
        );
        assert!(Output::parse("type=oci").is_err());
        assert!(Output::parse("type=registry,dest=x").is_err());
    }
}
