//! Image management commands: `images`, `rmi`, `tag`, `load`, `save`, `prune`, `fsck`,
//! and the global `--root` that says where the store is.
//!
//! Exit codes: 0 success, 1 the operation failed (missing image, corrupt blob, I/O error,
//! `fsck` found problems), 2 usage errors (bad reference syntax, no store location).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::image::{
    default_root, ArchiveFormat, ImageSummary, LockMode, PruneOptions, Reference, SaveOptions,
    Store, StoreError,
};

/// Where the store lives; shared by every command that uses it.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Store directory [default: $XDG_DATA_HOME/kiln or ~/.local/share/kiln]
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl StoreArgs {
    /// The store directory, or `None` when neither --root, KILN_ROOT nor HOME say where.
    pub fn root(&self) -> Option<PathBuf> {
        self.root.clone().or_else(default_root)
    }
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images in the store.
    Images(ImagesArgs),
    /// Remove images (untag; blobs are freed by `kiln prune`).
    Rmi(RmiArgs),
    /// Give an image another name: `kiln tag SOURCE TARGET`.
    Tag(TagArgs),
    /// Load images from a docker-archive or OCI-archive tar (e.g. `docker save` output).
    Load(LoadArgs),
    /// Save images to a tar archive.
    Save(SaveArgs),
    /// Remove blobs no image references and cache entries whose blobs are gone.
    Prune(PruneArgs),
    /// Re-hash every blob and check every reference in the store.
    Fsck(FsckArgs),
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show manifest digests.
    #[arg(long)]
    pub digests: bool,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove (name[:tag], name@digest, or id).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image (name[:tag], name@digest, or id).
    pub source: String,
    /// New name[:tag].
    pub target: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive to read [default: standard input].
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SaveFormat {
    /// OCI image layout tar that also carries a docker manifest.json (loads in both).
    Oci,
    /// `docker save` format.
    Docker,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Archive to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Archive format.
    #[arg(long, value_enum, default_value = "oci")]
    pub format: SaveFormat,
    /// Gzip uncompressed layers (OCI format; each layer is compressed once and kept).
    #[arg(long)]
    pub gzip: bool,
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Move corrupt blobs to <root>/quarantine so the next load or build rewrites them.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep blobs that cache entries use (keeps the build cache warm).
    #[arg(long)]
    pub keep_cache: bool,
    /// Delete the unpacked trees prune moves to the trash now, instead of on a prune 15
    /// minutes or more later (deleting them just before a build slows its unpacking).
    #[arg(long)]
    pub empty_trash: bool,
}

/// Runs one image command against the store.
pub fn run(store_args: &StoreArgs, command: ImageCommand) -> ExitCode {
    let Some(root) = store_args.root() else {
        eprintln!("kiln: error: no store location: pass --root DIR or set KILN_ROOT");
        return ExitCode::from(2);
    };
    let outcome = match command {
        ImageCommand::Images(args) => images(&root, &args),
        ImageCommand::Rmi(args) => rmi(&root, &args),
        ImageCommand::Tag(args) => tag(&root, &args),
        ImageCommand::Load(args) => load(&root, &args),
        ImageCommand::Save(args) => save(&root, &args),
        ImageCommand::Prune(args) => prune(&root, &args),
        ImageCommand::Fsck(args) => fsck(&root, &args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

fn report(err: &StoreError) -> ExitCode {
    eprintln!("kiln: error: {}", crate::image::error_chain(err));
    if let StoreError::ImageNotFound { .. } = err {
        eprintln!(
            "  help: import it with `kiln load -i FILE` (see `kiln images` for what the store has)"
        );
    }
    ExitCode::from(if err.is_usage() { 2 } else { 1 })
}

fn images(root: &Path, args: &ImagesArgs) -> Result<ExitCode, StoreError> {
    let store = Store::open(root)?;
    let list = store.images()?;
    if args.quiet {
        let mut seen = Vec::new();
        for image in &list {
            if !seen.contains(&image.config_digest) {
                println!("{}", image.config_digest.short());
                seen.push(image.config_digest.clone());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![header(args.digests)];
    rows.extend(list.iter().map(|i| row(i, args.digests)));
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

fn header(digests: bool) -> Vec<String> {
    let mut h = vec!["REPOSITORY", "TAG"];
    if digests {
        h.push("DIGEST");
    }
    h.extend(["IMAGE ID", "CREATED", "SIZE"]);
    h.into_iter().map(str::to_owned).collect()
}

fn row(image: &ImageSummary, digests: bool) -> Vec<String> {
    let (repo, tag) = match &image.reference {
        Some(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        None => ("<none>".to_owned(), "<none>".to_owned()),
    };
    let mut row = vec![repo, tag];
    if digests {
        row.push(image.digest.to_string());
    }
    row.push(image.config_digest.short().to_owned());
    row.push(
        image
            .created
            .as_deref()
            .map(|c| c.get(..19).unwrap_or(c).replace('T', " "))
            .unwrap_or_else(|| "N/A".to_owned()),
    );
    row.push(human_size(image.size));
    row
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// Docker's decimal units: `4.26MB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        let digits = if value >= 100.0 {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        format!("{value:.digits$}{}", UNITS[unit])
    }
}

fn rmi(root: &Path, args: &RmiArgs) -> Result<ExitCode, StoreError> {
    let store = Store::open(root)?;
    let mut code = ExitCode::SUCCESS;
    for image in &args.images {
        match store.remove(image) {
            Ok(removed) => {
                for name in &removed.untagged {
                    println!("Untagged: {name}");
                }
                for digest in &removed.deleted {
                    println!("Deleted: {digest}");
                }
            }
            Err(err) => code = report(&err),
        }
    }
    Ok(code)
}

fn tag(root: &Path, args: &TagArgs) -> Result<ExitCode, StoreError> {
    let target = Reference::parse(&args.target)?;
    if target.digest().is_some() {
        eprintln!(
            "kiln: error: failed to tag {}: the target {:?} must be name[:tag], without a digest",
            args.source, args.target
        );
        return Ok(ExitCode::from(2));
    }
    let store = Store::open(root)?;
    store.tag(&args.source, &target)?;
    Ok(ExitCode::SUCCESS)
}

fn load(root: &Path, args: &LoadArgs) -> Result<ExitCode, StoreError> {
    let loaded = match &args.input {
        Some(path) => Store::open(root)?.load(path)?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "kiln: error: failed to load: no archive given; pass -i FILE or pipe one in"
                );
                return Ok(ExitCode::from(2));
            }
            Store::open(root)?.load_reader(stdin.lock(), Path::new("standard input"))?
        }
    };
    if !args.quiet {
        for image in &loaded {
            if image.names.is_empty() {
                println!("Loaded image ID: {}", image.config_digest);
            }
            for name in &image.names {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn save(root: &Path, args: &SaveArgs) -> Result<ExitCode, StoreError> {
    let store = Store::open(root)?;
    let format = match args.format {
        SaveFormat::Oci => ArchiveFormat::Oci,
        SaveFormat::Docker => ArchiveFormat::Docker,
    };
    let options = SaveOptions {
        format,
        gzip: args.gzip,
    };
    store.save_with(&args.images, &args.output, options)?;
    Ok(ExitCode::SUCCESS)
}

/// The exclusive lock, saying so when it has to wait for other kiln processes.
fn open_exclusive(root: &Path) -> Result<Store, StoreError> {
    if let Some(store) = Store::try_open_with(root, LockMode::Exclusive)? {
        return Ok(store);
    }
    eprintln!(
        "kiln: waiting for other kiln processes using {} to finish",
        root.display()
    );
    Store::open_exclusive(root)
}

fn prune(root: &Path, args: &PruneArgs) -> Result<ExitCode, StoreError> {
    let store = open_exclusive(root)?;
    let report = store.prune(PruneOptions {
        keep_cache: args.keep_cache,
        empty_trash: args.empty_trash,
    })?;
    println!(
        "Deleted {} blobs, {} cache entries and {} snapshots; reclaimed {}",
        report.blobs_removed,
        report.records_removed,
        report.snapshots_removed,
        human_size(report.bytes_freed)
    );
    if report.trash_emptied > 0 {
        println!("Emptied {} trash entries", report.trash_emptied);
    }
    if report.trash_pending > 0 {
        println!(
            "{} trash entries wait for a later prune (or `kiln prune --empty-trash`)",
            report.trash_pending
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fsck(root: &Path, args: &FsckArgs) -> Result<ExitCode, StoreError> {
    let store = open_exclusive(root)?;
    let report = store.fsck_with(args.repair)?;
    for problem in &report.problems {
        println!("{problem}");
    }
    for path in &report.quarantined {
        println!("quarantined {}", path.display());
    }
    let summary = format!(
        "checked {} blobs ({}), {} images, {} cache entries",
        report.blobs_checked,
        human_size(report.bytes_checked),
        report.images_checked,
        report.records_checked
    );
    if report.temp_removed > 0 {
        println!("removed {} stale temp files", report.temp_removed);
    }
    if report.is_clean() {
        println!("{summary}: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{summary}: {} problems", report.problems.len());
        Ok(ExitCode::from(1))
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_use_docker_units() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }
}
