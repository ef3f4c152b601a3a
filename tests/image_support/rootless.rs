//! Running kiln as an unprivileged user (the catalogue's FX-user) from tests that run as
//! root: uid 65534 (container root only), or `kiln-subids`, the user `scripts/setup.sh` makes
//! with a subordinate id range.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{busybox, have, stderr};

/// A user to build as.
#[derive(Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    pub const NOBODY: User = User {
        uid: 65534,
        gid: 65534,
    };

    /// `kiln-subids` from scripts/setup.sh, when it exists with a subordinate range.
    pub fn with_subordinate_ids() -> Result<User, String> {
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd
            .lines()
            .find(|l| l.starts_with("kiln-subids:"))
            .ok_or("no user kiln-subids (scripts/setup.sh makes it)")?;
        let fields: Vec<&str> = entry.split(':').collect();
        let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
        let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
        if !subuid.lines().any(|l| l.starts_with("kiln-subids:"))
            || !subgid.lines().any(|l| l.starts_with("kiln-subids:"))
        {
            return Err("kiln-subids has no range in /etc/subuid and /etc/subgid".into());
        }
        if !have("newuidmap") || !have("newgidmap") {
            return Err("no newuidmap/newgidmap (apt-get install uidmap)".into());
        }
        Ok(User {
            uid: fields[2].parse().unwrap(),
            gid: fields[3].parse().unwrap(),
        })
    }

    pub fn setpriv(self) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups");
        cmd
    }

    pub fn kiln(self, root: &Path, args: &[&str]) -> Output {
        self.setpriv()
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(root)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn chown(self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Why a rootless test cannot run here, if it cannot.
pub fn skip_reason(user: User) -> Option<String> {
    if let Some(why) = busybox::skip_reason() {
        return Some(why.to_string());
    }
    if !have("setpriv") {
        return Some("no setpriv".into());
    }
    let probe = user.setpriv().args(["unshare", "-U", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        return Some("no unprivileged user namespaces".into());
    }
    None
}

/// A store at `dir/store` owned by `user`, holding `bb:1` built by `user` from
/// `base_dockerfile` over a busybox context, plus what `extra` adds to that context (run as
/// root before everything under `dir` is handed to `user`).
pub fn store(dir: &Path, user: User, base_dockerfile: &str, extra: impl FnOnce(&Path)) -> PathBuf {
    let ctx = busybox::busybox_context(dir, base_dockerfile);
    extra(&ctx);
    user.chown(dir);
    let root = dir.join("store");
    let out = user.kiln(&root, &["build", "-q", "-t", "bb:1", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "base build failed: {}", stderr(&out));
    root
}

/// The names left in the store's tmp/ (a finished build leaves none).
pub fn store_leftovers(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("tmp"))
        .map(|list| {
            list.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Fails unless the store's tmp/ is empty, as every finished build leaves it.
pub fn assert_store_clean(root: &Path) {
    let leftovers = store_leftovers(root);
    assert!(
        leftovers.is_empty(),
        "left in the store's tmp/: {leftovers:?}"
    );
}
