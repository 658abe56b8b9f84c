//! The event catalogue: every event type the product writes, its owner, version, fields and
//! meaning, taken from the code (the payload types' JSON schemas, their doc comments) so that
//! `docs/event-catalogue.md` cannot drift from what is stored. Each service crate lists its
//! events (`event_catalogue()`); the gateway renders them all ([`render`]) and a test checks
//! the committed file against it, like `schema.graphql`.

use schemars::{JsonSchema, Schema};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One event type.
#[derive(Clone, Debug)]
pub struct EventDoc {
    /// The versioned type, e.g. `OrderPlaced.v1`.
    pub event_type: &'static str,
    /// Who writes it: a service (only it appends to its streams), or what else does.
    pub owner: &'static str,
    /// The streams it is written to, e.g. `order-<orderId>`.
    pub stream: &'static str,
    /// The payload's JSON schema (its description is the payload type's doc comment).
    pub schema: Schema,
}

impl EventDoc {
    /// The document of an event whose payload is `T`.
    pub fn of<T: JsonSchema>(
        event_type: &'static str,
        owner: &'static str,
        stream: &'static str,
    ) -> Self {
        EventDoc {
            event_type,
            owner,
            stream,
            schema: schemars::schema_for!(T),
        }
    }
}

/// The documents of an aggregate's events (its events enum's `catalogue()`), all written by
/// `owner` to streams named `stream`.
pub fn of_stream(
    owner: &'static str,
    stream: &'static str,
    events: Vec<(&'static str, Schema)>,
) -> Vec<EventDoc> {
    events
        .into_iter()
        .map(|(event_type, schema)| EventDoc {
            event_type,
            owner,
            stream,
            schema,
        })
        .collect()
}

/// The catalogue as Markdown: the events by owner, each with its fields, then every shape the
/// fields use.
pub fn render(events: &[EventDoc]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Event catalogue\n\n\
         Generated from the code (`make schema`; a test fails while it is stale): every event \
         type Ichigen writes, the service that owns it (the only one that appends to its \
         streams), its version and its payload. Payloads are camelCase JSON; money is \
         `{{\"amount\": \"<decimal string>\", \"currency\": \"JPY\"}}`; times are RFC 3339 \
         (UTC). A type never changes shape: a new shape is a new version, and old versions stay \
         readable. Fields marked *optional* may be absent (older events, or nothing to say). \
         How to follow the feed, and which events make which customer message, is in \
         [events.md](events.md).\n"
    );
    let mut owners: BTreeMap<&str, Vec<&EventDoc>> = BTreeMap::new();
    for e in events {
        owners.entry(e.owner).or_default().push(e);
    }
    let mut shapes: BTreeMap<String, Value> = BTreeMap::new();
    let _ = writeln!(out, "## Contents\n");
    for (owner, docs) in &owners {
        let names: Vec<String> = docs
            .iter()
            .map(|d| format!("[`{}`](#{})", d.event_type, anchor(d.event_type)))
            .collect();
        let _ = writeln!(out, "- **{owner}**: {}", names.join(", "));
    }
    for (owner, docs) in &owners {
        let _ = writeln!(out, "\n## {owner}\n");
        for d in docs {
            let root = d.schema.as_value();
            if let Some(defs) = root.get("$defs").and_then(Value::as_object) {
                for (name, def) in defs {
                    shapes.insert(name.clone(), def.clone());
                }
            }
            let (name, version) = d
                .event_type
                .rsplit_once(".v")
                .unwrap_or((d.event_type, "1"));
            let _ = writeln!(out, "### {}\n", d.event_type);
            let _ = writeln!(
                out,
                "**{name}**, version {version} · owner: {owner} · stream `{}`\n",
                d.stream
            );
            if let Some(text) = root.get("description").and_then(Value::as_str) {
                let _ = writeln!(out, "{}\n", one_paragraph(text));
            }
            fields(&mut out, root);
        }
    }
    if !shapes.is_empty() {
        let _ = writeln!(out, "\n## Shapes\n\nThe types the payloads above use.\n");
        for (name, def) in &shapes {
            let _ = writeln!(out, "### {name}\n");
            if let Some(text) = def.get("description").and_then(Value::as_str) {
                let _ = writeln!(out, "{}\n", one_paragraph(text));
            }
            shape(&mut out, def);
        }
    }
    out
}

/// A shape's body: its fields, or its alternatives.
fn shape(out: &mut String, def: &Value) {
    if def.get("properties").is_some() {
        fields(out, def);
        return;
    }
    let alternatives = def
        .get("oneOf")
        .or_else(|| def.get("anyOf"))
        .and_then(Value::as_array);
    if let Some(alternatives) = alternatives {
        let _ = writeln!(out, "One of:\n");
        for a in alternatives {
            let text = a
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!(" — {}", one_paragraph(d)))
                .unwrap_or_default();
            let _ = writeln!(out, "- {}{text}", type_of(a));
        }
        let _ = writeln!(out);
        return;
    }
    let _ = writeln!(out, "{}\n", type_of(def));
}

/// The field table of an object schema.
fn fields(out: &mut String, object: &Value) {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        let _ = writeln!(out, "Payload: {}\n", type_of(object));
        return;
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(out, "| field | type | meaning |\n|---|---|---|");
    for (name, field) in properties {
        let optional = if required.contains(&name.as_str()) {
            ""
        } else {
            ", *optional*"
        };
        let meaning = field
            .get("description")
            .and_then(Value::as_str)
            .map(one_paragraph)
            .unwrap_or_default()
            .replace('|', "\\|");
        let _ = writeln!(
            out,
            "| `{name}` | {}{optional} | {meaning} |",
            type_of(field)
        );
    }
    let _ = writeln!(out);
}

/// A schema's type in words: `string`, `integer`, `[LineQty]`, a link to a shape, …
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#{})", anchor(name));
    }
    if let Some(c) = schema.get("const") {
        return format!("`{c}`");
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return values.join(" \\| ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let names: Vec<String> = alternatives.iter().map(type_of).collect();
            return names.join(" or ");
        }
    }
    if schema.get("properties").is_some() {
        let names: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
            .unwrap_or_default();
        return format!("object ({})", names.join(", "));
    }
    let format = schema
        .get("format")
        .and_then(Value::as_str)
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let item = schema.get("items").map(type_of).unwrap_or_default();
            format!("[{item}]")
        }
        Some(Value::String(t)) if t == "object" => match schema.get("additionalProperties") {
            Some(v) if v.is_object() => format!("map of string → {}", type_of(v)),
            _ => "object".to_owned(),
        },
        Some(Value::String(t)) => format!("{t}{format}"),
        Some(Value::Array(types)) => {
            let mut names: Vec<String> = Vec::new();
            for t in types.iter().filter_map(Value::as_str) {
                if t == "null" {
                    continue;
                }
                let mut single = schema.clone();
                single["type"] = Value::String(t.to_owned());
                names.push(type_of(&single));
            }
            let nullable = types.iter().any(|t| t == "null");
            format!(
                "{}{}",
                names.join(" or "),
                if nullable { " or null" } else { "" }
            )
        }
        _ => "any".to_owned(),
    }
}

/// A doc comment as one Markdown paragraph.
fn one_paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// GitHub's heading anchor of `text`.
fn anchor(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Said for the test.
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Tried {
        /// How many.
        qty_left: i64,
        note: Option<String>,
        lines: Vec<Line>,
    }

    /// A line.
    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Line {
        id: String,
    }

    #[test]
    fn an_event_is_rendered_with_its_fields_and_shapes() {
        let text = render(&[EventDoc::of::<Tried>("Tried.v2", "test", "test-<id>")]);
        assert!(text.contains("### Tried.v2"), "{text}");
        assert!(
            text.contains("**Tried**, version 2 · owner: test · stream `test-<id>`"),
            "{text}"
        );
        assert!(text.contains("Said for the test."));
        assert!(
            text.contains("| `qtyLeft` | integer (int64) | How many. |"),
            "{text}"
        );
        assert!(
            text.contains("| `note` | string or null, *optional* |"),
            "{text}"
        );
        assert!(text.contains("| `lines` | [[Line](#line)] |"), "{text}");
        assert!(text.contains("### Line\n\nA line."), "{text}");
    }
}
