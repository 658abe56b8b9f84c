//! The event store as GraphQL exposes it: the head position (for read-your-writes), an
//! ADMIN-only reader of one stream, and the ADMIN-only event feed subscription integrators
//! build notifications and ERP sync on.

use super::conventions::{
    connection_complexity, forward_connection, gql_error, internal_error, request_context,
    require_role, ErrorCode, UserError,
};
use super::store;
use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Json, Object, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::Stream;
use ichigen_shared::auth::Role;
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::store::{SubscribeFrom, SubscriptionFilter};
use uuid::Uuid;

/// GraphQL type name of [`StoreEvent`], the type part of its global id.
pub const STORE_EVENT_TYPE: &str = "StoreEvent";

// Fields are computed on demand, so a feed that asks for `type` and `position` only never
// parses payloads.
pub struct StoreEvent(pub RecordedEvent);

/// One recorded event of the event store. Revisions and positions are strings because they
/// are 64-bit, beyond GraphQL's `Int`; positions are opaque.
#[Object]
impl StoreEvent {
    /// Global id: opaque.
    async fn id(&self) -> ID {
        super::conventions::encode_id(
            STORE_EVENT_TYPE,
            &format!("{}/{}", self.0.stream, self.0.revision),
        )
    }

    /// The event's own UUID, as the store deduplicates by it.
    async fn event_id(&self) -> Uuid {
        self.0.id
    }

    async fn stream(&self) -> &str {
        &self.0.stream
    }

    /// 0-based index of the event in its stream, as a decimal string.
    async fn revision(&self) -> String {
        self.0.revision.to_string()
    }

    /// Global position: opaque; pass it back as `after` to resume a feed from here.
    async fn position(&self) -> String {
        self.0.position.to_string()
    }

    /// Versioned event type, e.g. `StockReceived.v1`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// The payload. Events are JSON by contract; should bytes ever not be, they come back as
    /// a JSON string (lossy UTF-8) so that one bad event cannot break a feed.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_slice(&self.0.data).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&self.0.data).into_owned())
        }))
    }

    async fn correlation_id(&self) -> Uuid {
        self.0.metadata.correlation_id
    }

    async fn causation_id(&self) -> Option<Uuid> {
        self.0.metadata.causation_id
    }

    /// Who caused it, `ROLE:subject` or `ROLE:subject@store`.
    async fn actor(&self) -> String {
        self.0.metadata.actor.to_compact()
    }

    /// When it happened in the business (may precede the append).
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.metadata.occurred_at
    }
}

/// Connection over one stream's events; the cursor is the revision.
pub type StoreEventConnection = Connection<OpaqueCursor<u64>, StoreEvent>;

#[derive(Default)]
pub struct EventStoreQuery;

#[Object]
impl EventStoreQuery {
    /// Position of the last event in the store (null when empty), opaque. Read it after a
    /// write and pass it to queries that accept a position to be sure to see that write.
    /// Open to every caller: it reveals nothing but how far the store has got.
    async fn store_head(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        request_context(ctx)?;
        let head = store(ctx)?
            .head()
            .await
            .map_err(|e| internal_error(ctx, "cannot read the event store head", &e))?;
        Ok(head.map(|p| p.to_string()))
    }

    /// ADMIN only: the events of one stream in order, for support and debugging.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn stream_events(
        &self,
        ctx: &Context<'_>,
        stream: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<StoreEventConnection> {
        require_role(ctx, &[Role::Admin])?;
        ichigen_shared::ids::validate_stream_name(&stream)
            .map_err(|e| UserError::invalid(&["stream"], e.to_string()))?;
        let store = store(ctx)?;
        forward_connection(after, first, |after: Option<u64>, limit| async move {
            let from = after.map_or(0, |rev| rev.saturating_add(1));
            let events = store
                .read_stream(&stream, from, limit)
                .await
                .map_err(|e| internal_error(ctx, "cannot read the stream", &e))?;
            Ok(events
                .into_iter()
                .map(|e| (e.revision, StoreEvent(e)))
                .collect())
        })
        .await
    }
}

#[derive(Default)]
pub struct EventFeedSubscription;

#[Subscription]
impl EventFeedSubscription {
    /// ADMIN only: every event after `after` (a `position`), then live events as they are
    /// written, in global order with no gap. Without `after` the feed starts at the current
    /// end (live events only); `after: "0"` replays the whole history. Filter by stream
    /// categories (`order`, `inventory`) or by event type prefixes (`Stock`, `OrderPlaced.v2`),
    /// not both. To resume after a disconnect, pass the last `position` received.
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        categories: Option<Vec<String>>,
        event_type_prefixes: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<StoreEvent>>> {
        require_role(ctx, &[Role::Admin])?;
        let filter = feed_filter(categories, event_type_prefixes)?;
        let from = match after {
            None => SubscribeFrom::End,
            Some(text) => match super::conventions::position_argument(Some(&text), "after")? {
                Some(position) => SubscribeFrom::After(position),
                None => SubscribeFrom::End,
            },
        };
        let correlation_id = request_context(ctx)?.correlation_id;
        let subscription = store(ctx)?
            .subscribe(from, filter)
            .await
            .map_err(|e| internal_error(ctx, "cannot subscribe to the event store", &e))?;
        // After a store error the feed ends: the client resumes from its last position.
        Ok(futures::stream::unfold(
            Some(subscription),
            move |state| async move {
                let mut subscription = state?;
                match subscription.next().await {
                    Some(Ok(event)) => Some((Ok(StoreEvent(event)), Some(subscription))),
                    Some(Err(e)) => {
                        tracing::error!(%correlation_id, error = %e, "event feed failed");
                        let error = gql_error(
                            ErrorCode::Internal,
                            format!(
                                "the event feed failed; resume from the last position received \
                                 (correlation id {correlation_id})"
                            ),
                        );
                        Some((Err(error), None))
                    }
                    None => None,
                }
            },
        ))
    }
}

/// The store filter for the feed's arguments. Both kinds at once would need an AND or an OR
/// that KurrentDB cannot filter server side, so it is refused rather than guessed.
fn feed_filter(
    categories: Option<Vec<String>>,
    prefixes: Option<Vec<String>>,
) -> Result<SubscriptionFilter, UserError> {
    let non_empty = |field: &str, values: &[String]| -> Result<(), UserError> {
        if values.is_empty() {
            return Err(UserError::invalid(
                &[field],
                format!("`{field}` must list at least one value, or be left out"),
            ));
        }
        if values.iter().any(|v| v.trim().is_empty()) {
            return Err(UserError::invalid(
                &[field],
                format!("`{field}` must not contain empty strings"),
            ));
        }
        Ok(())
    };
    match (categories, prefixes) {
        (Some(_), Some(_)) => Err(UserError::invalid(
            &[],
            "give `categories` or `eventTypePrefixes`, not both",
        )),
        (Some(categories), None) => {
            non_empty("categories", &categories)?;
            Ok(SubscriptionFilter::Categories(categories))
        }
        (None, Some(prefixes)) => {
            non_empty("eventTypePrefixes", &prefixes)?;
            Ok(SubscriptionFilter::EventTypePrefixes(prefixes))
        }
        (None, None) => Ok(SubscriptionFilter::All),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_filters_are_exclusive_and_non_empty() {
        assert_eq!(feed_filter(None, None).unwrap(), SubscriptionFilter::All);
        assert_eq!(
            feed_filter(Some(vec!["order".into()]), None).unwrap(),
            SubscriptionFilter::categories(["order"])
        );
        assert_eq!(
            feed_filter(None, Some(vec!["Stock".into()])).unwrap(),
            SubscriptionFilter::event_types(["Stock"])
        );
        let both = feed_filter(Some(vec!["order".into()]), Some(vec!["Stock".into()]));
        assert_eq!(both.unwrap_err().code, ErrorCode::InvalidInput);
        assert_eq!(
            feed_filter(Some(vec![]), None).unwrap_err().field,
            vec!["categories"]
        );
        assert_eq!(
            feed_filter(None, Some(vec![" ".into()])).unwrap_err().field,
            vec!["eventTypePrefixes"]
        );
    }
}
