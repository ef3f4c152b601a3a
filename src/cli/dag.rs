//! `kiln parse --format dag|dot`: the stage graph.

use crate::syntax::{Dockerfile, SourceFile};

pub fn render(_file: &SourceFile, _df: &Dockerfile, _dot: bool) -> Result<String, miette::Report> {
    Err(miette::miette!(
        "the stage graph output is not available yet"
    ))
}
