//! A busybox base image for RUN tests, built by kiln itself from the
//! busybox-static binary (nothing is pulled), and small build contexts.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{is_root, kiln, stderr};

/// Why the RUN tests cannot run here, if they cannot: they need root and busybox-static.
pub fn skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("RUN tests need root");
    }
    if !Path::new("/bin/busybox").is_file() {
        return Some("/bin/busybox is absent (apt-get install busybox-static)");
    }
    None
}

/// A store under `dir` holding `bb:1`: `FROM scratch` plus `/bin/busybox`
/// with a symlink per applet and `/tmp`.
pub fn store_with_busybox(dir: &Path) -> PathBuf {
    let root = dir.join("store");
    let ctx = busybox_context(dir, "FROM scratch\nCOPY rootfs/ /\n");
    let out = kiln(&root, &["build", "-q", "-t", "bb:1", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "base build failed: {}", stderr(&out));
    root
}

/// The context `dir/bb-ctx` of a busybox base: `rootfs/` with `/bin/busybox`, a symlink per
/// applet and `/tmp`, and `dockerfile`.
pub fn busybox_context(dir: &Path, dockerfile: &str) -> PathBuf {
    let ctx = dir.join("bb-ctx");
    let bin = ctx.join("rootfs/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(ctx.join("rootfs/tmp")).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// A context directory `dir/name` holding only `dockerfile`.
pub fn context(dir: &Path, name: &str, dockerfile: &str) -> PathBuf {
    let ctx = dir.join(name);
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// A layer tar in the making with `/bin/busybox` (mode 0755) and `bin/sh -> busybox`,
/// for tests that pack an image archive by hand; `None` without busybox-static.
pub fn busybox_layer() -> Option<tar::Builder<Vec<u8>>> {
    let busybox = fs::read("/bin/busybox").ok()?;
    let mut builder = tar::Builder::new(Vec::new());
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o755);
    file.set_size(busybox.len() as u64);
    builder
        .append_data(&mut file, "bin/busybox", &busybox[..])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "bin/sh", "busybox").unwrap();
    Some(builder)
}
