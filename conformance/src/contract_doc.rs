//! A node's answers against the simulator's OpenAPI document (`mlnode_sim::openapi`),
//! field by field: the same document Schemathesis checks the simulator against, so a real
//! node that drifts from the emulated contract is named at the field that drifted.
//!
//! A small validator for the JSON Schema subset utoipa writes: `$ref` into
//! `components/schemas`, `type` (one or a list, `null` included), `enum`, `properties` /
//! `required`, `items`, `minimum`, `oneOf` / `anyOf` / `allOf`. Fields the document does
//! not know are reported separately: the Go client tolerates them, so they are notes,
//! not failures.

use serde_json::Value;

/// What a body does against a schema.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Drift {
    /// Contract violations: `path: what` (missing required field, wrong type, not in enum).
    pub errors: Vec<String>,
    /// Fields present in the body and absent from the document.
    pub unknown: Vec<String>,
}

/// The document as JSON (generated once per run).
pub fn document() -> Value {
    serde_json::to_value(mlnode_sim::openapi::poc_port()).unwrap_or(Value::Null)
}

/// The response schema of `method path` for `status` (JSON bodies), if documented.
pub fn response_schema<'a>(
    doc: &'a Value,
    method: &str,
    path: &str,
    status: u16,
) -> Option<&'a Value> {
    doc.get("paths")?
        .get(path)?
        .get(method.to_ascii_lowercase())?
        .get("responses")?
        .get(status.to_string())?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

/// Check `body` against `schema` (resolving `$ref`s in `doc`).
pub fn check(doc: &Value, schema: &Value, body: &Value) -> Drift {
    let mut d = Drift::default();
    walk(doc, schema, body, "$", &mut d, 0);
    d
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or("");
                match doc
                    .get("components")
                    .and_then(|c| c.get("schemas"))
                    .and_then(|c| c.get(name))
                {
                    Some(next) => s = next,
                    None => return s,
                }
            }
            None => return s,
        }
    }
    s
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, got: &str) -> bool {
    want == got || (want == "number" && got == "integer")
}

fn walk(doc: &Value, schema: &Value, v: &Value, at: &str, d: &mut Drift, depth: usize) {
    if depth > 32 {
        return;
    }
    let s = resolve(doc, schema);
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            walk(doc, sub, v, at, d, depth + 1);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let tries: Vec<Drift> = alts
                .iter()
                .map(|alt| {
                    let mut t = Drift::default();
                    walk(doc, alt, v, at, &mut t, depth + 1);
                    t
                })
                .collect();
            match tries.iter().find(|t| t.errors.is_empty()) {
                Some(ok) => d.unknown.extend(ok.unknown.iter().cloned()),
                None => {
                    let best = tries.iter().min_by_key(|t| t.errors.len());
                    d.errors.push(format!(
                        "{at}: matches none of the {} documented shapes (closest: {})",
                        alts.len(),
                        best.and_then(|b| b.errors.first())
                            .map_or("-", String::as_str)
                    ));
                }
            }
        }
    }
    let got = type_of(v);
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, got)) {
        d.errors
            .push(format!("{at}: expected {}, got {got}", types.join(" or ")));
        return;
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            d.errors.push(format!(
                "{at}: {v} is not one of {}",
                Value::Array(e.clone())
            ));
        }
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < min {
            d.errors
                .push(format!("{at}: {x} is below the minimum {min}"));
        }
    }
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for k in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(k) {
                        d.errors.push(format!("{at}.{k}: missing required field"));
                    }
                }
            }
            if let Some(props) = props {
                for (k, val) in m {
                    match props.get(k) {
                        Some(ps) => walk(doc, ps, val, &format!("{at}.{k}"), d, depth + 1),
                        None => d.unknown.push(format!("{at}.{k}")),
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter().take(64).enumerate() {
                    walk(doc, is, item, &format!("{at}[{i}]"), d, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_field_that_drifted() {
        let doc = document();
        let s = response_schema(&doc, "GET", "/api/v1/state", 200).expect("documented");
        let good = json!({"state": "INFERENCE", "version": "1", "poc_status": "IDLE",
            "inference_healthy": true, "loaded_model": "m", "poc_validation_inference": false});
        assert_eq!(check(&doc, s, &good), Drift::default());
        let bad = json!({"state": "RUNNING", "version": 3, "extra": 1});
        let d = check(&doc, s, &bad);
        assert!(
            d.errors
                .iter()
                .any(|e| e.starts_with("$.version: expected string")),
            "{d:?}"
        );
        assert!(
            d.errors
                .iter()
                .any(|e| e.contains("$.state") && e.contains("not one of")),
            "{d:?}"
        );
        assert!(
            d.errors
                .iter()
                .any(|e| e == "$.poc_validation_inference: missing required field"),
            "{d:?}"
        );
        assert_eq!(d.unknown, ["$.extra"]);
    }

    #[test]
    fn arrays_and_alternatives() {
        let doc = document();
        let s = response_schema(&doc, "GET", "/api/v1/inference/pow/status", 200).unwrap();
        let ok = json!({"status": "GENERATING", "backends": [{"port": 5001, "status": "GENERATING",
            "config": null, "stats": {"total_processed": 32, "nonces_per_second": 1.5}}]});
        assert!(
            check(&doc, s, &ok).errors.is_empty(),
            "{:?}",
            check(&doc, s, &ok)
        );
        let bad =
            json!({"status": "GENERATING", "backends": [{"port": "5001", "status": "GENERATING"}]});
        let d = check(&doc, s, &bad);
        assert!(
            d.errors
                .iter()
                .any(|e| e.starts_with("$.backends[0].port: expected integer")),
            "{d:?}"
        );
    }
}
