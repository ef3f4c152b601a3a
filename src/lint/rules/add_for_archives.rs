//! DL3010: Reports a local tar archive that is COPYed and then extracted by a RUN.

use super::add_instead_of_copy::is_archive;
use super::helpers::unquote;
use super::run_common::*;
use crate::declare_rule;
use crate::lint::shell::{basename, Command};
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports a local tar archive (`.tar`, `.tar.gz`, `.tgz`, `.tar.xz`, …)
    /// that a `COPY` puts into the image and a later RUN of the same stage
    /// extracts (`tar -x`, `gunzip`, `unxz`, …).
    ///
    /// ## Why is this bad?
    /// `ADD` extracts a local tar archive into the destination by itself. With
    /// `COPY` plus `tar -x`, the archive stays in the COPY layer for good even
    /// when the RUN deletes it afterwards, and the image carries its content
    /// twice.
    ///
    /// Zip files are not reported: `ADD` does not extract them (hadolint
    /// counts `unzip` as well).
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// COPY app.tar.gz /tmp/
    /// RUN tar -xzf /tmp/app.tar.gz -C /opt && rm /tmp/app.tar.gz
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// ADD app.tar.gz /opt/
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3010](https://github.com/hadolint/hadolint/wiki/DL3010)
    /// - [Dockerfile reference: ADD](https://docs.docker.com/reference/dockerfile/#add)
    pub struct AddForArchives {
        code: "DL3010",
        name: "add-for-archives",
        hadolint: Some("DL3010"),
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

/// Programs that decompress or unpack what they are given.
const DECOMPRESSORS: [&str; 7] = [
    "gunzip",
    "bunzip2",
    "unlzma",
    "unxz",
    "uncompress",
    "zcat",
    "gzcat",
];

/// The last path component, without quotes.
fn file_name(path: &str) -> &str {
    basename(unquote(path).trim_end_matches('/'))
}

/// True when `c` extracts or decompresses its operands.
fn extracts(c: &Command) -> bool {
    if c.is("tar") {
        let args = c.args();
        let old_style = args
            .first()
            .is_some_and(|w| !w.text().starts_with('-') && w.text().contains('x'));
        return old_style
            || args.iter().any(|w| {
                let t = w.text();
                t == "--extract"
                    || t == "--get"
                    || (t.starts_with('-') && !t.starts_with("--") && t.contains('x'))
            });
    }
    c.program().is_some_and(|p| DECOMPRESSORS.contains(&p))
}

impl Rule for AddForArchives {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let scripts = runs(cx, false);
        // (file name, span of the COPY source) for archives copied in the stage.
        let mut copied: Vec<(String, Span)> = Vec::new();
        let mut found: Vec<Span> = Vec::new();
        for r in cx.top_level() {
            match r.kind() {
                InstructionKind::From(_) => copied.clear(),
                InstructionKind::Copy(c) if c.flags.from.is_none() => {
                    let dest = file_name(&c.dest.text);
                    if is_archive(dest) && !c.dest.text.ends_with('/') {
                        // `COPY src /tmp/app.tar.gz` names the archive by its destination.
                        if let Some(src) = c.sources.first() {
                            copied.push((dest.to_owned(), src.span));
                        }
                    } else {
                        copied.extend(
                            c.sources
                                .iter()
                                .filter(|s| is_archive(file_name(&s.text)))
                                .map(|s| (file_name(&s.text).to_owned(), s.span)),
                        );
                    }
                }
                InstructionKind::Run(_) => {
                    let Some((_, script)) = scripts.iter().find(|(s, _)| s.index == r.index) else {
                        continue;
                    };
                    for c in script.commands().filter(|c| extracts(c)) {
                        for w in c.args() {
                            let name = file_name(w.text());
                            if let Some(pos) = copied.iter().position(|(n, _)| n == name) {
                                found.push(copied.remove(pos).1);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for span in found {
            cx.report(span, "Use `ADD` for extracting archives into an image")
                .help("`ADD` extracts a local tar archive into its destination by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn copied_archive_extracted_later_is_reported_at_the_source() {
        let text = "FROM a\nCOPY app.tar.gz conf /tmp/\nRUN tar -xzf /tmp/app.tar.gz -C /opt\n";
        let f = assert_fires(&AddForArchives, text);
        assert_eq!(spans(text, &f), ["app.tar.gz"]);
        assert_fires(
            &AddForArchives,
            "FROM a\nCOPY dist/x /tmp/x.tgz\nRUN cd /opt && tar xzf /tmp/x.tgz\n",
        );
        assert_fires(
            &AddForArchives,
            "FROM a\nCOPY ./data.tar.xz /d/\nRUN unxz /d/data.tar.xz\n",
        );
    }

    #[test]
    fn other_stages_other_files_copy_from_and_zip_are_silent() {
        for text in [
            "FROM a\nCOPY app.tar.gz /tmp/\nFROM b\nRUN tar -xzf /tmp/app.tar.gz\n",
            "FROM a\nCOPY app.tar.gz /tmp/\nRUN tar -czf /tmp/app.tar.gz /opt\n",
            "FROM a\nCOPY --from=build /out/app.tar.gz /tmp/\nRUN tar -xzf /tmp/app.tar.gz\n",
            "FROM a\nCOPY app.zip /tmp/\nRUN unzip /tmp/app.zip\n",
            "FROM a\nADD app.tar.gz /opt/\n",
        ] {
            assert_silent(&AddForArchives, text);
        }
    }

    #[test]
    fn extraction_under_onbuild_is_silent_as_in_hadolint() {
        assert_silent(
            &AddForArchives,
            "FROM a\nCOPY app.tar.gz /tmp/\nONBUILD RUN tar -xzf /tmp/app.tar.gz\n",
        );
    }
}
