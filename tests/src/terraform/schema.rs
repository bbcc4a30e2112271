//! The google provider's schema, read offline from the jsii assembly of the npm package
//! `@cdktf/provider-google` 16.12.1, which is generated from the provider 6.50.0 and carries,
//! for every resource and data source, a `…Config` interface: one property per argument or
//! nested block, `optional` or not, its type (a primitive or collection: an argument; a
//! struct: a block that may appear once; a list of structs: a block that may repeat), and a
//! link to the registry's documentation whose `#anchor` is the argument's Terraform name.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde::Deserialize;

/// The package whose schema is read; `tests/terraform/check.sh install` fetches it.
pub const PACKAGE: &str = "@cdktf/provider-google@16.12.1";

/// Where the assembly is: `BATON_TF_SCHEMA`, else the cache `check.sh install` fills.
pub fn assembly_path() -> PathBuf {
    std::env::var_os("BATON_TF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("BATON_CACHE_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("baton"))
                })
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/baton")
                });
            cache.join("tfschema/package/.jsii")
        })
}

/// One argument or nested block of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub required: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `name = value`.
    Attribute,
    /// `name { … }`, described by the struct `fqn`; `repeated` when it may appear more than
    /// once.
    Block { fqn: String, repeated: bool },
}

/// What a block may hold, by Terraform name.
#[derive(Debug, Clone, Default)]
pub struct BlockSchema {
    pub arguments: BTreeMap<String, Argument>,
}

/// Every resource and data source of the provider.
#[derive(Debug)]
pub struct Schema {
    /// Resource type → the fqn of its Config struct.
    pub resources: HashMap<String, String>,
    /// Data source type (without `data.`) → the fqn of its Config struct.
    pub data_sources: HashMap<String, String>,
    structs: HashMap<String, BlockSchema>,
}

impl Schema {
    /// Reads the assembly at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "the google provider's schema is not at {} (run `tests/terraform/check.sh install`, \
                 which fetches {PACKAGE} from npm)",
                path.display()
            )
        })?;
        let assembly: Assembly = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a jsii assembly", path.display()))?;
        Ok(Self::from_assembly(assembly))
    }

    fn from_assembly(assembly: Assembly) -> Self {
        let mut resources = HashMap::new();
        let mut data_sources = HashMap::new();
        let mut structs = HashMap::new();
        for (fqn, t) in assembly.types {
            if t.kind == "class" {
                let Some((is_data, name)) = represented(&t.docs) else {
                    continue;
                };
                let Some(config) = t
                    .initializer
                    .as_ref()
                    .and_then(|i| i.parameters.get(2))
                    .and_then(|p| p.ty.fqn.clone())
                else {
                    continue;
                };
                if is_data {
                    data_sources.insert(name, config);
                } else {
                    resources.insert(name, config);
                }
            } else if t.datatype {
                let arguments = t
                    .properties
                    .iter()
                    .map(|p| {
                        let kind = match p.ty.struct_fqn() {
                            Some((fqn, repeated)) => Kind::Block { fqn, repeated },
                            None => Kind::Attribute,
                        };
                        (
                            terraform_name(p),
                            Argument {
                                required: !p.optional,
                                kind,
                            },
                        )
                    })
                    .collect();
                structs.insert(fqn, BlockSchema { arguments });
            }
        }
        Self {
            resources,
            data_sources,
            structs,
        }
    }

    /// The block described by struct `fqn`.
    pub fn block(&self, fqn: &str) -> anyhow::Result<&BlockSchema> {
        self.structs
            .get(fqn)
            .ok_or_else(|| anyhow!("the schema has no struct {fqn}"))
    }
}

/// `Represents a {@link https://registry…/docs/resources/x google_x}.`: whether it is a data
/// source, and the type's name.
fn represented(docs: &Docs) -> Option<(bool, String)> {
    let summary = docs.summary.as_deref()?;
    let rest = summary.strip_prefix("Represents a {@link ")?;
    let (link, rest) = rest.split_once(' ')?;
    let name = rest.split('}').next()?.trim();
    if !name.starts_with("google_") {
        return None;
    }
    Some((link.contains("/docs/data-sources/"), name.to_string()))
}

/// An argument's Terraform name: the anchor of its registry link (camel-to-snake conversion
/// gets about twenty names wrong, `detect_md5hash` among them).
fn terraform_name(property: &Property) -> String {
    let texts = [&property.docs.remarks, &property.docs.summary];
    for text in texts.into_iter().flatten() {
        if let Some(at) = text.find("registry.terraform.io/providers/hashicorp/google/")
            && let Some(hash) = text[at..].find('#')
        {
            let anchor: String = text[at + hash + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !anchor.is_empty() {
                return anchor;
            }
        }
    }
    let mut snake = String::new();
    for c in property.name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[derive(Deserialize)]
struct Assembly {
    types: HashMap<String, JsiiType>,
}

#[derive(Deserialize)]
struct JsiiType {
    kind: String,
    #[serde(default)]
    datatype: bool,
    #[serde(default)]
    docs: Docs,
    #[serde(default)]
    properties: Vec<Property>,
    #[serde(default)]
    initializer: Option<Initializer>,
}

#[derive(Deserialize, Default)]
struct Docs {
    summary: Option<String>,
    remarks: Option<String>,
}

#[derive(Deserialize)]
struct Property {
    name: String,
    #[serde(default)]
    optional: bool,
    #[serde(rename = "type")]
    ty: TypeRef,
    #[serde(default)]
    docs: Docs,
}

#[derive(Deserialize)]
struct Initializer {
    #[serde(default)]
    parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    #[serde(rename = "type")]
    ty: TypeRef,
}

#[derive(Deserialize, Default)]
struct TypeRef {
    #[serde(default)]
    fqn: Option<String>,
    #[serde(default)]
    collection: Option<Box<Collection>>,
    #[serde(default)]
    union: Option<Union>,
}

#[derive(Deserialize)]
struct Collection {
    elementtype: TypeRef,
}

#[derive(Deserialize)]
struct Union {
    types: Vec<TypeRef>,
}

/// cdktf's "a value computed at apply time": not a struct.
const RESOLVABLE: &str = "cdktf.IResolvable";

impl TypeRef {
    /// The struct this type is, or is a list of (`true`), if any.
    fn struct_fqn(&self) -> Option<(String, bool)> {
        if let Some(fqn) = &self.fqn {
            return (fqn != RESOLVABLE).then(|| (fqn.clone(), false));
        }
        if let Some(collection) = &self.collection {
            return collection
                .elementtype
                .fqn
                .as_ref()
                .filter(|f| f.as_str() != RESOLVABLE)
                .map(|f| (f.clone(), true));
        }
        self.union
            .as_ref()
            .and_then(|u| u.types.iter().find_map(TypeRef::struct_fqn))
    }
}
