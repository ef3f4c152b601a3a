//! Validation against the OCI image-spec JSON schemas in `../shared/schemas/oci`.
//! Shared by tests/image_interop.rs and tests/build_schema.rs.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn schemas_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas/oci");
    dir.is_dir().then_some(dir)
}

/// Serves the OCI schemas to the validator by file name, with their nested draft-04 `id`s
/// removed (they re-base relative `$ref`s to URLs that are not the files).
pub struct SchemaFiles(PathBuf);

pub fn strip_ids(value: &mut Value) {
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

pub fn validate(dir: &Path, schema_file: &str, document: &[u8], what: &str) {
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
