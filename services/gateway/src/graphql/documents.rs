//! Parsed GraphQL documents, kept by their query text.
//!
//! Storefronts, store tablets and agents' tools send the same few operations over and over with
//! other variables. Parsing the text again for every request (async-graphql's pest parser) was
//! 6 % of all CPU in the orders benchmark at 64 clients, more than validation and serialization
//! together. A document that parsed is kept here by its text and handed to async-graphql ready
//! made ([`async_graphql::Request::set_parsed_query`]); async-graphql still checks its depth
//! and validates it, with the request's variables, on every request. A text that does not
//! parse is left alone, and async-graphql reports the syntax error as before.
//!
//! Parsing does not depend on the schema, so one cache serves every schema in the process.

use async_graphql::parser::types::ExecutableDocument;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// Distinct query texts kept. Clients send a handful each; past this many the cache starts
/// over, so texts made up per request (literals inlined instead of variables) cost only the
/// parse they would have cost anyway.
const CAPACITY: usize = 256;

/// Longest query text kept (longer ones are parsed per request, as before).
const MAX_QUERY_BYTES: usize = 16 * 1024;

static DOCUMENTS: LazyLock<DocumentCache> = LazyLock::new(|| DocumentCache::new(CAPACITY));

/// Gives `request` its parsed document from the process's cache, parsing and keeping it first
/// if the text is new.
pub fn prepare(request: &mut async_graphql::Request) {
    DOCUMENTS.prepare(request);
}

/// The kept document of `query`, if any (shared, not copied: [`super::field_order`] reads it).
pub fn kept(query: &str) -> Option<Arc<ExecutableDocument>> {
    DOCUMENTS.get(query)
}

/// A bounded map from query text to its parsed document.
pub struct DocumentCache {
    capacity: usize,
    documents: RwLock<HashMap<Arc<str>, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    pub fn new(capacity: usize) -> Self {
        DocumentCache {
            capacity: capacity.max(1),
            documents: RwLock::default(),
        }
    }

    /// See [`prepare`].
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_QUERY_BYTES {
            return;
        }
        let known = self
            .documents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(request.query.as_str())
            .cloned();
        if let Some(document) = known {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return;
        }
        let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
            return;
        };
        {
            let mut documents = self.documents.write().unwrap_or_else(|p| p.into_inner());
            if documents.len() >= self.capacity {
                documents.clear();
            }
            documents.insert(
                Arc::from(request.query.as_str()),
                Arc::new(document.clone()),
            );
        }
        request.set_parsed_query(document);
    }

    /// The kept document of `query`.
    pub fn get(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        self.documents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(query)
            .cloned()
    }

    /// Texts kept now.
    pub fn len(&self) -> usize {
        self.documents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }
        async fn nested(&self) -> Query {
            Query
        }
    }

    fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .limit_depth(3)
            .finish()
    }

    async fn run(cache: &DocumentCache, request: async_graphql::Request) -> serde_json::Value {
        let mut request = request;
        cache.prepare(&mut request);
        serde_json::to_value(schema().execute(request).await).expect("json")
    }

    #[tokio::test]
    async fn a_kept_document_runs_with_each_requests_variables() {
        let cache = DocumentCache::new(8);
        let query = "query($n: Int!) { double(n: $n) }";
        for n in [2, 21] {
            let request = async_graphql::Request::new(query).variables(
                async_graphql::Variables::from_json(serde_json::json!({ "n": n })),
            );
            let answer = run(&cache, request).await;
            assert_eq!(answer["data"]["double"], n * 2, "{answer}");
        }
        assert_eq!(cache.len(), 1);
        // Variables are still validated per request.
        let request = async_graphql::Request::new(query).variables(
            async_graphql::Variables::from_json(serde_json::json!({ "n": "two" })),
        );
        let answer = run(&cache, request).await;
        assert!(answer["data"].is_null(), "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Int")),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_text_that_does_not_parse_gets_the_usual_error_and_is_not_kept() {
        let cache = DocumentCache::new(8);
        let answer = run(&cache, async_graphql::Request::new("{ double(n: 1 }")).await;
        assert!(answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expected")));
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn limits_still_apply_to_a_kept_document() {
        let cache = DocumentCache::new(8);
        let deep = "{ nested { nested { nested { double(n: 1) } } } }";
        for _ in 0..2 {
            let answer = run(&cache, async_graphql::Request::new(deep)).await;
            assert!(
                answer["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("nested too deep")),
                "{answer}"
            );
        }
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_starts_over_at_its_capacity() {
        let cache = DocumentCache::new(4);
        for n in 0..10 {
            let mut request = async_graphql::Request::new(format!("{{ double(n: {n}) }}"));
            cache.prepare(&mut request);
            assert!(cache.len() <= 4);
        }
        assert!(!cache.is_empty());
    }
}
