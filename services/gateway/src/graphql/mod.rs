//! The GraphQL API: storefronts, store staff tablets, customer-service agents and integrators
//! all use this one schema (design.md, "Who uses it").
//!
//! * [`conventions`]: errors, money, ids, connections and role checks every feature follows.
//! * [`viewer`], [`events`]: the first fields; each service adds its own query, mutation and
//!   subscription objects to the merged roots below.
//! * [`configure`]: mounts `/graphql` (POST queries and mutations, WebSocket subscriptions,
//!   GraphiQL) on actix-web; [`documents`] keeps parsed queries by their text;
//!   [`field_order`] answers fields in the query's order; [`graphiql`] serves GraphiQL
//!   and its assets from the binary.
//!
//! The committed `schema.graphql` at the workspace root is [`sdl`]'s output; a test fails when
//! they differ, so every schema change shows up in review (`make schema` regenerates it).

pub use ichigen_shared::graphql::conventions;
pub mod clock;
pub mod documents;
mod endpoint;
pub mod events;
pub mod field_order;
pub mod graphiql;
pub mod subscriptions;
pub mod viewer;

#[cfg(test)]
mod tests;

pub use endpoint::{configure, GRAPHQL_PATH};

use async_graphql::{Context, MergedObject, MergedSubscription, Schema, SchemaBuilder};
use conventions::{gql_error, ErrorCode, ErrorCodeDefaults, MoneyInput, MoneyObject, UserError};
use ichigen_shared::store::DynEventStore;

pub use ichigen_shared::graphql::RequestContext;

/// Everything Ichigen lets a caller read.
// Each feature adds its query object to this tuple; `MergedObject` flattens them into one
// `Query` type (field names must not collide).
#[derive(MergedObject, Default)]
pub struct Query(
    viewer::ViewerQuery,
    clock::ClockQuery,
    events::EventStoreQuery,
    ichigen_inventory::graphql::InventoryQuery,
    ichigen_order::graphql::OrderQuery,
    ichigen_fulfillment::graphql::FulfillmentQuery,
    ichigen_rma::graphql::RmaQuery,
);

/// Everything Ichigen lets a caller change. Each service adds its mutation object.
#[derive(MergedObject, Default)]
pub struct Mutation(
    clock::ClockMutation,
    ichigen_inventory::graphql::InventoryMutation,
    ichigen_order::graphql::OrderMutation,
    ichigen_fulfillment::graphql::FulfillmentMutation,
    ichigen_rma::graphql::RmaMutation,
);

/// Live feeds.
// Features add their subscription objects to the tuple.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    events::EventFeedSubscription,
    ichigen_inventory::graphql::InventorySubscription,
    ichigen_order::graphql::OrderSubscription,
    ichigen_rma::graphql::RmaSubscription,
);

pub type IchigenSchema = Schema<Query, Mutation, Subscription>;

/// Limits and switches of the GraphQL endpoint (from configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphqlSettings {
    /// Deepest field nesting a query may have. GraphiQL's introspection query needs 15.
    pub depth_limit: usize,
    /// Largest query complexity (one per field, a connection's item selection multiplied by
    /// its page size; see [`conventions::connection_complexity`]).
    pub complexity_limit: usize,
    /// Serve the GraphiQL IDE on `GET /graphql`.
    pub graphiql: bool,
}

/// The served defaults' limits (they admit GraphiQL's introspection and a full 500-item page
/// of any connection); GraphiQL is off, as befits production.
impl Default for GraphqlSettings {
    fn default() -> Self {
        GraphqlSettings {
            depth_limit: 16,
            complexity_limit: conventions::DEFAULT_COMPLEXITY_LIMIT,
            graphiql: false,
        }
    }
}

/// What resolvers use to do their work, put into the schema as data. Services add their
/// handles (command and query traits) here as they join the API.
#[derive(Clone)]
pub struct SchemaDeps {
    pub store: DynEventStore,
    /// The inventory service's handlers and view (shared with its HTTP API and processes).
    pub inventory: ichigen_inventory::InventoryService,
    /// The order service's catalog and handlers.
    pub orders: ichigen_order::OrderService,
    /// The fulfillment service's handlers and queues.
    pub fulfillment: ichigen_fulfillment::FulfillmentService,
    /// The returns service's handlers, view and ports.
    pub returns: ichigen_rma::RmaService,
    /// The clock the services decide on, and the test clock if enabled.
    pub clock: clock::ServerClock,
}

/// The schema with its dependencies and limits, ready to serve.
pub fn build_schema(deps: SchemaDeps, settings: &GraphqlSettings) -> IchigenSchema {
    builder()
        .limit_depth(settings.depth_limit)
        .limit_complexity(settings.complexity_limit)
        .data(deps.inventory.clone())
        // Availability shows only what the catalog sells.
        .data(ichigen_inventory::graphql::Sellable(std::sync::Arc::new(
            crate::wiring::CatalogSellable(deps.orders.catalog.clone()),
        )))
        .data(deps.orders.clone())
        .data(deps.fulfillment.clone())
        .data(deps.returns.clone())
        .data(deps.clock.clone())
        .data(deps)
        .finish()
}

/// The schema in SDL: what `schema.graphql` holds. Needs no store (resolvers never run), and
/// is deterministic because the registry is.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// What the served schema and the SDL share, so that the two cannot drift apart.
fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    // The conventions are part of the contract before any mutation uses them.
    .register_output_type::<UserError>()
    .register_output_type::<MoneyObject>()
    .register_input_type::<MoneyInput>()
    .extension(ErrorCodeDefaults)
    // async-graphql inserts fields as they complete; the spec wants the query's order.
    .extension(field_order::FieldOrder)
}

/// The schema's dependencies; missing ones are a wiring bug reported as `INTERNAL`.
pub(crate) fn deps<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a SchemaDeps> {
    ctx.data_opt::<SchemaDeps>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the schema was built without its dependencies (gateway wiring bug)",
        )
    })
}

/// The event store, for resolvers.
pub(crate) fn store<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a DynEventStore> {
    Ok(&deps(ctx)?.store)
}
