//! The names the Python tooling may use are exported from here, and only from here:
//! `infra/contract-names.json` must be exactly what the Rust contract says.
//! Regenerate it with `UPDATE_EXPORTS=1 cargo test -p ha-domain --test exported_names`.

use ha_domain::model::tag;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Fields in this order and tags sorted by name, whatever serde_json's features.
#[derive(Serialize)]
struct Exported {
    about: &'static str,
    tags: BTreeMap<&'static str, &'static str>,
}

fn exported() -> Exported {
    Exported {
        about: "Generated from crates/ha-domain (model::tag::ALL); do not edit. See crates/ha-domain/tests/exported_names.rs.",
        tags: tag::ALL.iter().copied().collect(),
    }
}

#[test]
fn the_python_tooling_reads_the_names_the_contract_exports() {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../infra/contract-names.json");
    let want = serde_json::to_string_pretty(&exported()).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPORTS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(have, want, "{} is stale: regenerate it (see this test's module doc)", path.display());
}

#[test]
fn every_exported_tag_is_in_the_project_namespace() {
    for (name, key) in tag::ALL {
        // Values of the role and promotion-hook tags are not keys.
        let value = name.starts_with("role_") || name.starts_with("hook_");
        assert!(key.starts_with("outposts-ha:") || value, "{name} = {key}");
    }
    let mut names: Vec<&str> = tag::ALL.iter().map(|(n, _)| *n).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), tag::ALL.len(), "names are unique");
}

#[test]
fn every_tag_constant_is_exported() {
    let source = std::fs::read_to_string(
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("src/model.rs"),
    )
    .unwrap();
    let module = source.split("pub mod tag {").nth(1).and_then(|m| m.split("pub const ALL").next()).unwrap();
    let declared = module.lines().filter(|l| l.trim_start().starts_with("pub const ") && l.contains(": &str")).count();
    assert_eq!(declared, tag::ALL.len(), "a tag constant is missing from tag::ALL");
}
