//! Writes the generated fixtures and schemas into the repository.
//!
//! Run from anywhere inside the repository: `cargo run -p provenance-testkit --bin gen-fixtures`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for f in provenance_testkit::all() {
        let path = root.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, f.content)?;
        println!("wrote {}", f.path);
    }
    Ok(())
}
