//! A clone of the repository passes its tests alone: no test, bench, fuzz target or script
//! reads the team's directory beside the checkout. The vectors live in `tests/data`, each set
//! with its source and licence.

use std::path::Path;

/// The sibling directory only the team has, spelt in two pieces so this file does not match.
const SIBLING: &str = concat!("../", "shared");

fn scan(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "node_modules" | "data" | ".git") {
                scan(&path, hits);
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            if line.contains(SIBLING) {
                hits.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
}

#[test]
fn nothing_reads_the_directory_beside_the_checkout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hits = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz", "scripts", ".ci"] {
        scan(&root.join(dir), &mut hits);
    }
    assert!(hits.is_empty(), "reads {SIBLING}:\n{}", hits.join("\n"));
}

#[test]
fn every_vector_set_names_its_source_and_licence() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let index = std::fs::read_to_string(data.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name != "README.md" {
            assert!(
                index.contains(&format!("`{name}")),
                "tests/data/README.md does not list {name}"
            );
        }
    }
    let cookbook = data.join("jose-cookbook");
    assert!(cookbook.join("SOURCE.txt").is_file() && cookbook.join("LICENSE").is_file());
}
