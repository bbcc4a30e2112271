//! A reading of `terraform/` for the contract tests: its locals, its resources by type and
//! name, and expressions as text to compare references by (`local.url["tick"]` and
//! `local.url.tick` read alike, every space gone, inside strings too) or, where the module
//! writes them so, as objects whose entries can be listed through `merge(…)` and `local.…`
//! references.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::Body;

/// Every `.tf` file of a folder, parsed.
#[derive(Debug)]
pub struct Module {
    bodies: Vec<Body>,
}

/// One `resource` block.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub name: &'a str,
    pub body: &'a Body,
}

impl Module {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut bodies = Vec::new();
        for file in super::tf_files(dir)? {
            let text = std::fs::read_to_string(&file)?;
            bodies.push(
                hcl_edit::parser::parse_body(&text)
                    .map_err(|e| anyhow!("{}: {e}", file.display()))?,
            );
        }
        Ok(Self { bodies })
    }

    /// The value of `local.name`.
    pub fn local(&self, name: &str) -> anyhow::Result<&Expression> {
        self.bodies
            .iter()
            .flat_map(|b| b.get_blocks("locals"))
            .find_map(|block| block.body.get_attribute(name))
            .map(|a| &a.value)
            .ok_or_else(|| anyhow!("terraform/ has no local `{name}`"))
    }

    /// The resources of `type_name`.
    pub fn resources(&self, type_name: &str) -> Vec<Resource<'_>> {
        self.bodies
            .iter()
            .flat_map(|b| b.get_blocks("resource"))
            .filter(|block| {
                block
                    .labels
                    .first()
                    .is_some_and(|l| l.as_str() == type_name)
            })
            .filter_map(|block| {
                Some(Resource {
                    name: block.labels.get(1)?.as_str(),
                    body: &block.body,
                })
            })
            .collect()
    }

    /// The resource `type_name.name`.
    pub fn resource(&self, type_name: &str, name: &str) -> anyhow::Result<Resource<'_>> {
        self.resources(type_name)
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| anyhow!("terraform/ has no {type_name}.{name}"))
    }

    /// The entries of an object written as a literal, a `local.…` reference, or `merge(…)` of
    /// those.
    pub fn entries(&self, expr: &Expression) -> anyhow::Result<BTreeMap<String, Expression>> {
        match expr {
            Expression::Object(object) => object
                .iter()
                .map(|(key, value)| Ok((key_text(key)?, value.expr().clone())))
                .collect(),
            Expression::FuncCall(call) if call.name.name.as_str() == "merge" => {
                let mut merged = BTreeMap::new();
                for arg in call.args.iter() {
                    merged.extend(self.entries(arg)?);
                }
                Ok(merged)
            }
            other => {
                let text = text(other);
                match text.strip_prefix("local.") {
                    Some(name) if !name.contains(['.', '[']) => self.entries(self.local(name)?),
                    _ => bail!("cannot list the entries of `{text}`"),
                }
            }
        }
    }

    /// The entry `key` of an object `expr` (as `entries` reads it).
    pub fn entry(&self, expr: &Expression, key: &str) -> anyhow::Result<Expression> {
        self.entries(expr)?
            .remove(key)
            .ok_or_else(|| anyhow!("`{}` has no `{key}`", text(expr)))
    }
}

fn key_text(key: &ObjectKey) -> anyhow::Result<String> {
    match key {
        ObjectKey::Ident(ident) => Ok(ident.as_str().to_string()),
        ObjectKey::Expression(Expression::String(s)) => Ok(s.as_str().to_string()),
        ObjectKey::Expression(other) => {
            bail!("an object key that is an expression: {}", text(other))
        }
    }
}

/// An expression as text with every space gone and `x["key"]` written `x.key`.
pub fn text(expr: &Expression) -> String {
    normalize(&expr.to_string())
}

/// The same normalization for text written by hand.
pub fn normalize(text: &str) -> String {
    let out: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // ["key"] → .key
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(start) = rest.find("[\"") {
        let Some(end) = rest[start + 2..].find("\"]") else {
            break;
        };
        let key = &rest[start + 2..start + 2 + end];
        if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            result.push_str(&rest[..start]);
            result.push('.');
            result.push_str(key);
            rest = &rest[start + 2 + end + 2..];
        } else {
            result.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
        }
    }
    result.push_str(rest);
    result
}

/// The value of attribute `name` in `body`.
pub fn attribute<'a>(body: &'a Body, name: &str) -> anyhow::Result<&'a Expression> {
    body.get_attribute(name)
        .map(|a| &a.value)
        .ok_or_else(|| anyhow!("no attribute `{name}`"))
}

/// The one block `name` in `body`.
pub fn block<'a>(body: &'a Body, name: &str) -> anyhow::Result<&'a Body> {
    let mut found = body.blocks().filter(|b| b.ident.as_str() == name);
    let first = found.next().with_context(|| format!("no block `{name}`"))?;
    if found.next().is_some() {
        bail!("more than one block `{name}`");
    }
    Ok(&first.body)
}

/// The attribute at `path` (`push_config.oidc_token.audience`) through single blocks.
pub fn at<'a>(body: &'a Body, path: &str) -> anyhow::Result<&'a Expression> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a path has a part");
    let mut here = body;
    for part in parts {
        here = block(here, part).with_context(|| format!("at {path}"))?;
    }
    attribute(here, last).with_context(|| format!("at {path}"))
}

/// The string a literal string expression holds.
pub fn literal(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(s) => Some(s.as_str()),
        _ => None,
    }
}
