//! Everything the Ichigen services share: the event store port and its two backends, the event
//! envelope, identifiers, money, configuration, telemetry and the projection runtime.
//!
//! Services depend on this crate and on nothing of each other: they talk through events in the
//! store and through the service traits the gateway wires together.

pub mod aggregate;
pub mod auth;
pub mod benchkit;
pub mod catalogue;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod envelope;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod local_day;
pub mod money;
pub mod projection;
pub mod resale;
pub mod store;
pub mod striped;
pub mod tasks;
pub mod telemetry;
pub mod test_postgres;
pub mod validate;

pub use envelope::{Actor, Metadata, NewEvent, RecordedEvent};
pub use store::{
    AppendResult, EventStore, ExpectedRevision, Position, StoreError, SubscribeFrom, Subscription,
    SubscriptionFilter,
};
