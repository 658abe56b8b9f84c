//! The GraphQL gateway and the `ichigen` binary.
//!
//! * [`cli`]: the command line (`ichigen serve`, `ichigen token`, `ichigen schema`).
//! * [`serve`]: opens the store, starts projections and the HTTP server for a [`serve::Target`].
//! * [`http`]: health, metrics and the correlation-id/metrics middleware every route gets.
//! * [`graphql`]: the schema, its conventions and the `/graphql` endpoint.
//! * [`auth`]: HS256 bearer tokens carrying a role.
//! * [`test_clock`]: a staging server's clock an ADMIN moves forward, shared through the store.
//! * [`shutdown`]: the switch a stop throws first, so that subscriptions close at once.

pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod demo;
pub mod graphql;
pub mod http;
pub mod returns_wiring;
pub mod serve;
pub mod shutdown;
pub mod test_clock;
pub mod wiring;

/// The allocator of every binary built on the gateway (the `ichigen` server, its benches and
/// tests). The orders path allocates per request (JSON, GraphQL, events), and glibc's malloc
/// was ~15 % of the CPU of the orders bench (`_int_malloc`, `free`, `malloc_consolidate`);
/// mimalloc's thread-local free lists are cheaper there. See BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
