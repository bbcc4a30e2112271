//! The SQL fixture tests are generated from the files under `tests/sql` at compile time:
//! a fixture added or removed must rebuild them.
fn main() {
    println!("cargo:rerun-if-changed=tests/sql");
}
