//! The documents `kiln build` writes (config with every metadata instruction,
//! manifest, index of the `type=oci` output) validate against the OCI JSON
//! schemas in `../shared/schemas/oci`. The schema loader is the one
//! tests/image_interop.rs uses, repeated because each test is its own crate.

mod image_support;

use std::fs;

use image_support::*;
use serde_json::Value;

use image_support::schema::{schemas_dir, validate};

#[test]
fn built_config_manifest_and_index_validate_against_the_oci_schemas() {
    let Some(schemas) = schemas_dir() else {
        eprintln!("skipped: ../shared/schemas/oci is absent");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("a.txt"), "a").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nENV A=1\nWORKDIR /w\nCOPY a.txt .\nUSER 1000:1000\nEXPOSE 80 53/udp\nVOLUME /data\nLABEL x=y\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=5s CMD [\"/bin/true\"]\nSHELL [\"/bin/sh\", \"-ec\"]\nONBUILD COPY a.txt /b\nENTRYPOINT [\"/bin/sh\"]\nCMD [\"-c\", \"true\"]\n",
    )
    .unwrap();
    let root = t.path().join("store");
    let oci = t.path().join("o.tar");
    kiln_ok(
        &root,
        &[
            "build",
            "--progress=plain",
            "-t",
            "schema:1",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let members = tar_members(&fs::read(&oci).unwrap());
    validate(
        &schemas,
        "image-index-schema.json",
        &members["index.json"],
        "index",
    );
    let index: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let manifest_name = format!(
        "blobs/sha256/{}",
        &index["manifests"][0]["digest"].as_str().unwrap()[7..]
    );
    let manifest_bytes = &members[&manifest_name];
    validate(
        &schemas,
        "image-manifest-schema.json",
        manifest_bytes,
        "manifest",
    );
    let manifest: Value = serde_json::from_slice(manifest_bytes).unwrap();
    let config_name = format!(
        "blobs/sha256/{}",
        &manifest["config"]["digest"].as_str().unwrap()[7..]
    );
    validate(
        &schemas,
        "config-schema.json",
        &members[&config_name],
        "config",
    );
    let config: Value = serde_json::from_slice(&members[&config_name]).unwrap();
    assert_eq!(
        config["config"]["Healthcheck"]["Interval"],
        5_000_000_000u64
    );
    assert_eq!(config["config"]["OnBuild"][0], "COPY a.txt /b");
}
