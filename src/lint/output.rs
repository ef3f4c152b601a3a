//! Output formats for lint findings: tty (miette), kiln JSON, hadolint's
//! JSON, SARIF 2.1.0, Checkstyle XML, GitLab Code Climate JSON, GNU lines
//! and JUnit XML.
//!
//! Every renderer returns a `String`; printing and writing files is `cli`'s
//! job. Positions are 1-based, columns count Unicode characters, and end
//! columns are exclusive (the column just after the last character), as in
//! SARIF.

use std::fmt::Write as _;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::rules;
use super::{Finding, Severity};
use crate::syntax::SourceFile;

/// One linted file and what was found in it.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub source: SourceFile,
    pub findings: Vec<Finding>,
}

/// The output formats of `kiln lint -f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tty,
    Json,
    HadolintJson,
    Sarif,
    Checkstyle,
    Gitlab,
    Gnu,
    Junit,
}

impl Format {
    /// Reads a format name, accepting hadolint's names too (`json` from a
    /// hadolint config means hadolint's JSON; `codeclimate` is GitLab's).
    pub fn from_hadolint(name: &str) -> Option<Format> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "tty" => Format::Tty,
            "json" | "hadolint-json" => Format::HadolintJson,
            "sarif" => Format::Sarif,
            "checkstyle" => Format::Checkstyle,
            "codeclimate" | "gitlab_codeclimate" | "gitlab" => Format::Gitlab,
            "gnu" => Format::Gnu,
            "junit" => Format::Junit,
            _ => return None,
        })
    }
}

/// Renders `reports` in `format`. `colour` only matters for tty.
pub fn render(format: Format, reports: &[FileReport], colour: bool) -> String {
    match format {
        Format::Tty => tty(reports, colour),
        Format::Json => kiln_json_string(reports),
        Format::HadolintJson => json_string(&hadolint_json(reports)),
        Format::Sarif => json_string(&sarif(reports)),
        Format::Checkstyle => checkstyle(reports),
        Format::Gitlab => json_string(&gitlab(reports)),
        Format::Gnu => gnu(reports),
        Format::Junit => junit(reports),
    }
}

fn json_string(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// 1-based start line/column and exclusive end line/column.
fn positions(source: &SourceFile, f: &Finding) -> (usize, usize, usize, usize) {
    let (start, end) = source.range(f.span);
    (start.line, start.column, end.line, end.column)
}

fn fix_json(f: &Finding) -> Value {
    match &f.fix {
        None => Value::Null,
        Some(fix) => json!({
            "safety": fix.safety,
            "edits": fix.edits.iter().map(|e| json!({
                "span": {"start": e.span.start, "end": e.span.end},
                "replacement": e.replacement,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A finding as kiln's JSON shows it, serialized without building a
/// `serde_json::Value` tree (the corpus run prints thousands). Fields in
/// alphabetical order, as [`kiln_json`] writes them.
#[derive(serde::Serialize)]
struct JsonFinding<'a> {
    aliases: Vec<&'static str>,
    code: &'a str,
    column: usize,
    end_column: usize,
    end_line: usize,
    file: &'a str,
    fix: Option<JsonFix<'a>>,
    line: usize,
    message: &'a str,
    name: &'static str,
    severity: Severity,
    span: JsonSpan,
}

#[derive(serde::Serialize)]
struct JsonSpan {
    end: usize,
    start: usize,
}

#[derive(serde::Serialize)]
struct JsonFix<'a> {
    edits: Vec<JsonEdit<'a>>,
    safety: crate::lint::FixSafety,
}

#[derive(serde::Serialize)]
struct JsonEdit<'a> {
    replacement: &'a str,
    span: JsonSpan,
}

/// kiln's JSON as text, the same as rendering [`kiln_json`].
fn kiln_json_string(reports: &[FileReport]) -> String {
    let mut out = Vec::new();
    for r in reports {
        for f in &r.findings {
            let (line, column, end_line, end_column) = positions(&r.source, f);
            out.push(JsonFinding {
                aliases: f.rule.aliases(),
                code: &f.code,
                column,
                end_column,
                end_line,
                file: &r.source.name,
                fix: f.fix.as_ref().map(|fix| JsonFix {
                    edits: fix
                        .edits
                        .iter()
                        .map(|e| JsonEdit {
                            replacement: &e.replacement,
                            span: JsonSpan {
                                end: e.span.end,
                                start: e.span.start,
                            },
                        })
                        .collect(),
                    safety: fix.safety,
                }),
                line,
                message: &f.message,
                name: f.rule.name,
                severity: f.severity,
                span: JsonSpan {
                    end: f.span.end,
                    start: f.span.start,
                },
            });
        }
    }
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// kiln's JSON: one object per finding.
pub fn kiln_json(reports: &[FileReport]) -> Value {
    let mut out = Vec::new();
    for r in reports {
        for f in &r.findings {
            let (line, column, end_line, end_column) = positions(&r.source, f);
            out.push(json!({
                "file": r.source.name,
                "code": f.code,
                "name": f.rule.name,
                "aliases": f.rule.aliases(),
                "severity": f.severity,
                "message": f.message,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "span": {"start": f.span.start, "end": f.span.end},
                "fix": fix_json(f),
            }));
        }
    }
    Value::Array(out)
}

/// The code hadolint would print: its own code when the rule has one.
fn hadolint_code(f: &Finding) -> &str {
    if f.code == f.rule.code {
        f.rule.hadolint.unwrap_or(&f.code)
    } else {
        &f.code
    }
}

/// Where hadolint would place a finding: it reports the first line (column 1)
/// of the instruction the finding is in, where kiln's own formats give the
/// exact word. Findings outside any instruction keep their own position.
fn hadolint_position(
    source: &SourceFile,
    instructions: &[crate::syntax::Span],
    f: &Finding,
) -> (usize, usize) {
    let at = f.span.start;
    let containing = instructions
        .iter()
        .find(|span| span.start <= at && (at < span.end || (at == span.end && span.is_empty())));
    match containing {
        Some(span) => {
            let p = source.position(span.start);
            (p.line, p.column)
        }
        None => {
            let (line, column, _, _) = positions(source, f);
            (line, column)
        }
    }
}

/// hadolint's `-f json` array: `code`, `column`, `file`, `level`, `line`,
/// `message`, with hadolint's line convention (see [`hadolint_position`]).
pub fn hadolint_json(reports: &[FileReport]) -> Value {
    let mut out = Vec::new();
    for r in reports {
        let instructions: Vec<crate::syntax::Span> = if r.findings.is_empty() {
            Vec::new()
        } else {
            crate::syntax::parse(&r.source)
                .dockerfile
                .instructions
                .iter()
                .map(|i| i.span)
                .collect()
        };
        for f in &r.findings {
            let (line, column) = hadolint_position(&r.source, &instructions, f);
            out.push(json!({
                "code": hadolint_code(f),
                "column": column,
                "file": r.source.name,
                "level": f.severity,
                "line": line,
                "message": f.message,
            }));
        }
    }
    Value::Array(out)
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Style => "note",
    }
}

/// A relative path as a URI reference (SARIF `artifactLocation.uri`).
fn file_uri(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// SARIF 2.1.0 log with one run.
pub fn sarif(reports: &[FileReport]) -> Value {
    let mut rule_ids: Vec<&'static str> = Vec::new();
    let mut results = Vec::new();
    let mut rule_entries = Vec::new();
    for r in reports {
        for f in &r.findings {
            let index = match rule_ids.iter().position(|c| *c == f.rule.code) {
                Some(i) => i,
                None => {
                    rule_ids.push(f.rule.code);
                    let m = f.rule;
                    rule_entries.push(json!({
                        "id": m.code,
                        "name": m.name,
                        "shortDescription": {"text": m.summary()},
                        "help": {"text": m.documentation(), "markdown": m.documentation()},
                        "defaultConfiguration": {"level": sarif_level(m.severity)},
                        "properties": {"tags": [m.category], "aliases": m.aliases()},
                    }));
                    rule_ids.len() - 1
                }
            };
            let (line, column, end_line, end_column) = positions(&r.source, f);
            let mut result = json!({
                "ruleId": f.code,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": file_uri(&r.source.name)},
                        "region": {
                            "startLine": line,
                            "startColumn": column,
                            "endLine": end_line,
                            "endColumn": end_column,
                        },
                    },
                }],
            });
            if let Some(fix) = &f.fix {
                let replacements: Vec<Value> = fix
                    .edits
                    .iter()
                    .map(|e| {
                        let (s, en) = r.source.range(e.span);
                        let end = if e.span.is_empty() { s } else { en };
                        json!({
                            "deletedRegion": {
                                "startLine": s.line, "startColumn": s.column,
                                "endLine": end.line, "endColumn": end.column,
                            },
                            "insertedContent": {"text": e.replacement},
                        })
                    })
                    .collect();
                result["fixes"] = json!([{
                    "description": {"text": format!("{} fix", match fix.safety {
                        super::FixSafety::Safe => "safe",
                        super::FixSafety::Unsafe => "unsafe",
                    })},
                    "artifactChanges": [{
                        "artifactLocation": {"uri": file_uri(&r.source.name)},
                        "replacements": replacements,
                    }],
                }]);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kiln",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/kiln-build/kiln",
                "rules": rule_entries,
            }},
            "results": results,
        }],
    })
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Checkstyle XML, one `<file>` per linted file.
pub fn checkstyle(reports: &[FileReport]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<checkstyle version=\"4.3\">\n");
    for r in reports {
        let _ = writeln!(out, "  <file name=\"{}\">", xml_escape(&r.source.name));
        for f in &r.findings {
            let (line, column, _, _) = positions(&r.source, f);
            let _ = writeln!(
                out,
                "    <error line=\"{line}\" column=\"{column}\" severity=\"{}\" message=\"{}\" source=\"{}\"/>",
                f.severity,
                xml_escape(&f.message),
                xml_escape(&f.code)
            );
        }
        out.push_str("  </file>\n");
    }
    out.push_str("</checkstyle>\n");
    out
}

fn gitlab_severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "blocker",
        Severity::Warning => "major",
        Severity::Info => "info",
        Severity::Style => "minor",
    }
}

/// GitLab's Code Climate report.
pub fn gitlab(reports: &[FileReport]) -> Value {
    let mut out = Vec::new();
    for r in reports {
        for f in &r.findings {
            let (line, column, end_line, end_column) = positions(&r.source, f);
            let mut hasher = Sha256::new();
            for part in [
                r.source.name.as_str(),
                &f.code,
                &f.message,
                &line.to_string(),
                &column.to_string(),
            ] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
            out.push(json!({
                "type": "issue",
                "check_name": f.code,
                "description": format!("{}: {}", f.code, f.message),
                "categories": ["Style"],
                "severity": gitlab_severity(f.severity),
                "fingerprint": hex::encode(hasher.finalize()),
                "location": {
                    "path": r.source.name,
                    "positions": {
                        "begin": {"line": line, "column": column},
                        "end": {"line": end_line, "column": end_column},
                    },
                },
            }));
        }
    }
    Value::Array(out)
}

/// GNU `file:line.col-endline.endcol: severity: CODE message` lines.
pub fn gnu(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for f in &r.findings {
            let (line, column, end_line, end_column) = positions(&r.source, f);
            let _ = writeln!(
                out,
                "{}:{line}.{column}-{end_line}.{end_column}: {}: {} {}",
                r.source.name, f.severity, f.code, f.message
            );
        }
    }
    out
}

/// JUnit XML: one test suite per file, one failing test case per finding
/// (a clean file gets one passing case).
pub fn junit(reports: &[FileReport]) -> String {
    let total: usize = reports.iter().map(|r| r.findings.len().max(1)).sum();
    let failures: usize = reports.iter().map(|r| r.findings.len()).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"kiln lint\" tests=\"{total}\" failures=\"{failures}\">\n"
    );
    for r in reports {
        let name = xml_escape(&r.source.name);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\">",
            r.findings.len().max(1),
            r.findings.len()
        );
        if r.findings.is_empty() {
            let _ = writeln!(out, "    <testcase name=\"lint\" classname=\"{name}\"/>");
        }
        for f in &r.findings {
            let (line, column, _, _) = positions(&r.source, f);
            let _ = writeln!(
                out,
                "    <testcase name=\"{}:{line}:{column} {}\" classname=\"{name}\">\n      <failure type=\"{}\" message=\"{}\">{}:{line}:{column} {} {}</failure>\n    </testcase>",
                xml_escape(&f.code),
                xml_escape(f.rule.name),
                f.severity,
                xml_escape(&f.message),
                name,
                xml_escape(&f.code),
                xml_escape(&f.message),
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// One finding as a miette diagnostic.
#[derive(Debug)]
struct FindingDiagnostic<'a> {
    finding: &'a Finding,
    source: &'a NamedSource<String>,
}

impl std::fmt::Display for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.finding.message)
    }
}

impl std::error::Error for FindingDiagnostic<'_> {}

impl Diagnostic for FindingDiagnostic<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        let f = self.finding;
        Some(Box::new(format!("{}({})", f.code, f.rule.name)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.finding.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info | Severity::Style => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        let f = self.finding;
        let fix = f.fix.as_ref().map(|fix| match fix.safety {
            super::FixSafety::Safe => "fixable with `kiln lint --fix`",
            super::FixSafety::Unsafe => "fixable with `kiln lint --fix --unsafe-fixes`",
        });
        match (&f.help, fix) {
            (None, None) => None,
            (Some(h), None) => Some(Box::new(h.clone())),
            (None, Some(x)) => Some(Box::new(x)),
            (Some(h), Some(x)) => Some(Box::new(format!("{h} ({x})"))),
        }
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = format!("{}", self.finding.severity);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(label),
            self.finding.span,
        ))))
    }
}

/// miette graphical reports, the source excerpt with the span underlined.
pub fn tty(reports: &[FileReport], colour: bool) -> String {
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    let mut count = 0;
    for r in reports {
        if r.findings.is_empty() {
            continue;
        }
        let named = NamedSource::new(r.source.name.clone(), r.source.text.clone())
            .with_language("Dockerfile");
        for f in &r.findings {
            count += 1;
            let diag = FindingDiagnostic {
                finding: f,
                source: &named,
            };
            if handler.render_report(&mut out, &diag).is_err() {
                let _ = writeln!(out, "{}: {}", f.code, f.message);
            }
        }
    }
    if count > 0 {
        let files = reports.iter().filter(|r| !r.findings.is_empty()).count();
        let _ = writeln!(
            out,
            "{count} finding{} in {files} file{}",
            if count == 1 { "" } else { "s" },
            if files == 1 { "" } else { "s" }
        );
    }
    out
}

/// `--list-rules` as a table.
pub fn rules_table() -> String {
    let mut out = format!(
        "{:<7} {:<34} {:<36} {:<8} {:<7} {}\n",
        "CODE", "NAME", "ALIASES", "SEVERITY", "FIX", "CATEGORY"
    );
    for rule in rules::all() {
        let m = rule.meta();
        let fix = match m.fix {
            Some(super::FixSafety::Safe) => "safe",
            Some(super::FixSafety::Unsafe) => "unsafe",
            None => "-",
        };
        let aliases = m.aliases().join(",");
        let category = if m.experimental {
            format!("{} (experimental)", m.category)
        } else {
            m.category.to_owned()
        };
        let _ = writeln!(
            out,
            "{:<7} {:<34} {:<36} {:<8} {:<7} {}",
            m.code,
            m.name,
            if aliases.is_empty() { "-" } else { &aliases },
            m.severity.as_str(),
            fix,
            category
        );
    }
    out
}

/// `--list-rules --format json`.
pub fn rules_json() -> String {
    let rules: Vec<Value> = rules::all()
        .iter()
        .map(|r| {
            let m = r.meta();
            json!({
                "code": m.code,
                "name": m.name,
                "aliases": m.aliases(),
                "hadolint": m.hadolint,
                "buildkit": m.buildkit,
                "category": m.category,
                "severity": m.severity,
                "fix": m.fix,
                "experimental": m.experimental,
                "summary": m.summary(),
            })
        })
        .collect();
    json_string(&Value::Array(rules))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::engine::lint_source;
    use crate::lint::Config;

    #[test]
    fn typed_json_matches_the_value_rendering() {
        // MAINTAINER (a fix), an unpinned package, a parse error.
        let text = "FROM a\nMAINTAINER me\nRUN apt-get install -y curl\nBOGUS x\n";
        let source = SourceFile::new("Dockerfile", text);
        let findings = lint_source(&source, &Config::default());
        assert!(findings.iter().any(|f| f.fix.is_some()));
        let reports = [FileReport { source, findings }];
        assert_eq!(
            kiln_json_string(&reports),
            json_string(&kiln_json(&reports))
        );
    }
}
