//! The API described as an OpenAPI 3.1 document, generated from the same route table the
//! router is built from: each route's method, path, the access it asks, what it does, and the
//! JSON Schemas (2020-12, OpenAPI 3.1's dialect) of its body, query and answer, derived from the
//! Rust types that serde reads and writes.

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use baton_core::access::Access;

/// A type's schema, by reference where it is named.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, for a route's table entry.
pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The inline schema of `T` (a query's fields become parameters).
pub fn inline<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// One route, as the API's table lists it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// The JSON body it reads.
    pub body: Option<SchemaFn>,
    /// The query parameters it reads (an object's properties).
    pub query: Option<SchemaFn>,
    /// What it answers on success, and with which status; none: 204 without a body (or 200
    /// with plain text when `text`).
    pub answer: Option<(&'static [u16], SchemaFn)>,
    pub text: bool,
    /// Answers HTML for a person, its errors too (the operator's page).
    pub html: bool,
    /// Answers 303, sending the browser on (with `html`).
    pub redirect: bool,
}

impl Route {
    pub fn new(
        method: &'static str,
        path: &'static str,
        access: Access,
        summary: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            access,
            summary,
            body: None,
            query: None,
            answer: None,
            text: false,
            html: false,
            redirect: false,
        }
    }

    /// Answers 200 with plain text.
    pub fn answers_text(mut self) -> Self {
        self.text = true;
        self
    }

    /// Answers 200 with an HTML page, and its errors as pages too.
    pub fn answers_html(mut self) -> Self {
        self.html = true;
        self
    }

    /// Answers 303, sending a browser on to a page; its errors are pages.
    pub fn redirects(mut self) -> Self {
        self.html = true;
        self.redirect = true;
        self
    }

    /// Reads a `T` body.
    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(schema::<T>);
        self
    }

    /// Reads `T`'s fields from the query string.
    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(inline::<T>);
        self
    }

    /// Answers 200 with a `T`.
    pub fn answers<T: JsonSchema>(self) -> Self {
        self.answers_with::<T>(&[200])
    }

    /// Answers one of `statuses` with a `T` (201 when it made something, 200 when it was made
    /// before).
    pub fn answers_with<T: JsonSchema>(mut self, statuses: &'static [u16]) -> Self {
        self.answer = Some((statuses, schema::<T>));
        self
    }

    /// The `{name}`s of its path.
    pub fn path_parameters(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// The OpenAPI 3.1 document of `routes`.
pub fn document(routes: &[Route], title: &str, version: &str) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = schema::<crate::api::ErrorResponse>(&mut generator);
    let mut paths = Map::new();
    for route in routes {
        let mut operation = Map::new();
        operation.insert("summary".into(), json!(route.summary));
        operation.insert(
            "operationId".into(),
            json!(operation_id(route.method, route.path)),
        );
        operation.insert("x-baton-access".into(), json!(route.access));
        let mut parameters: Vec<Value> = route
            .path_parameters()
            .into_iter()
            .map(|name| {
                json!({
                    "name": name, "in": "path", "required": true,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:@+-]{1,256}$"}
                })
            })
            .collect();
        if let Some(query) = route.query {
            let schema = query(&mut generator);
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    parameters.push(json!({
                        "name": name, "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": property,
                    }));
                }
            }
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = route.body {
            operation.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": body(&mut generator)}}}),
            );
        }
        let mut responses = Map::new();
        match route.answer {
            Some((statuses, answer)) => {
                let schema = answer(&mut generator);
                for status in statuses {
                    responses.insert(
                        status.to_string(),
                        json!({"description": "done", "content": {"application/json": {"schema": schema}}}),
                    );
                }
            }
            None if route.redirect => {
                responses.insert("303".into(), json!({"description": "on to the page"}));
            }
            None if route.html => {
                responses.insert(
                    "200".into(),
                    json!({"description": "done", "content": {"text/html": {"schema": {"type": "string"}}}}),
                );
            }
            None if route.text => {
                responses.insert(
                    "200".into(),
                    json!({"description": "done", "content": {"text/plain": {"schema": {"type": "string"}}}}),
                );
            }
            None => {
                responses.insert("204".into(), json!({"description": "done"}));
            }
        }
        let described = |what: &str| {
            if route.html {
                json!({"description": what, "content": {"text/html": {"schema": {"type": "string"}}}})
            } else {
                json!({"description": what, "content": {"application/json": {"schema": error}}})
            }
        };
        if route.access != Access::Open {
            responses.insert(
                "401".into(),
                described("no credential, or one that proves nothing"),
            );
            responses.insert(
                "403".into(),
                described("the caller's role or groups do not allow it"),
            );
            operation.insert("security".into(), json!([{"bearer": []}]));
        }
        responses.insert("default".into(), described("what went wrong"));
        operation.insert("responses".into(), Value::Object(responses));
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        item[route.method.to_ascii_lowercase()] = Value::Object(operation);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Google ID token issued for one of the deployment's OAuth client ids, or an API token (`baton_…`)"
                }
            }
        }
    })
}

/// `get_v1_runs_run_id`.
fn operation_id(method: &str, path: &str) -> String {
    let words: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let words: Vec<&str> = words.split('_').filter(|w| !w.is_empty()).collect();
    format!("{}_{}", method.to_ascii_lowercase(), words.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_becomes_an_operation_with_its_parameters_body_and_answers() {
        let routes = [
            Route::new("GET", "/v1/runs/{run_id}", Access::Read, "A run")
                .answers::<crate::api::RunResponse>(),
            Route::new(
                "DELETE",
                "/v1/groups/{name}",
                Access::Admin,
                "Delete a group",
            ),
            Route::new("POST", "/v1/runs", Access::Change, "Start a run")
                .body::<crate::api::StartRunRequest>()
                .answers_with::<crate::api::RunChange>(&[201, 200]),
        ];
        let doc = document(&routes, "Baton", "0.1.0");
        assert_eq!(doc["openapi"], "3.1.0");
        let get = &doc["paths"]["/v1/runs/{run_id}"]["get"];
        assert_eq!(get["operationId"], "get_v1_runs_run_id");
        assert_eq!(get["parameters"][0]["name"], "run_id");
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/RunResponse"
        );
        assert!(doc["components"]["schemas"]["Run"].is_object());
        assert!(doc["paths"]["/v1/groups/{name}"]["delete"]["responses"]["204"].is_object());
        let post = &doc["paths"]["/v1/runs"]["post"];
        assert!(post["responses"]["201"].is_object() && post["responses"]["200"].is_object());
        assert_eq!(post["security"][0]["bearer"], json!([]));
        let start = &doc["components"]["schemas"]["StartRunRequest"];
        assert!(
            start["properties"]["idempotency_key"].is_object(),
            "{start}"
        );
    }
}
