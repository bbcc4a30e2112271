//! Checks of `terraform/` that run offline, where `terraform validate` cannot (no provider can
//! be downloaded): the files against the google provider's schema (`schema`, `check`), and
//! against what the code needs of them (`contracts`).

pub mod check;
pub mod module;
pub mod schema;
