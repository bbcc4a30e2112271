//! Checks of `terraform/` that run offline, where `terraform validate` cannot (no provider can
//! be downloaded): the files against the google provider's schema (`schema`, `check`), and
//! against what the code needs of them (`contracts`).

pub mod check;
pub mod module;
pub mod schema;

use std::path::{Path, PathBuf};

/// The `.tf` files of a module's folder (not its subfolders, as Terraform reads a module), by
/// name.
pub fn tf_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    Ok(files)
}
