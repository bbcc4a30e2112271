//! A validation of Terraform files against the google provider's schema, for where `terraform
//! validate` cannot run (it needs the provider, which cannot be downloaded here). For every
//! `resource` and `data` block of a `google_` type it finds: an unknown type; an unknown
//! argument or block at any depth; a missing required argument or block; an argument written
//! as a block or a block written as an argument; a block that may appear once written twice.
//! `dynamic` blocks are checked through their `content`. Each problem names its file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hcl_edit::Span;
use hcl_edit::structure::{Block, Body, Structure};

use crate::terraform::schema::{BlockSchema, Kind, Schema};

/// Meta-arguments Terraform itself takes on every resource and data source.
const META_ARGUMENTS: [&str; 4] = ["count", "for_each", "depends_on", "provider"];
/// Meta-blocks Terraform itself takes on a resource (their contents are Terraform's).
const META_BLOCKS: [&str; 3] = ["lifecycle", "provisioner", "connection"];

/// One thing wrong, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Checks every `.tf` file of the module in `dir`.
pub fn check_dir(schema: &Schema, dir: &Path) -> anyhow::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for file in super::tf_files(dir)? {
        let text = std::fs::read_to_string(&file)?;
        let name = file.display().to_string();
        problems.extend(check_source(schema, &name, &text));
    }
    Ok(problems)
}

/// Checks one file's text; `file` names it in the problems.
pub fn check_source(schema: &Schema, file: &str, text: &str) -> Vec<Problem> {
    let mut checker = Checker {
        schema,
        file,
        text,
        problems: Vec::new(),
    };
    match hcl_edit::parser::parse_body(text) {
        Ok(body) => checker.top_level(&body),
        Err(e) => checker.problems.push(Problem {
            file: file.to_string(),
            line: e.location().line(),
            message: format!("not HCL: {}", e.message()),
        }),
    }
    checker.problems
}

struct Checker<'a> {
    schema: &'a Schema,
    file: &'a str,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        let at = span.map_or(0, |s| s.start).min(self.text.len());
        self.text[..at].matches('\n').count() + 1
    }

    fn problem(&mut self, span: Option<std::ops::Range<usize>>, message: String) {
        let line = self.line(span);
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            message,
        });
    }

    fn top_level(&mut self, body: &Body) {
        for block in body.blocks() {
            let kind = block.ident.as_str();
            if kind != "resource" && kind != "data" {
                continue;
            }
            let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
            let [type_name, name] = labels[..] else {
                self.problem(
                    block.span(),
                    format!("a {kind} block needs a type and a name"),
                );
                continue;
            };
            if !type_name.starts_with("google_") {
                continue;
            }
            let types = if kind == "data" {
                &self.schema.data_sources
            } else {
                &self.schema.resources
            };
            let address = if kind == "data" {
                format!("data.{type_name}.{name}")
            } else {
                format!("{type_name}.{name}")
            };
            let Some(fqn) = types.get(type_name) else {
                let what = if kind == "data" {
                    "data source"
                } else {
                    "resource type"
                };
                self.problem(
                    block.span(),
                    format!("{address}: the google provider has no {what} `{type_name}`"),
                );
                continue;
            };
            match self.schema.block(fqn) {
                Ok(schema) => {
                    let schema = schema.clone();
                    self.body(&schema, &block.body, &address, kind == "resource", true);
                }
                Err(e) => self.problem(block.span(), format!("{address}: {e}")),
            }
        }
    }

    /// Checks `body` against `schema`; `at` is the path for messages, `top` whether it is a
    /// resource's or data source's own body (where meta-arguments are allowed).
    fn body(&mut self, schema: &BlockSchema, body: &Body, at: &str, resource: bool, top: bool) {
        let mut present: BTreeMap<String, usize> = BTreeMap::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attribute) => {
                    let key = attribute.key.as_str();
                    if top && META_ARGUMENTS.contains(&key) {
                        continue;
                    }
                    match schema.arguments.get(key).map(|a| &a.kind) {
                        None => self.problem(
                            attribute.span(),
                            format!("{at}: unknown argument `{key}`{}", suggestion(schema, key)),
                        ),
                        Some(Kind::Block { .. }) => self.problem(
                            attribute.span(),
                            format!(
                                "{at}: `{key}` is a block: write `{key} {{ … }}`, not `{key} = …`"
                            ),
                        ),
                        Some(Kind::Attribute) => {
                            *present.entry(key.to_string()).or_default() += 1;
                        }
                    }
                }
                Structure::Block(block) => {
                    let ident = block.ident.as_str();
                    // Terraform's own blocks; a data source takes only `lifecycle`.
                    if top && (ident == "lifecycle" || resource && META_BLOCKS.contains(&ident)) {
                        continue;
                    }
                    if ident == "dynamic" {
                        if let Some(name) = self.dynamic(schema, block, at) {
                            // A dynamic block stands for any number of blocks, so it makes a
                            // required block present, and never repeats a single one.
                            present.entry(name).or_default();
                        }
                        continue;
                    }
                    match schema.arguments.get(ident).map(|a| a.kind.clone()) {
                        None => self.problem(
                            block.span(),
                            format!("{at}: unknown block `{ident}`{}", suggestion(schema, ident)),
                        ),
                        Some(Kind::Attribute) => self.problem(
                            block.span(),
                            format!("{at}: `{ident}` is an argument: write `{ident} = …`, not `{ident} {{ … }}`"),
                        ),
                        Some(Kind::Block { fqn, repeated }) => {
                            let seen = present.entry(ident.to_string()).or_default();
                            *seen += 1;
                            if *seen == 2 && !repeated {
                                self.problem(
                                    block.span(),
                                    format!("{at}: `{ident}` may appear only once"),
                                );
                            }
                            self.nested(&fqn, &block.body, &format!("{at}: {ident}"), block);
                        }
                    }
                }
            }
        }
        for (name, argument) in &schema.arguments {
            if argument.required && !present.contains_key(name) {
                let what = match argument.kind {
                    Kind::Attribute => "argument",
                    Kind::Block { .. } => "block",
                };
                let line_of = body
                    .span()
                    .or_else(|| body.iter().next().and_then(|s| s.span()));
                self.problem(line_of, format!("{at}: missing required {what} `{name}`"));
            }
        }
    }

    fn nested(&mut self, fqn: &str, body: &Body, at: &str, block: &Block) {
        match self.schema.block(fqn) {
            Ok(schema) => {
                let schema = schema.clone();
                self.body(&schema, body, at, false, false);
            }
            Err(e) => self.problem(block.span(), format!("{at}: {e}")),
        }
    }

    /// `dynamic "name" { for_each = …  [iterator = …]  content { … } }`: `name` must be a
    /// block of `schema`, and `content` is checked as one. Returns `name` when it is.
    fn dynamic(&mut self, schema: &BlockSchema, block: &Block, at: &str) -> Option<String> {
        let Some(name) = block.labels.first().map(|l| l.as_str().to_string()) else {
            self.problem(
                block.span(),
                format!("{at}: a dynamic block needs the name of the block it makes"),
            );
            return None;
        };
        let fqn = match schema.arguments.get(&name).map(|a| &a.kind) {
            Some(Kind::Block { fqn, .. }) => fqn.clone(),
            Some(Kind::Attribute) => {
                self.problem(
                    block.span(),
                    format!("{at}: dynamic \"{name}\": `{name}` is an argument, not a block"),
                );
                return None;
            }
            None => {
                self.problem(
                    block.span(),
                    format!(
                        "{at}: dynamic \"{name}\": unknown block `{name}`{}",
                        suggestion(schema, &name)
                    ),
                );
                return None;
            }
        };
        if !block.body.has_attribute("for_each") {
            self.problem(
                block.span(),
                format!("{at}: dynamic \"{name}\": missing `for_each`"),
            );
        }
        for structure in block.body.iter() {
            match structure {
                Structure::Attribute(a)
                    if matches!(a.key.as_str(), "for_each" | "iterator" | "labels") => {}
                Structure::Block(content) if content.ident.as_str() == "content" => {}
                other => {
                    let what = match other {
                        Structure::Attribute(a) => a.key.as_str().to_string(),
                        Structure::Block(b) => b.ident.as_str().to_string(),
                    };
                    self.problem(
                        other.span(),
                        format!("{at}: dynamic \"{name}\": `{what}` belongs inside `content`"),
                    );
                }
            }
        }
        let contents: Vec<&Block> = block.body.get_blocks("content").collect();
        match contents[..] {
            [content] => self.nested(&fqn, &content.body, &format!("{at}: {name}"), content),
            _ => self.problem(
                block.span(),
                format!("{at}: dynamic \"{name}\": needs exactly one `content` block"),
            ),
        }
        Some(name)
    }
}

/// ` (did you mean `x`?)` for a name one or two edits from a known one.
fn suggestion(schema: &BlockSchema, name: &str) -> String {
    schema
        .arguments
        .keys()
        .map(|k| (edit_distance(k, name), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            previous = here;
        }
    }
    row[b.len()]
}
