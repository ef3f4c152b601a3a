//! DL3001: Reports commands that make no sense in a container build, such as `ssh`, `vim`, `shutdown`, `service`, `ps`, `free`, `top`, `kill`, `mount` and `ifconfig`.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports commands that make no sense in a container build, such as `ssh`,
    /// `vim`, `shutdown`, `service`, `ps`, `free`, `top`, `kill`, `mount` and
    /// `ifconfig`.
    ///
    /// ## Why is this bad?
    /// A RUN step runs once, without a terminal or an init system, while the image
    /// is built. Interactive tools, service managers and process inspection do
    /// nothing useful there and usually mean the Dockerfile was written as if it
    /// were a live machine.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN service nginx start
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// CMD ["nginx", "-g", "daemon off;"]
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3001](https://github.com/hadolint/hadolint/wiki/DL3001)
    pub struct PointlessCommand {
        code: "DL3001",
        name: "pointless-command",
        hadolint: Some("DL3001"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for PointlessCommand {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        const POINTLESS: [&str; 10] = [
            "free", "ifconfig", "kill", "mount", "ps", "service", "shutdown", "ssh", "top", "vim",
        ];
        for (_, script) in runs(cx, true) {
            for c in script.commands() {
                if let Some(p) = c.program().filter(|p| POINTLESS.contains(p)) {
                    cx.report(
                        c.name_span(),
                        "For some bash commands it makes no sense running them in a Docker container like `ssh`, `vim`, `shutdown`, `service`, `ps`, `free`, `top`, `kill`, `mount`, `ifconfig`",
                    )
                    .help(format!("`{p}` does nothing useful while an image is built"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn service_and_vim_are_reported_at_the_command_name() {
        let text = "FROM a\nRUN apt-get update && service x start; vim f\n";
        let f = assert_fires(&PointlessCommand, text);
        assert_eq!(spans(text, &f), ["service", "vim"]);
    }

    #[test]
    fn applies_under_onbuild_and_in_sh_c() {
        assert_fires(&PointlessCommand, "FROM a\nONBUILD RUN ps aux\n");
        assert_fires(&PointlessCommand, "FROM a\nRUN sh -c 'top -b'\n");
    }

    #[test]
    fn arguments_named_like_tools_are_silent() {
        assert_silent(
            &PointlessCommand,
            "FROM a\nRUN apt-get install -y vim ssh\n",
        );
    }
}
