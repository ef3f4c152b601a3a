//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Prints a line that stays visible even though the test harness captures
/// `println!`/`eprintln!` output (direct writes to stderr are not captured).
pub fn notice(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// `../shared` beside the repository, or `None` with a visible skip notice.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared");
    if dir.join("corpus/MANIFEST.tsv").is_file() {
        Some(dir)
    } else {
        notice(&format!(
            "skipped: {test} needs ../shared beside the repository (team material; CI always has it)"
        ));
        None
    }
}

/// One corpus entry from `MANIFEST.tsv`.
pub struct CorpusFile {
    pub path: PathBuf,
    pub name: String,
    /// `dockerfile` (real-world), `fixture`, `template` or `not-dockerfile`.
    pub kind: String,
}

pub fn corpus(shared: &Path) -> Vec<CorpusFile> {
    let manifest = std::fs::read_to_string(shared.join("corpus/MANIFEST.tsv")).expect("manifest");
    manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 5).then(|| CorpusFile {
                path: shared.join("corpus").join(cols[0]),
                name: cols[0].to_string(),
                kind: cols[4].to_string(),
            })
        })
        .collect()
}

/// Every `*.Dockerfile` under a fixtures directory, sorted.
pub fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("fixtures").join(dir))
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    files
}

pub fn kiln() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
}
