//! JSON Schema → the OpenAPI 3.0 subset Gemini accepts in `parameters` and `responseSchema`.
//!
//! Gemini's `Schema` object knows `type`, `format`, `title`, `description`, `nullable`, `enum`,
//! `items`, `properties`, `required`, `anyOf`, `propertyOrdering`, `minItems`/`maxItems`,
//! `minLength`/`maxLength`, `minProperties`/`maxProperties`, `minimum`/`maximum` and `pattern`,
//! and answers 400 to anything else (`$schema`, `additionalProperties`, `$ref`, …). The cleaner
//! keeps that list and rewrites what has a Gemini equivalent:
//!
//! - local `$ref`s (`#`, `#/$defs/…`, `#/definitions/…`, any JSON pointer into the root) are
//!   inlined; a recursive reference becomes `{"type": "object"}` at the point it recurs;
//! - `allOf` is merged into its parent (properties and `required` unioned);
//! - `oneOf` becomes `anyOf`; a `{"type": "null"}` branch, a `"null"` in a `type` array or a
//!   `null` in an `enum` becomes `nullable: true`; an `anyOf` left with one branch is inlined,
//!   and a `type` array of several types becomes an `anyOf` of those types;
//! - a string `const` becomes a one-value `enum`; an `enum` with non-string values is dropped
//!   (Gemini only takes string enums);
//! - `format` is kept only where Gemini supports it (`enum`, `date-time` on strings; `int32`,
//!   `int64` on integers; `float`, `double` on numbers);
//! - `required` keeps only names that are properties; an empty `properties` is removed
//!   (Gemini rejects an empty `properties` map).
//!
//! Dropped without replacement: `$schema`, `$id`, `$defs`, `additionalProperties`, `default`,
//! `examples`, `example`, `strict`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`,
//! `uniqueItems`, `patternProperties`, `prefixItems`, `not`, `if`/`then`/`else` and any other
//! keyword.

use serde_json::{Map, Value};

/// Deeper schemas are cut off (replaced by an unconstrained schema) rather than recursed into.
const MAX_DEPTH: usize = 64;

/// The schema cleaned for Gemini (always an object).
pub(super) fn clean(schema: &Value) -> Value {
    let mut cleaner = Cleaner {
        root: schema,
        expanding: Vec::new(),
    };
    Value::Object(cleaner.node(schema, 0))
}

/// The `parameters` of a function declaration, or `None` for a function without parameters
/// (`null`, `{}`, or an object schema with no properties), which Gemini wants left out.
pub(super) fn parameters(schema: &Value) -> Option<Value> {
    if schema.is_null() {
        return None;
    }
    let mut cleaned = clean(schema);
    let map = cleaned.as_object_mut()?;
    let has_properties = map.contains_key("properties");
    let object_like = map
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(|t| t.eq_ignore_ascii_case("object"));
    if !has_properties && object_like && !map.contains_key("anyOf") {
        return None;
    }
    if has_properties && !map.contains_key("type") {
        map.insert("type".into(), Value::from("object"));
    }
    Some(cleaned)
}

struct Cleaner<'a> {
    root: &'a Value,
    /// The `$ref`s being inlined, outermost first, to cut recursion.
    expanding: Vec<&'a str>,
}

impl<'a> Cleaner<'a> {
    fn node(&mut self, schema: &'a Value, depth: usize) -> Map<String, Value> {
        let mut out = Map::new();
        // `true`, `{}` and anything that is not an object accept any value.
        let Value::Object(src) = schema else {
            return out;
        };
        if depth > MAX_DEPTH {
            return out;
        }
        // What the node pulls in comes first; its own keywords then override.
        if let Some(reference) = src.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) if !self.expanding.contains(&reference) => {
                    self.expanding.push(reference);
                    out = self.node(target, depth + 1);
                    self.expanding.pop();
                }
                _ => {
                    out.insert("type".into(), Value::from("object"));
                }
            }
        }
        if let Some(Value::Array(all)) = src.get("allOf") {
            for sub in all {
                let sub = self.node(sub, depth + 1);
                merge_into(&mut out, sub);
            }
        }

        let mut variants: Vec<Map<String, Value>> = Vec::new();
        let mut has_variants = false;
        for (key, value) in src {
            match key.as_str() {
                "type" => match value {
                    Value::String(t) if t == "null" => {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    Value::String(_) => {
                        out.insert("type".into(), value.clone());
                    }
                    Value::Array(types) => {
                        let mut named: Vec<&Value> = Vec::new();
                        for t in types {
                            match t.as_str() {
                                Some("null") => {
                                    out.insert("nullable".into(), Value::Bool(true));
                                }
                                Some(_) => named.push(t),
                                None => {}
                            }
                        }
                        match named.as_slice() {
                            [] => {}
                            [one] => {
                                out.insert("type".into(), (*one).clone());
                            }
                            several => {
                                has_variants = true;
                                for t in several {
                                    let mut branch = Map::new();
                                    branch.insert("type".into(), (*t).clone());
                                    variants.push(branch);
                                }
                            }
                        }
                    }
                    _ => {}
                },
                "description" | "title" | "pattern" if value.is_string() => {
                    out.insert(key.clone(), value.clone());
                }
                "nullable" if value.is_boolean() => {
                    out.insert(key.clone(), value.clone());
                }
                "minimum" | "maximum" if value.is_number() => {
                    out.insert(key.clone(), value.clone());
                }
                "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties"
                | "maxProperties"
                    if value.is_u64() =>
                {
                    out.insert(key.clone(), value.clone());
                }
                "format" if value.is_string() => {
                    out.insert(key.clone(), value.clone());
                }
                "propertyOrdering" => {
                    if let Value::Array(names) = value
                        && names.iter().all(Value::is_string)
                    {
                        out.insert(key.clone(), value.clone());
                    }
                }
                "enum" => {
                    if let Value::Array(values) = value {
                        self.enum_keyword(values, &mut out);
                    }
                }
                "const" => {
                    if value.is_string() {
                        out.insert("enum".into(), Value::Array(vec![value.clone()]));
                    } else if value.is_null() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                }
                "properties" => {
                    if let Value::Object(props) = value {
                        let mut cleaned = match out.remove("properties") {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        };
                        for (name, prop) in props {
                            cleaned.insert(name.clone(), Value::Object(self.node(prop, depth + 1)));
                        }
                        out.insert("properties".into(), Value::Object(cleaned));
                    }
                }
                "required" => {
                    if let Value::Array(names) = value {
                        let mut required = match out.remove("required") {
                            Some(Value::Array(r)) => r,
                            _ => Vec::new(),
                        };
                        for name in names.iter().filter(|n| n.is_string()) {
                            if !required.contains(name) {
                                required.push(name.clone());
                            }
                        }
                        out.insert("required".into(), Value::Array(required));
                    }
                }
                "items" => {
                    let items = match value {
                        Value::Array(tuple) => tuple.first(),
                        Value::Object(_) => Some(value),
                        _ => None,
                    };
                    if let Some(items) = items {
                        out.insert("items".into(), Value::Object(self.node(items, depth + 1)));
                    }
                }
                "anyOf" | "oneOf" => {
                    if let Value::Array(branches) = value {
                        has_variants = true;
                        for branch in branches {
                            if is_null_schema(branch) {
                                out.insert("nullable".into(), Value::Bool(true));
                            } else {
                                variants.push(self.node(branch, depth + 1));
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        if has_variants {
            match variants.len() {
                0 => {}
                1 => {
                    let only = variants.pop().expect("one variant");
                    merge_into(&mut out, only);
                }
                _ => {
                    out.insert(
                        "anyOf".into(),
                        Value::Array(variants.into_iter().map(Value::Object).collect()),
                    );
                }
            }
        }
        finish(&mut out);
        out
    }

    fn enum_keyword(&self, values: &[Value], out: &mut Map<String, Value>) {
        let mut strings = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::String(_) => strings.push(v.clone()),
                Value::Null => {
                    out.insert("nullable".into(), Value::Bool(true));
                }
                // Gemini takes string enums only; a number or boolean enum is left unconstrained.
                _ => return,
            }
        }
        if !strings.is_empty() {
            out.insert("enum".into(), Value::Array(strings));
        }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// Merges `from` into `into`: properties and `required` are unioned, other keywords are taken
/// only where `into` has none.
fn merge_into(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (key.as_str(), into.get_mut(&key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, prop) in theirs {
                    mine.entry(name).or_insert(prop);
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// The checks that need the whole node: formats against the type, `required` against the
/// properties, a string type for string enums, no empty maps or lists.
fn finish(out: &mut Map<String, Value>) {
    if out.contains_key("enum") && !out.contains_key("type") {
        out.insert("type".into(), Value::from("string"));
    }
    if let Some(format) = out.get("format").and_then(Value::as_str) {
        let ty = out
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let supported = match ty.as_deref() {
            Some("string") => matches!(format, "enum" | "date-time"),
            Some("integer") => matches!(format, "int32" | "int64"),
            Some("number") => matches!(format, "float" | "double"),
            _ => false,
        };
        if !supported {
            out.remove("format");
        }
    }
    let names: Vec<String> = match out.get("properties") {
        Some(Value::Object(props)) if props.is_empty() => {
            out.remove("properties");
            Vec::new()
        }
        Some(Value::Object(props)) => props.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Array(required)) = out.get_mut("required") {
        required.retain(|n| n.as_str().is_some_and(|n| names.iter().any(|p| p == n)));
        if required.is_empty() {
            out.remove("required");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_what_gemini_rejects() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "urn:weather",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "city": {"type": "string", "description": "City name", "default": "Paris",
                         "examples": ["Lyon"], "minLength": 1},
                "days": {"type": "integer", "minimum": 1, "maximum": 7, "exclusiveMaximum": 8,
                         "format": "int32"},
                "email": {"type": "string", "format": "email"}
            },
            "required": ["city", "missing"]
        });
        assert_eq!(
            clean(&schema),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name", "minLength": 1},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7, "format": "int32"},
                    "email": {"type": "string"}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn inlines_refs_and_cuts_recursion() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Unit": {"type": "string", "enum": ["c", "f"]},
                "Node": {"type": "object", "properties": {
                    "child": {"$ref": "#/$defs/Node"}, "name": {"type": "string"}}}
            },
            "properties": {
                "unit": {"$ref": "#/$defs/Unit", "description": "Temperature unit"},
                "tree": {"$ref": "#/$defs/Node"},
                "old": {"$ref": "#/definitions/Missing"}
            }
        });
        assert_eq!(
            clean(&schema),
            json!({
                "type": "object",
                "properties": {
                    "unit": {"type": "string", "enum": ["c", "f"], "description": "Temperature unit"},
                    "tree": {"type": "object", "properties": {
                        "child": {"type": "object"}, "name": {"type": "string"}}},
                    "old": {"type": "object"}
                }
            })
        );
    }

    #[test]
    fn nullables_unions_and_consts() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "B"},
                "c": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "d": {"const": "fixed"},
                "e": {"enum": [1, 2, 3], "type": "integer"},
                "f": {"enum": ["x", null]},
                "g": {"type": ["string", "integer"]},
                "h": {"allOf": [
                    {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
                    {"properties": {"y": {"type": "number"}}, "required": ["y"]}
                ]},
                "i": {"type": "array", "items": [{"type": "string"}], "uniqueItems": true},
                "j": true
            }
        });
        assert_eq!(
            clean(&schema)["properties"],
            json!({
                "a": {"type": "string", "nullable": true},
                "b": {"type": "integer", "nullable": true, "description": "B"},
                "c": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "d": {"type": "string", "enum": ["fixed"]},
                "e": {"type": "integer"},
                "f": {"type": "string", "enum": ["x"], "nullable": true},
                "g": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "h": {"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "number"}},
                      "required": ["x", "y"]},
                "i": {"type": "array", "items": {"type": "string"}},
                "j": {}
            })
        );
    }

    #[test]
    fn parameters_are_left_out_when_there_are_none() {
        assert_eq!(parameters(&Value::Null), None);
        assert_eq!(parameters(&json!({})), None);
        assert_eq!(
            parameters(&json!({"type": "object", "properties": {}})),
            None
        );
        assert_eq!(
            parameters(&json!({"type": "object", "additionalProperties": false})),
            None
        );
        assert_eq!(
            parameters(&json!({"properties": {"q": {"type": "string"}}})),
            Some(json!({"type": "object", "properties": {"q": {"type": "string"}}}))
        );
        // Nested empty objects lose their empty `properties`.
        assert_eq!(
            parameters(&json!({"type": "object", "properties": {
                "opts": {"type": "object", "properties": {}, "additionalProperties": true}}})),
            Some(json!({"type": "object", "properties": {"opts": {"type": "object"}}}))
        );
    }

    #[test]
    fn deep_schemas_do_not_overflow() {
        let mut schema = json!({"type": "string"});
        for _ in 0..500 {
            schema = json!({"type": "array", "items": schema});
        }
        let cleaned = clean(&schema);
        assert_eq!(cleaned["type"], "array");
    }
}
