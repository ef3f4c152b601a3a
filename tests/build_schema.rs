//! The documents `kiln build` writes (config with every metadata instruction,
//! manifest, index of the `type=oci` output) validate against the OCI JSON
//! schemas in `../shared/schemas/oci`. The schema loader is the one
//! tests/image_interop.rs uses, repeated because each test is its own crate.

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};

use image_support::*;
use serde_json::Value;

fn schemas_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas/oci");
    dir.is_dir().then_some(dir)
}

/// Serves the OCI schemas to the validator by file name, with their nested draft-04 `id`s
/// removed (they re-base relative `$ref`s to URLs that are not the files).
struct SchemaFiles(PathBuf);

fn strip_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("id").is_some_and(Value::is_string) {
                map.remove("id");
            }
            map.values_mut().for_each(strip_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_ids),
        _ => {}
    }
}

impl SchemaFiles {
    fn load(&self, name: &str) -> Value {
        let mut value: Value =
            serde_json::from_slice(&fs::read(self.0.join(name)).unwrap()).unwrap();
        strip_ids(&mut value);
        value
    }
}

impl jsonschema::Retrieve for SchemaFiles {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(self.load(&name))
    }
}

fn validate(dir: &Path, schema_file: &str, document: &[u8], what: &str) {
    let files = SchemaFiles(dir.to_path_buf());
    let mut schema = files.load(schema_file);
    schema["id"] = Value::String(format!("file:///oci/{schema_file}"));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .with_retriever(SchemaFiles(dir.to_path_buf()))
        .build(&schema)
        .unwrap();
    let instance: Value = serde_json::from_slice(document).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {schema_file}: {errors:#?}"
    );
}

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
