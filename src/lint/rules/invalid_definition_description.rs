//! BK010 / InvalidDefinitionDescription (experimental): a comment above ARG
//! or a named stage that does not start with the defined name.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports a comment directly above an `ARG` or a named `FROM … AS name`
    /// that does not start with the name it describes
    /// (`# <name> <description>`). Experimental: enable it with
    /// `# check=experimental=InvalidDefinitionDescription` or
    /// `--experimental InvalidDefinitionDescription`.
    ///
    /// ## Why is this bad?
    /// BuildKit turns such comments into the descriptions shown by
    /// `docker buildx build --call=outline`; a comment in another form is
    /// either lost or should be separated by an empty line.
    ///
    /// ## Example
    /// ```dockerfile
    /// # the Go version to build with
    /// ARG GO_VERSION=1.22
    /// FROM golang:${GO_VERSION}
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// # GO_VERSION the Go version to build with
    /// ARG GO_VERSION=1.22
    /// FROM golang:${GO_VERSION}
    /// ```
    ///
    /// ## References
    /// - [BuildKit check InvalidDefinitionDescription](https://docs.docker.com/reference/build-checks/invalid-definition-description/)
    pub struct InvalidDefinitionDescription {
        code: "BK010",
        name: "invalid-definition-description",
        hadolint: None,
        buildkit: Some("InvalidDefinitionDescription"),
        category: "style",
        severity: Severity::Warning,
        fix: None,
        experimental: true,
    }
}

impl Rule for InvalidDefinitionDescription {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut found: Vec<(Span, String)> = Vec::new();
        for r in cx.top_level() {
            let name = match r.kind() {
                InstructionKind::Arg(decls) if decls.len() == 1 => decls[0].name.text.clone(),
                InstructionKind::From(f) => match &f.alias {
                    Some(a) => a.text.clone(),
                    None => continue,
                },
                _ => continue,
            };
            let Some(comment) = r.instruction.comments.last() else {
                continue;
            };
            // Pragmas are not descriptions.
            let text = comment.text.as_str();
            if text.starts_with("hadolint")
                || text.starts_with("kiln")
                || text.starts_with("check=")
            {
                continue;
            }
            if text.split_whitespace().next() != Some(name.as_str()) {
                found.push((comment.span, name));
            }
        }
        for (span, name) in found {
            cx.report(
                span,
                format!("Comment for build stage or argument should follow the format: `# {name} <description>`"),
            )
            .help("if this is not a description, separate it from the instruction with an empty line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::Config;
    use crate::lint::testing::{assert_silent, check_with};

    fn on() -> Config {
        Config {
            experimental: vec!["InvalidDefinitionDescription".into()],
            ..Config::default()
        }
    }

    #[test]
    fn misworded_descriptions_are_reported_when_enabled() {
        assert_eq!(
            check_with(
                &InvalidDefinitionDescription,
                "# version\nARG V=1\nFROM a:1\n",
                &on()
            )
            .len(),
            1
        );
        assert_eq!(
            check_with(
                &InvalidDefinitionDescription,
                "# the build stage\nFROM a:1 AS build\n",
                &on()
            )
            .len(),
            1
        );
        assert_eq!(
            check_with(
                &InvalidDefinitionDescription,
                "# check=experimental=all\n# x\nFROM a:1 AS build\n",
                &Config::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn good_descriptions_separated_comments_and_default_off_are_silent() {
        let text = "# V the version\nARG V=1\n# note\n\nFROM a:1 AS build\n";
        assert!(check_with(&InvalidDefinitionDescription, text, &on()).is_empty());
        assert_silent(
            &InvalidDefinitionDescription,
            "# version\nARG V=1\nFROM a:1\n",
        );
    }
}
