//! Shared setup for the sandbox integration tests: a busybox root filesystem made from the
//! `busybox-static` package (as `../shared/bench/make-busybox-rootfs.sh` does), and a helper
//! that runs a shell script in a fresh sandbox on top of it.

#![allow(dead_code)]

use std::io::Write as _;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kiln::sandbox::{self, RunOutcome, RunSpec};

/// Where the busybox binary lives on Debian (merged /usr).
const BUSYBOX: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// Why sandbox tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the sandbox tests need root (CI runs them as root)".into());
    }
    if busybox().is_none() {
        return Some("busybox is not installed (apt-get install busybox-static)".into());
    }
    None
}

/// Prints a visible skip line and returns true when the test cannot run.
pub fn skipped(test: &str) -> bool {
    match skip_reason() {
        Some(why) => {
            let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
            true
        }
        None => false,
    }
}

fn busybox() -> Option<&'static str> {
    BUSYBOX.iter().copied().find(|p| Path::new(p).is_file())
}

/// A busybox root filesystem (a read-only lower dir), built once per user and reused: it is
/// built under a temporary name and renamed into place, so a path that exists is complete.
pub fn rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let euid = nix::unistd::geteuid().as_raw();
        let base = std::env::temp_dir().join(format!("kiln-test-busybox-rootfs-v1-{euid}"));
        if let Ok(m) = std::fs::symlink_metadata(&base) {
            if m.is_dir() && std::os::unix::fs::MetadataExt::uid(&m) == euid {
                return base;
            }
            panic!(
                "{} exists but is not a directory owned by us",
                base.display()
            );
        }
        let tmp = base.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        make_rootfs(&tmp);
        if std::fs::rename(&tmp, &base).is_err() {
            // Another test process won the race; its copy is complete.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        base
    })
}

fn make_rootfs(r: &Path) {
    let bb = busybox().expect("busybox present");
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var", "dev", "proc", "sys",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(r.join("root"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(bb, r.join("bin/busybox")).unwrap();
    let list = std::process::Command::new(bb)
        .arg("--list-full")
        .output()
        .unwrap();
    for p in String::from_utf8_lossy(&list.stdout).lines() {
        if p == "bin/busybox" || p.is_empty() {
            continue;
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", r.join(p));
    }
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::create_dir_all(r.join("data/sub")).unwrap();
    std::fs::write(r.join("data/keep"), "keep\n").unwrap();
    std::fs::write(r.join("data/remove-me"), "bye\n").unwrap();
    std::fs::write(r.join("data/sub/old"), "old\n").unwrap();
}

/// One sandbox run's results; the temp dir holds upper and work.
pub struct Ran {
    pub outcome: RunOutcome,
    pub output: String,
    pub dir: tempfile::TempDir,
}

impl Ran {
    pub fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }
    pub fn code(&self) -> i32 {
        match self.outcome.status {
            sandbox::ExitStatus::Code(c) => c,
            sandbox::ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// A spec over the busybox rootfs with a fresh upper/work dir.
pub fn spec(script: &str) -> (RunSpec, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper");
    let work = dir.path().join("work");
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let spec = RunSpec::new(
        vec![rootfs().to_path_buf()],
        upper,
        work,
        vec!["/bin/sh".into(), "-c".into(), script.into()],
    );
    (spec, dir)
}

/// Runs `spec` and collects the output.
pub fn run(spec: RunSpec, dir: tempfile::TempDir) -> Ran {
    let mut out = Vec::new();
    let outcome =
        sandbox::run(&spec, &mut |b: &[u8]| out.extend_from_slice(b)).unwrap_or_else(|e| {
            panic!(
                "sandbox run failed: {e} ({:?})",
                std::error::Error::source(&e)
            )
        });
    Ran {
        outcome,
        output: String::from_utf8_lossy(&out).into_owned(),
        dir,
    }
}

/// Runs a shell script with default settings.
pub fn sh(script: &str) -> Ran {
    let (spec, dir) = spec(script);
    run(spec, dir)
}

/// The path of `tool` in PATH, if installed.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The source of `setx PATH NAME VALUE` (calls `lsetxattr`, prints `ok` or the error; a value
/// `hex:<digits>` is decoded, for binary values such as `security.capability`): busybox
/// has no setfattr, so the tests build this small static program to set xattrs inside a RUN.
const SETX_SOURCE: &str = r#"
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
extern "C" {
    fn lsetxattr(p: *const c_char, n: *const c_char, v: *const c_void, s: usize, f: c_int) -> c_int;
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let p = CString::new(a[1].as_str()).unwrap();
    let n = CString::new(a[2].as_str()).unwrap();
    let v: Vec<u8> = match a[3].strip_prefix("hex:") {
        Some(h) => (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()).collect(),
        None => a[3].as_bytes().to_vec(),
    };
    let r = unsafe { lsetxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    if r == 0 {
        println!("setx {} {}: ok", a[1], a[2]);
    } else {
        println!("setx {} {}: {}", a[1], a[2], std::io::Error::last_os_error());
    }
}
"#;

/// A lower dir holding `/bin/setx` (see [`SETX_SOURCE`]), built once per user with the `rustc`
/// that builds the tests (under a temporary name, then renamed, as [`rootfs`]); `None` (the
/// caller prints a skip line) when it cannot be built.
pub fn setx_layer() -> Option<&'static Path> {
    static LAYER: OnceLock<Option<PathBuf>> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            let euid = nix::unistd::geteuid().as_raw();
            let base = std::env::temp_dir().join(format!("kiln-test-setx-v2-{euid}"));
            if base.join("bin/setx").is_file() {
                return Some(base);
            }
            let tmp = base.with_extension(format!("tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(tmp.join("bin")).ok()?;
            let src = tmp.join("setx.rs");
            std::fs::write(&src, SETX_SOURCE).ok()?;
            let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
            let built = std::process::Command::new(rustc)
                .args(["-O", "-C", "target-feature=+crt-static", "-o"])
                .arg(tmp.join("bin/setx"))
                .arg(&src)
                .status()
                .is_ok_and(|s| s.success());
            let _ = std::fs::remove_file(&src);
            if !built {
                let _ = std::fs::remove_dir_all(&tmp);
                return None;
            }
            if std::fs::rename(&tmp, &base).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Some(base)
        })
        .as_deref()
}
