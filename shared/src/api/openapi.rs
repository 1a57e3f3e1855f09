//! `GET /openapi.json`: the HTTP API as OpenAPI 3.1.
//!
//! Written beside the code it describes and built from the same constants
//! (limits, defaults, facet names), so a limit changed in `params.rs`
//! changes here too; [`ROUTES`] is the list of routes, which tests hold
//! against template.yaml's HttpApi events (`local/tests/fixtures.rs`) and
//! against what the router answers (`local/tests/http.rs`).

use serde_json::{Value, json};

use super::params::{
    DEFAULT_FACET_LIMIT, DEFAULT_FILTER_LIMIT, DEFAULT_PAGE_SIZE, MAX_FACET_LIMIT,
    MAX_FILTER_LIMIT, MAX_PAGE_SIZE, MAX_SEARCH_CHARS,
};
use crate::search::{ONE_EDIT_CHARS, TWO_EDITS_CHARS};

/// Every route of the HTTP API: (method, path as API Gateway writes it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/web/{file}"),
    ("GET", "/openapi.json"),
    ("GET", "/people"),
    ("GET", "/people/{id}"),
    ("PUT", "/people/{id}"),
    ("DELETE", "/people/{id}"),
    ("GET", "/filters"),
    ("POST", "/requests"),
    ("GET", "/requests/{id}"),
];

fn list_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "query", "required": false, "description": description,
        "style": "form", "explode": true,
        "schema": {"type": "array", "items": {"type": "string"}}
    })
}

fn error_responses(codes: &[u16]) -> serde_json::Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            (
                c.to_string(),
                json!({"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            )
        })
        .collect()
}

fn with_errors(ok: Value, codes: &[u16]) -> Value {
    let mut responses = error_responses(codes);
    if let Value::Object(ok) = ok {
        responses.extend(ok);
    }
    Value::Object(responses)
}

fn json_body(schema: &str) -> Value {
    json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

pub fn document() -> Value {
    let id_param =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let typos = format!(
        "1: a query word of {ONE_EDIT_CHARS} or more characters also matches a name word's prefix within one edit (insert, delete, substitute, transpose adjacent), of {TWO_EDITS_CHARS} or more within two; the response lists the words matched approximately. Default 0 (exact)."
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "People directory",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Search people by name prefixes, nationality and hobbies with exact totals; submit reports, imports and deletes as jobs. The WebSocket protocol is described in docs/websocket.md."
        },
        "paths": {
            "/": {"get": {
                "summary": "The web page", "operationId": "page",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}, "304": {"description": "not modified (If-None-Match)"}}
            }},
            "/web/{file}": {"get": {
                "summary": "A file of the web page (app.js, style.css)", "operationId": "pageAsset",
                "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with_errors(json!({"200": {"description": "the file"}, "304": {"description": "not modified (If-None-Match)"}}), &[404])
            }},
            "/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }},
            "/people": {"get": {
                "summary": "Search people", "operationId": "searchPeople",
                "parameters": [
                    {"name": "search", "in": "query", "required": false, "description": "Words typed; each must be a prefix of a name word (case and accents ignored).", "schema": {"type": "string", "maxLength": MAX_SEARCH_CHARS}},
                    list_param("nationality", "One or more (repeat or comma-separate): a person matches if theirs is any of them."),
                    list_param("hobbies", "One or more (repeat or comma-separate), combined by hobbies_match."),
                    {"name": "hobbies_match", "in": "query", "required": false, "schema": {"type": "string", "enum": ["any", "all"], "default": "any"}},
                    {"name": "page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "default": 1}},
                    {"name": "page_size", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}},
                    {"name": "cursor", "in": "query", "required": false, "description": "next_cursor of the previous page (not with page).", "schema": {"type": "string"}},
                    {"name": "facets", "in": "query", "required": false, "description": "Facets to count within the filter, each with every filter but its own.", "style": "form", "explode": false, "schema": {"type": "array", "items": {"type": "string", "enum": ["nationality", "hobbies"]}}},
                    {"name": "facet_limit", "in": "query", "required": false, "description": "Top values per facet (selected values are listed besides).", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_FACET_LIMIT, "default": DEFAULT_FACET_LIMIT}},
                    {"name": "typos", "in": "query", "required": false, "description": typos, "schema": {"type": "string", "enum": ["0", "1", "false", "true"], "default": "0"}},
                    {"name": "highlight", "in": "query", "required": false, "description": "1: each item carries the ranges of its names that the query words matched.", "schema": {"type": "string", "enum": ["0", "1", "false", "true"], "default": "0"}}
                ],
                "responses": with_errors(json!({"200": {"description": "one page of matches", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PeoplePage"}}}}}), &[400, 403])
            }},
            "/people/{id}": {
                "get": {"summary": "One person", "operationId": "getPerson", "parameters": [id_param.clone()],
                    "responses": with_errors(json!({"200": {"description": "the person", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Person"}}}}}), &[403, 404])},
                "put": {"summary": "Write one person (needs people:write)", "operationId": "putPerson", "parameters": [id_param.clone()],
                    "requestBody": json_body("PersonInput"),
                    "responses": with_errors(json!({"200": {"description": "replaced", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Person"}}}}, "201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Person"}}}}}), &[400, 403, 415])},
                "delete": {"summary": "Delete one person (needs people:write)", "operationId": "deletePerson", "parameters": [id_param.clone()],
                    "responses": with_errors(json!({"204": {"description": "deleted"}}), &[403, 404])}
            },
            "/filters": {"get": {
                "summary": "Top nationalities and hobbies", "operationId": "filters",
                "parameters": [{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_FILTER_LIMIT, "default": DEFAULT_FILTER_LIMIT}}],
                "responses": with_errors(json!({"200": {"description": "options", "content": {"application/json": {"schema": {"type": "object", "required": ["nationalities", "hobbies"], "properties": {
                    "nationalities": {"type": "array", "items": {"$ref": "#/components/schemas/ValueCount"}},
                    "hobbies": {"type": "array", "items": {"$ref": "#/components/schemas/ValueCount"}}}}}}}}), &[400, 403])
            }},
            "/requests": {"post": {
                "summary": "Submit a job (report, import, delete)", "operationId": "submit",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 128}}],
                "requestBody": json_body("Submit"),
                "responses": with_errors(json!({"202": {"description": "queued", "content": {"application/json": {"schema": {"type": "object", "required": ["id", "status", "created_at"], "properties": {
                    "id": {"type": "string", "format": "uuid"}, "status": {"const": "queued"}, "created_at": {"type": "string", "format": "date-time"}}}}}}}), &[400, 403, 413, 415, 422, 503])
            }},
            "/requests/{id}": {"get": {
                "summary": "A job's status and result", "operationId": "getRequest", "parameters": [id_param],
                "responses": with_errors(json!({"200": {"description": "the request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Request"}}}}}), &[404, 503])
            }}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "parameter": {"type": "string"}}}}},
            "Person": {"type": "object", "required": ["id", "first_name", "last_name", "nationality", "hobbies"], "properties": {
                "id": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
                "nationality": {"type": "string"}, "hobbies": {"type": "array", "items": {"type": "string"}}}},
            "PersonInput": {"type": "object", "required": ["first_name", "last_name", "nationality"], "properties": {
                "id": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
                "nationality": {"type": "string"}, "hobbies": {"type": "array", "items": {"type": "string"}}}},
            "ValueCount": {"type": "object", "required": ["value", "count"], "properties": {"value": {"type": "string"}, "count": {"type": "integer", "minimum": 0}}},
            "Range": {"type": "array", "description": "[start, end) in UTF-16 code units of the original string", "prefixItems": [{"type": "integer"}, {"type": "integer"}], "minItems": 2, "maxItems": 2},
            "Item": {"allOf": [{"$ref": "#/components/schemas/Person"}, {"type": "object", "properties": {"highlight": {"type": "object", "required": ["first_name", "last_name"], "properties": {
                "first_name": {"type": "array", "items": {"$ref": "#/components/schemas/Range"}},
                "last_name": {"type": "array", "items": {"$ref": "#/components/schemas/Range"}}}}}}]},
            "PeoplePage": {"type": "object", "required": ["items", "total", "page", "page_size", "next_cursor"], "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                "total": {"type": "integer", "minimum": 0},
                "page": {"type": ["integer", "null"]},
                "page_size": {"type": "integer"},
                "next_cursor": {"type": ["string", "null"]},
                "facets": {"type": "object", "properties": {
                    "nationality": {"type": "array", "items": {"$ref": "#/components/schemas/ValueCount"}},
                    "hobbies": {"type": "array", "items": {"$ref": "#/components/schemas/ValueCount"}}}},
                "approximate": {"type": "array", "items": {"type": "object", "required": ["word", "matched"], "properties": {
                    "word": {"type": "string"}, "matched": {"type": "array", "items": {"type": "string"}}}}}}},
            "Filter": {"type": "object", "additionalProperties": false, "properties": {
                "search": {"type": "string"},
                "nationality": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "hobbies": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "hobbies_match": {"type": "string", "enum": ["any", "all"]},
                "typos": {"type": "boolean"}}},
            "Submit": {"oneOf": [
                {"type": "object", "required": ["kind", "filter"], "properties": {"kind": {"const": "report"}, "filter": {"$ref": "#/components/schemas/Filter"}}},
                {"type": "object", "required": ["kind", "people"], "properties": {"kind": {"const": "import"}, "people": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/PersonInput"}}}},
                {"type": "object", "required": ["kind", "ids"], "properties": {"kind": {"const": "delete"}, "ids": {"type": "array", "maxItems": 1000, "items": {"type": "string"}}}}
            ]},
            "Request": {"type": "object", "required": ["id", "kind", "status", "created_at", "updated_at"], "properties": {
                "id": {"type": "string"}, "kind": {"type": "string", "enum": ["report", "import", "delete"]},
                "status": {"type": "string", "enum": ["queued", "processing", "completed", "failed"]},
                "created_at": {"type": "string"}, "updated_at": {"type": "string"},
                "result": {"type": ["object", "null"]}, "error": {"type": ["object", "null"]}, "attempts": {"type": "integer"}}}
        }}
    })
}
