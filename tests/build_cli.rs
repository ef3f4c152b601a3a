//! `kiln build` command-line behaviour docker users rely on: docker's wording
//! for unknown flags, bad flag values and build args no ARG consumes;
//! `--build-arg K` taking the environment; `--iidfile`; `-q`.

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image_support::stderr;

fn context(dir: &Path, dockerfile: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

fn kiln_env(root: &Path, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("--root").arg(root).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.output().unwrap()
}

#[test]
fn unknown_flags_and_bad_values_get_dockers_wording() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), "FROM scratch\n");
    let root = dir.path().join("store");
    let out = kiln_env(
        &root,
        &["build", "--bogus", ctx.to_str().unwrap()],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "unknown flag: --bogus\nSee 'kiln build --help'.\n"
    );
    let out = kiln_env(&root, &["build", "-z", ctx.to_str().unwrap()], &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("unknown shorthand flag: 'z' in -z\n"),
        "{}",
        stderr(&out)
    );
    let out = kiln_env(
        &root,
        &["build", "--progress=fancy", ctx.to_str().unwrap()],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("invalid argument \"fancy\" for \"--progress\" flag: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn build_args_from_the_environment_unconsumed_warning_iidfile_and_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        "FROM scratch\nARG FROM_ENV\nLABEL v=$FROM_ENV\n",
    );
    let root = dir.path().join("store");
    let iid = dir.path().join("iid");
    let args = [
        "build",
        "--progress=plain",
        "--build-arg",
        "FROM_ENV",
        "--build-arg",
        "NOPE=1",
        "--build-arg",
        "UNSET_ONE",
        "--iidfile",
        iid.to_str().unwrap(),
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ];
    let out = kiln_env(&root, &args, &[("FROM_ENV", "from-env")], &["UNSET_ONE"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("[Warning] One or more build-args [NOPE UNSET_ONE] were not consumed\n"),
        "{}",
        stderr(&out)
    );
    let store = kiln::image::Store::open(&root).unwrap();
    let image = store.resolve("app:1").unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&image.config_digest).unwrap()).unwrap();
    assert_eq!(config["config"]["Labels"]["v"], "from-env");
    let id = fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:") && !id.ends_with('\n'), "{id:?}");
    drop(store);

    // -q: only the image id on stdout, nothing on stderr.
    let mut quiet = args.to_vec();
    quiet.insert(1, "-q");
    let out = kiln_env(&root, &quiet, &[("FROM_ENV", "from-env")], &["UNSET_ONE"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{id}\n"));
    assert_eq!(stderr(&out), "");
}
