//! What a Dockerfile author sees of RUN in a real build (issue 5's list): ENV and ARG
//! visible in the command, USER by name (resolved in the image's /etc/passwd), SHELL
//! changes that apply to the shell form but not to the exec form, heredoc RUN fed to the
//! shell or to its `#!` interpreter, permissions, owners, symlinks and hard links made by a
//! RUN kept in its layer, a modified file carried whole, a deletion as a whiteout, and
//! exactly one layer per RUN that changed something. One busybox base built by kiln.

mod image_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use image_support::busybox::{context, skip_reason, store_with_busybox};
use image_support::*;

type Entry = LayerEntry;

/// The entries of every layer of `name`, bottom first, by path.
fn layers(root: &Path, name: &str) -> Vec<BTreeMap<String, Entry>> {
    layer_tars(root, name)
        .iter()
        .map(|tar| layer_entries(tar))
        .collect()
}

const DOCKERFILE: &str = r#"FROM bb:1
ARG GREETING=hello
ENV APP_HOME=/srv/app
RUN mkdir -p "$APP_HOME" && echo "$GREETING from $APP_HOME" > "$APP_HOME/env.txt"
RUN mkdir -p /etc && printf 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' > /etc/passwd && printf 'root:x:0:\napp:x:1000:\n' > /etc/group
RUN mkdir /data && chown app:app /data && chmod 0750 /data && ln -s /data /data-link && echo one > /data/f && ln /data/f /data/hard && echo old > /data/edit && echo bye > /data/gone
USER app
RUN id -u > /data/uid && id -g >> /data/uid && touch /data/by-app
USER root
RUN echo new > /data/edit && rm /data/gone
RUN <<EOF
echo "heredoc in $APP_HOME" > /heredoc.txt
echo second line >> /heredoc.txt
EOF
RUN <<EOF
#!/bin/awk -f
BEGIN { print "awk ran" > "/awk.txt" }
EOF
RUN true
RUN printf '#!/bin/sh\necho wrapped >> /wrapped.log\nexec /bin/sh "$@"\n' > /bin/wrapsh && chmod 0755 /bin/wrapsh
SHELL ["/bin/wrapsh", "-c"]
RUN echo "shell form" > /shell.txt
RUN ["/bin/cp", "/data/f", "/exec-copy"]
"#;

#[test]
fn run_semantics_a_dockerfile_author_relies_on() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: run_semantics_a_dockerfile_author_relies_on: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(dir.path(), "ctx", DOCKERFILE);
    let out_dir = dir.path().join("out");
    let output = format!("type=local,dest={}", out_dir.display());
    let out = kiln(
        &root,
        &[
            "build",
            "--network=none",
            "--build-arg",
            "GREETING=hi",
            "-t",
            "sem:1",
            "-o",
            &output,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    let read = |p: &str| fs::read_to_string(out_dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));

    // ENV and the ARG (with its --build-arg value) are in the command's environment.
    assert_eq!(read("srv/app/env.txt"), "hi from /srv/app\n");
    // USER app is resolved in the image's own /etc/passwd.
    assert_eq!(read("data/uid"), "1000\n1000\n");
    // Heredocs: fed to the shell, or run by their #! interpreter.
    assert_eq!(read("heredoc.txt"), "heredoc in /srv/app\nsecond line\n");
    assert_eq!(read("awk.txt"), "awk ran\n");
    // SHELL applies to the shell form once; the exec form runs without any shell.
    assert_eq!(read("shell.txt"), "shell form\n");
    assert_eq!(read("wrapped.log"), "wrapped\n");
    assert_eq!(read("exec-copy"), "one\n");
    // The modification and the deletion, in the final filesystem.
    assert_eq!(read("data/edit"), "new\n");
    assert!(fs::symlink_metadata(out_dir.join("data/gone")).is_err());

    let layers = layers(&root, "sem:1");
    // The base, then one layer per RUN that changed something: `RUN true` adds none.
    let runs_with_changes = DOCKERFILE
        .lines()
        .filter(|l| l.starts_with("RUN ") && *l != "RUN true")
        .count();
    assert_eq!(
        layers.len(),
        1 + runs_with_changes,
        "{:?}",
        layers
            .iter()
            .map(|l| l.keys().collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    let find = |path: &str| -> (usize, Entry) {
        layers
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, l)| l.get(path).map(|e| (i, e.clone())))
            .unwrap_or_else(|| panic!("{path} in no layer"))
    };
    let (_, data) = find("data");
    assert_eq!(
        (data.kind, data.mode, data.uid, data.gid),
        (b'5', 0o750, 1000, 1000)
    );
    let (_, link) = find("data-link");
    assert_eq!((link.kind, link.link.as_str()), (b'2', "/data"));
    let (f_layer, f) = find("data/f");
    let (hard_layer, hard) = find("data/hard");
    assert_eq!((f.kind, f.body.as_slice()), (b'0', &b"one\n"[..]));
    assert_eq!(
        (hard.kind, hard.link.as_str(), hard_layer),
        (b'1', "data/f", f_layer),
        "a hard link made by a RUN is a tar hard link to an entry of the same layer"
    );
    let (_, by_app) = find("data/by-app");
    assert_eq!((by_app.uid, by_app.gid), (1000, 1000));
    // The modifying RUN's layer: the whole new file and a whiteout, nothing else of /data.
    let (edit_layer, edit) = find("data/edit");
    assert_eq!(edit.body, b"new\n");
    let names: Vec<&String> = layers[edit_layer].keys().collect();
    assert_eq!(names, ["data", "data/.wh.gone", "data/edit"], "{names:?}");
}
