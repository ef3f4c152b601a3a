//! Questions rules ask about a command: its flags (short flags combined as
//! `-qy`, long flags with or without `=value`), its operands after a
//! subcommand, and the packages a package-manager invocation installs.

use super::{Command, Word};

impl Command {
    /// True when the command has `flag`: a long flag (`--yes`, also as
    /// `--yes=…`) or a one-letter short flag, alone or combined (`-y` in `-qy`).
    pub fn has_flag(&self, flag: &str) -> bool {
        let long = flag.starts_with("--");
        let short = flag.strip_prefix('-').filter(|f| !long && f.len() == 1);
        self.args().iter().any(|w| {
            let v = w.text();
            if long {
                v == flag || v.strip_prefix(flag).is_some_and(|r| r.starts_with('='))
            } else if let Some(letter) = short {
                v.len() > 1 && v.starts_with('-') && !v.starts_with("--") && v[1..].contains(letter)
            } else {
                v == flag
            }
        })
    }

    /// True when the command has any of `flags`.
    pub fn has_any_flag(&self, flags: &[&str]) -> bool {
        flags.iter().any(|f| self.has_flag(f))
    }

    /// The operands (non-option arguments), skipping the value that follows
    /// each option of `with_value` given as a separate word (`-t stable`).
    pub fn operands(&self, with_value: &[&str]) -> Vec<&Word> {
        let mut out = Vec::new();
        let mut skip = false;
        for w in self.args() {
            if skip {
                skip = false;
                continue;
            }
            if w.text() == "--" {
                continue;
            }
            if w.is_flag() {
                skip = with_value.contains(&w.text());
                continue;
            }
            out.push(w);
        }
        out
    }

    /// The operands after the first operand equal to `subcommand` (none when
    /// the command does not have that subcommand).
    pub fn args_after_subcommand(&self, subcommand: &str, with_value: &[&str]) -> Vec<&Word> {
        let ops = self.operands(with_value);
        match ops.iter().position(|w| w.text() == subcommand) {
            Some(i) => ops[i + 1..].to_vec(),
            None => Vec::new(),
        }
    }

    /// The first operand, typically the subcommand (`install`).
    pub fn subcommand(&self, with_value: &[&str]) -> Option<&str> {
        self.operands(with_value).first().map(|w| w.text())
    }

    /// The packages this command installs when it is one of the package
    /// managers kiln knows, with the manager's name.
    pub fn installed_packages(&self) -> Option<(Manager, Vec<&Word>)> {
        let program = self.program()?;
        let manager = Manager::ALL
            .into_iter()
            .find(|m| m.programs().contains(&program))?;
        self.subcommand(manager.options_with_value())?;
        let install = manager.install_subcommands().iter().find(|s| {
            self.subcommand(manager.options_with_value()) == Some(**s)
                || (manager == Manager::Npm && self.has_arg(s))
        })?;
        let pkgs = self.args_after_subcommand(install, manager.options_with_value());
        Some((manager, pkgs))
    }
}

/// Package managers whose installs kiln's rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    AptGet,
    Apk,
    Pip,
    Npm,
    Gem,
    Yum,
    Dnf,
    Zypper,
}

impl Manager {
    pub const ALL: [Manager; 8] = [
        Manager::AptGet,
        Manager::Apk,
        Manager::Pip,
        Manager::Npm,
        Manager::Gem,
        Manager::Yum,
        Manager::Dnf,
        Manager::Zypper,
    ];

    /// The program names that run this manager.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Manager::AptGet => &["apt-get"],
            Manager::Apk => &["apk"],
            Manager::Pip => &["pip", "pip3", "pip2"],
            Manager::Npm => &["npm"],
            Manager::Gem => &["gem"],
            Manager::Yum => &["yum"],
            Manager::Dnf => &["dnf", "microdnf"],
            Manager::Zypper => &["zypper"],
        }
    }

    fn install_subcommands(self) -> &'static [&'static str] {
        match self {
            Manager::AptGet | Manager::Pip | Manager::Gem | Manager::Yum | Manager::Dnf => {
                &["install"]
            }
            Manager::Apk => &["add"],
            Manager::Npm => &["install", "i", "add"],
            Manager::Zypper => &["install", "in"],
        }
    }

    /// Options whose value is the next word: never mistaken for packages.
    pub fn options_with_value(self) -> &'static [&'static str] {
        match self {
            Manager::AptGet => &[
                "-t",
                "--target-release",
                "-o",
                "--option",
                "-c",
                "--config-file",
            ],
            Manager::Apk => &[
                "-t",
                "--virtual",
                "-X",
                "--repository",
                "-p",
                "--root",
                "--arch",
                "--cache-dir",
                "--keys-dir",
                "--repositories-file",
            ],
            Manager::Pip => &[
                "-r",
                "--requirement",
                "-c",
                "--constraint",
                "-e",
                "--editable",
                "-t",
                "--target",
                "-i",
                "--index-url",
                "--extra-index-url",
                "-f",
                "--find-links",
                "--prefix",
                "--root",
                "--src",
                "--upgrade-strategy",
                "--platform",
                "--python-version",
                "--implementation",
                "--abi",
                "--trusted-host",
                "--cache-dir",
                "--progress-bar",
                "--log",
                "--proxy",
                "--retries",
                "--timeout",
            ],
            Manager::Npm => &["--prefix", "--registry", "--cache", "-w", "--workspace"],
            Manager::Gem => &[
                "-v",
                "--version",
                "-i",
                "--install-dir",
                "-n",
                "--bindir",
                "--source",
                "-s",
                "-P",
                "--trust-policy",
                "--platform",
            ],
            Manager::Yum | Manager::Dnf => &[
                "--enablerepo",
                "--disablerepo",
                "--installroot",
                "--releasever",
                "-c",
                "--config",
                "--setopt",
                "--exclude",
                "-x",
                "--repo",
                "--repoid",
            ],
            Manager::Zypper => &["-r", "--repo", "--from", "-t", "--type", "--root", "-R"],
        }
    }
}
