//! Response fields in the order the query asked for them.
//!
//! The GraphQL spec serialises an object's fields in the order of CollectFields, i.e. of the
//! query's selections (fragments spread where they stand). async-graphql 7 resolves an
//! object's fields concurrently and inserts each as it *completes* (`FuturesUnordered` in
//! `resolver_utils::container`), so a field that waits — `order(id:)` reading its stream, a
//! view waiting for `atLeast` — lands after fields that did not, and identical requests can
//! answer their fields in different orders. Clients that compare or stream-parse responses,
//! and every human reading one, deserve the query's order.
//!
//! [`FieldOrder`] puts every object of a response (top level, nested, in lists, each event of
//! a subscription) back into CollectFields order after execution, from the request's parsed
//! document and the schema's types: `@skip`/`@include` are honoured, and a fragment applies
//! when its type condition is the object's type or an interface or union holding it. The
//! object type of a value is the field's type in the schema; for a field of an interface or
//! union type it is the value's `__typename` when selected, else the possible type whose
//! fields are exactly the value's (a value that matches none is left as executed). An object
//! already in order — most of them, since fields that complete at once complete in order —
//! is only walked, not rebuilt.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{Name, Positioned, Request, Response, ServerResult, Value, Variables};
use futures::stream::BoxStream;
use futures::StreamExt;
use std::sync::{Arc, Mutex};

/// The extension (installed on every schema the gateway builds, see `graphql::builder`).
pub struct FieldOrder;

impl ExtensionFactory for FieldOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest::default())
    }
}

/// What one request's ordering needs, captured as async-graphql prepares the request.
#[derive(Default)]
struct PerRequest {
    state: Arc<Captured>,
}

#[derive(Default)]
struct Captured {
    operation_name: Mutex<Option<String>>,
    parsed: Mutex<Option<(Arc<ExecutableDocument>, Variables)>>,
}

impl Captured {
    fn reorder(&self, registry: &Registry, operation_name: Option<&str>, response: &mut Response) {
        let parsed = self
            .parsed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some((document, variables)) = parsed else {
            return;
        };
        let name = operation_name.map(str::to_string).or_else(|| {
            self.operation_name
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        });
        let order = Order {
            registry,
            document: &document,
            variables: &variables,
        };
        order.response(name.as_deref(), &mut response.data);
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        *self
            .state
            .operation_name
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        // The endpoint's cache has most documents already: share it rather than copy.
        let kept = super::documents::kept(query).unwrap_or_else(|| Arc::new(document.clone()));
        *self.state.parsed.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((kept, variables.clone()));
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        self.state
            .reorder(&ctx.schema_env.registry, operation_name, &mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // The events of a subscription are executed without the `execute` hook; the document
        // is parsed before the first of them.
        let state = self.state.clone();
        let env = ctx.schema_env.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                state.reorder(&env.registry, None, &mut response);
                response
            })
            .boxed()
    }
}

/// Puts values in order: one request's document, variables and the schema's types.
struct Order<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
}

/// The fields of one object in CollectFields order: each response key with the fields
/// selected under it (their sub-selections merge) and the schema type they return.
struct Plan<'a> {
    entries: Vec<Entry<'a>>,
}

struct Entry<'a> {
    key: &'a Name,
    fields: Vec<&'a Positioned<Field>>,
    /// The named type the field returns, when it can hold objects.
    child_type: Option<&'a str>,
}

impl<'a> Order<'a> {
    /// Orders `data` of the operation named `name` (or the only one).
    fn response(&self, name: Option<&str>, data: &mut Value) {
        let operation = match (&self.document.operations, name) {
            (DocumentOperations::Single(op), _) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
                Some(op) => op,
                None => return,
            },
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                match ops.values().next() {
                    Some(op) => op,
                    None => return,
                }
            }
            (DocumentOperations::Multiple(_), None) => return,
        };
        let root = match operation.node.ty {
            OperationType::Query => Some(self.registry.query_type.as_str()),
            OperationType::Mutation => self.registry.mutation_type.as_deref(),
            OperationType::Subscription => self.registry.subscription_type.as_deref(),
        };
        if let Some(root) = root {
            self.value(data, &[&operation.node.selection_set.node], root);
        }
    }

    /// Orders `value` (an object, a list of them, or anything else: left alone) selected by
    /// `sets` and of schema type `type_name`.
    fn value(&self, value: &mut Value, sets: &[&'a SelectionSet], type_name: &'a str) {
        match value {
            Value::List(items) => {
                // One plan for every item of a list of one object type.
                if let Some(MetaType::Object { .. }) = self.registry.types.get(type_name) {
                    let plan = self.plan(sets, type_name);
                    for item in items {
                        self.apply(item, &plan);
                    }
                } else {
                    for item in items {
                        self.value(item, sets, type_name);
                    }
                }
            }
            Value::Object(map) => {
                let Some(concrete) = self.concrete_type(map, sets, type_name) else {
                    return;
                };
                let plan = self.plan(sets, concrete);
                self.apply(value, &plan);
            }
            _ => {}
        }
    }

    /// Orders an object (or a list of objects) by `plan`, then its children.
    fn apply(&self, value: &mut Value, plan: &Plan<'a>) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.apply(item, plan);
                }
            }
            Value::Object(map) => {
                if !in_order(map.keys(), plan) {
                    let mut old = std::mem::take(map);
                    for entry in &plan.entries {
                        if let Some((key, value)) = old.shift_remove_entry(entry.key) {
                            map.insert(key, value);
                        }
                    }
                    // Nothing should be left; keep whatever is, after the known fields.
                    map.extend(old);
                }
                for entry in &plan.entries {
                    let (Some(child_type), Some(child)) =
                        (entry.child_type, map.get_mut(entry.key))
                    else {
                        continue;
                    };
                    let sets: Vec<&'a SelectionSet> = entry
                        .fields
                        .iter()
                        .map(|f| &f.node.selection_set.node)
                        .collect();
                    self.value(child, &sets, child_type);
                }
            }
            _ => {}
        }
    }

    /// The object type of `map`, a value of schema type `type_name`.
    fn concrete_type(
        &self,
        map: &async_graphql::indexmap::IndexMap<Name, Value>,
        sets: &[&'a SelectionSet],
        type_name: &'a str,
    ) -> Option<&'a str> {
        let meta = self.registry.types.get(type_name)?;
        let possible = match meta {
            MetaType::Object { .. } => return Some(type_name),
            MetaType::Interface { possible_types, .. } | MetaType::Union { possible_types, .. } => {
                possible_types
            }
            _ => return None,
        };
        // `__typename` under any alias names it.
        let typename = self
            .plan_keys(sets, type_name)
            .into_iter()
            .filter(|(_, field)| field.node.name.node == "__typename")
            .find_map(|(key, _)| match map.get(key) {
                Some(Value::String(name)) => Some(name.clone()),
                _ => None,
            });
        if let Some(name) = typename {
            return possible
                .get(name.as_str())
                .map(String::as_str)
                .or_else(|| (name == type_name).then_some(type_name));
        }
        possible.iter().map(String::as_str).find(|candidate| {
            let plan = self.plan(sets, candidate);
            plan.entries.len() == map.len() && plan.entries.iter().all(|e| map.contains_key(e.key))
        })
    }

    /// The response keys `sets` select on a value of type `type_name`, with one field each
    /// (enough to find `__typename`).
    fn plan_keys(
        &self,
        sets: &[&'a SelectionSet],
        type_name: &str,
    ) -> Vec<(&'a Name, &'a Positioned<Field>)> {
        let mut fields = Vec::new();
        let mut visited = Vec::new();
        for set in sets {
            self.collect(set, type_name, &mut fields, &mut visited);
        }
        fields
            .into_iter()
            .map(|f| (&f.node.response_key().node, f))
            .collect()
    }

    /// CollectFields for `sets` on an object of type `type_name`.
    fn plan(&self, sets: &[&'a SelectionSet], type_name: &'a str) -> Plan<'a> {
        let mut fields = Vec::new();
        let mut visited = Vec::new();
        for set in sets {
            self.collect(set, type_name, &mut fields, &mut visited);
        }
        let object = self.registry.types.get(type_name);
        let mut entries: Vec<Entry<'a>> = Vec::new();
        for field in fields {
            let key = &field.node.response_key().node;
            if let Some(entry) = entries.iter_mut().find(|e| e.key == key) {
                entry.fields.push(field);
                continue;
            }
            let child_type = object
                .and_then(|o| o.field_by_name(field.node.name.node.as_str()))
                .map(|f| named_type(&f.ty))
                .filter(|named| {
                    matches!(
                        self.registry.types.get(*named),
                        Some(
                            MetaType::Object { .. }
                                | MetaType::Interface { .. }
                                | MetaType::Union { .. }
                        )
                    )
                });
            entries.push(Entry {
                key,
                fields: vec![field],
                child_type,
            });
        }
        Plan { entries }
    }

    /// Appends the fields `set` selects on an object of type `type_name`, in order.
    fn collect(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        out: &mut Vec<&'a Positioned<Field>>,
        visited: &mut Vec<&'a str>,
    ) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    if self.included(&field.node.directives) {
                        out.push(field);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if !self.included(&spread.node.directives) || visited.contains(&name) {
                        continue;
                    }
                    visited.push(name);
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue;
                    };
                    if self.applies(&fragment.node.type_condition.node.on.node, type_name) {
                        self.collect(&fragment.node.selection_set.node, type_name, out, visited);
                    }
                }
                Selection::InlineFragment(inline) => {
                    if !self.included(&inline.node.directives) {
                        continue;
                    }
                    let applies = inline
                        .node
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| self.applies(&c.node.on.node, type_name));
                    if applies {
                        self.collect(&inline.node.selection_set.node, type_name, out, visited);
                    }
                }
            }
        }
    }

    /// Whether a fragment on `condition` applies to an object of type `type_name`.
    fn applies(&self, condition: &str, type_name: &str) -> bool {
        condition == type_name
            || self
                .registry
                .types
                .get(condition)
                .is_some_and(|t| t.is_possible_type(type_name))
    }

    /// `@skip(if:)` and `@include(if:)` with the request's variables.
    fn included(&self, directives: &[Positioned<async_graphql::parser::types::Directive>]) -> bool {
        directives.iter().all(|directive| {
            let condition = directive.node.get_argument("if").map(|value| {
                let value = value
                    .node
                    .clone()
                    .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()));
                matches!(value, Ok(Value::Boolean(true)))
            });
            match directive.node.name.node.as_str() {
                "skip" => condition != Some(true),
                "include" => condition != Some(false),
                _ => true,
            }
        })
    }
}

/// Whether `keys` already follow `plan` (every key found, in order).
fn in_order<'k>(keys: impl Iterator<Item = &'k Name>, plan: &Plan<'_>) -> bool {
    let mut entries = plan.entries.iter();
    keys.into_iter()
        .all(|key| entries.by_ref().any(|entry| entry.key == key))
}

/// `Foo` of `[Foo!]!`.
fn named_type(ty: &str) -> &str {
    ty.trim_start_matches('[').trim_end_matches([']', '!'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{Interface, Object, Schema, SimpleObject, Subscription};
    use std::time::Duration;

    /// Fields that wait complete after the ones that do not: without [`FieldOrder`], `slow`
    /// comes last whatever the query says.
    struct Query;

    #[derive(SimpleObject)]
    struct Plain {
        a: i32,
        b: i32,
    }

    struct Item(i32);

    #[Object]
    impl Item {
        async fn slow(&self) -> i32 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.0
        }
        async fn fast(&self) -> i32 {
            self.0
        }
        async fn plain(&self) -> Plain {
            Plain { a: 1, b: 2 }
        }
    }

    #[derive(Interface)]
    #[graphql(field(name = "fast", ty = "i32"))]
    enum Node {
        Item(Item),
    }

    #[Object]
    impl Query {
        async fn slow(&self) -> i32 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            1
        }
        async fn fast(&self) -> i32 {
            2
        }
        async fn item(&self) -> Item {
            Item(3)
        }
        async fn items(&self) -> Vec<Vec<Item>> {
            vec![vec![Item(4), Item(5)]]
        }
        async fn node(&self) -> Node {
            Node::Item(Item(6))
        }
    }

    struct Mutation;

    #[Object]
    impl Mutation {
        async fn touch(&self) -> Item {
            Item(7)
        }
    }

    struct Subs;

    #[Subscription]
    impl Subs {
        async fn ticks(&self) -> impl futures::Stream<Item = Item> {
            futures::stream::iter([Item(8), Item(9)])
        }
    }

    fn schema() -> Schema<Query, Mutation, Subs> {
        Schema::build(Query, Mutation, Subs)
            .extension(FieldOrder)
            .finish()
    }

    async fn text(request: impl Into<Request>) -> String {
        let response = schema().execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        serde_json::to_string(&response.data).expect("json")
    }

    #[tokio::test]
    async fn top_level_and_nested_fields_keep_the_querys_order() {
        assert_eq!(
            text("{ slow fast item { slow fast plain { b a } } }").await,
            r#"{"slow":1,"fast":2,"item":{"slow":3,"fast":3,"plain":{"b":2,"a":1}}}"#
        );
        assert_eq!(
            text("{ items { slow fast } fast slow }").await,
            r#"{"items":[[{"slow":4,"fast":4},{"slow":5,"fast":5}]],"fast":2,"slow":1}"#
        );
    }

    #[tokio::test]
    async fn aliases_fragments_and_directives_follow_collect_fields() {
        let query = "query($no: Boolean!) {
            ...Head
            x: slow @skip(if: $no)
            fast
            ... on Query { late: slow item { ...ItemFields fast } }
            gone: slow @include(if: $no)
        }
        fragment Head on Query { y: slow }
        fragment ItemFields on Item { slow }";
        let request =
            Request::new(query).variables(Variables::from_json(serde_json::json!({ "no": false })));
        assert_eq!(
            text(request).await,
            r#"{"y":1,"x":1,"fast":2,"late":1,"item":{"slow":3,"fast":3}}"#
        );
    }

    #[tokio::test]
    async fn objects_of_an_interface_type_follow_their_fragments() {
        assert_eq!(
            text("{ node { ... on Item { slow } fast __typename } fast slow }").await,
            r#"{"node":{"slow":6,"fast":6,"__typename":"Item"},"fast":2,"slow":1}"#
        );
        // Without __typename the possible type whose fields match is found.
        assert_eq!(
            text("{ node { ... on Item { slow } fast } slow }").await,
            r#"{"node":{"slow":6,"fast":6},"slow":1}"#
        );
    }

    #[tokio::test]
    async fn named_operations_mutations_and_subscription_events_are_ordered() {
        let request = Request::new("query A { fast } query B { slow fast item { slow fast } }")
            .operation_name("B");
        assert_eq!(
            text(request).await,
            r#"{"slow":1,"fast":2,"item":{"slow":3,"fast":3}}"#
        );
        assert_eq!(
            text("mutation { touch { slow fast } }").await,
            r#"{"touch":{"slow":7,"fast":7}}"#
        );
        let events: Vec<String> = schema()
            .execute_stream("subscription { ticks { slow fast } }")
            .map(|r| serde_json::to_string(&r.data).expect("json"))
            .collect()
            .await;
        assert_eq!(
            events,
            vec![
                r#"{"ticks":{"slow":8,"fast":8}}"#.to_string(),
                r#"{"ticks":{"slow":9,"fast":9}}"#.to_string()
            ]
        );
    }

    #[tokio::test]
    async fn without_the_extension_the_order_is_the_order_of_completion() {
        // The defect this module exists for; if async-graphql ever keeps the order itself,
        // this fails and the extension can go.
        let schema = Schema::build(Query, Mutation, Subs).finish();
        let response = schema.execute("{ slow fast }").await;
        assert_eq!(
            serde_json::to_string(&response.data).expect("json"),
            r#"{"fast":2,"slow":1}"#
        );
    }
}
