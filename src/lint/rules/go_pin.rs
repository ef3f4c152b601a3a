//! DL3062: Reports `go install`, `go get` and `go run` of a module without a pinned version.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `go install`, `go get` and `go run` of a remote package without
    /// a version (`@v1.2.3`), or with the moving versions `@latest` / `@none`.
    ///
    /// ## Why is this bad?
    /// Without a version, Go resolves the package to whatever the module proxy
    /// serves at build time: two builds of the same Dockerfile install
    /// different code, and a compromised release is picked up silently.
    /// Local paths (`.`, `./cmd/x`, `/src/tool`) are pinned by the build
    /// context and are not reported.
    ///
    /// For `go run`, only the package (the first operand) is checked: what
    /// follows is passed to the program. hadolint 2.15 checks the `go run`
    /// commands of a RUN and then ignores its `go install`/`go get`
    /// commands; kiln checks all of them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM golang:1.23
    /// RUN go install golang.org/x/tools/cmd/goimports
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM golang:1.23
    /// RUN go install golang.org/x/tools/cmd/goimports@v0.24.0
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3062](https://github.com/hadolint/hadolint/wiki/DL3062)
    /// - [`go install`](https://go.dev/ref/mod#go-install)
    pub struct GoPin {
        code: "DL3062",
        name: "go-pin",
        hadolint: Some("DL3062"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// `go` build flags that take their value as the next word.
const WITH_VALUE: [&str; 16] = [
    "-C",
    "-p",
    "-o",
    "-asmflags",
    "-buildmode",
    "-compiler",
    "-gccgoflags",
    "-gcflags",
    "-installsuffix",
    "-ldflags",
    "-mod",
    "-modfile",
    "-overlay",
    "-pkgdir",
    "-tags",
    "-toolexec",
];

/// True for a package argument with a fixed version, or a local path.
fn pinned(package: &str) -> bool {
    let local = package == "." || package.starts_with('/') || package.starts_with('.');
    let version = package
        .rsplit_once('@')
        .is_some_and(|(_, v)| !v.is_empty() && v != "latest" && v != "none");
    local || version
}

impl Rule for GoPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            let mut found = Vec::new();
            for c in script.commands_named("go") {
                let operands = c.operands(&WITH_VALUE);
                let Some((sub, rest)) = operands.split_first() else {
                    continue;
                };
                let packages: Vec<_> = match sub.text() {
                    "install" | "get" => rest.iter().filter(|w| w.text() != "tool").collect(),
                    // Everything after the package is the program's arguments.
                    "run" => rest.iter().take(1).collect(),
                    _ => continue,
                };
                for w in packages {
                    // The raw word: `pkg@${VERSION}` is pinned by the build's value.
                    let text = w.raw.trim_matches(['"', '\'']);
                    // A file (`main.go`) is a local package.
                    if !pinned(text) && !text.ends_with(".go") {
                        found.push(w.span);
                    }
                }
            }
            for span in found {
                cx.report(
                    span,
                    "Pin versions in go. Instead of `go install <package>` use `go install <package>@<version>`",
                )
                .help("add `@<version>` (a tag or a commit), not `@latest`");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn unpinned_and_latest_packages_are_reported_at_the_package() {
        let text = "FROM a\nRUN go install -ldflags \"-s -w\" example.com/x example.com/y@v1 \\\n && go get example.com/z@latest\n";
        let f = assert_fires(&GoPin, text);
        assert_eq!(spans(text, &f), ["example.com/x", "example.com/z@latest"]);
    }

    #[test]
    fn go_run_checks_only_its_package_and_onbuild_is_checked() {
        let text = "FROM a\nRUN go run example.com/gen arg1 arg2\n";
        let f = assert_fires(&GoPin, text);
        assert_eq!(spans(text, &f), ["example.com/gen"]);
        assert_fires(&GoPin, "FROM a\nONBUILD RUN go install example.com/x\n");
    }

    #[test]
    fn versions_local_paths_and_other_subcommands_are_silent() {
        for run in [
            "go install example.com/x@v1.2.3",
            "go install \"example.com/x@${VERSION}\" example.com/y@$V",
            "go install ./... && go install .",
            "go run ./cmd/gen example.com/not-a-package",
            "go run main.go",
            "go build example.com/x",
            "go mod download",
            "go get -u",
        ] {
            assert_silent(&GoPin, &format!("FROM a\nRUN {run}\n"));
        }
    }
}
