//! The GraphQL gateway and the `ichigen` binary.
//!
//! * [`cli`]: the command line (`ichigen serve`, `ichigen token`, `ichigen schema`).
//! * [`serve`]: opens the store, starts projections and the HTTP server for a [`serve::Target`].
//! * [`http`]: health, metrics and the correlation-id/metrics middleware every route gets.
//! * [`graphql`]: the schema, its conventions and the `/graphql` endpoint.
//! * [`auth`]: HS256 bearer tokens carrying a role.

pub mod auth;
pub mod cli;
pub mod demo;
pub mod graphql;
pub mod http;
pub mod returns_wiring;
pub mod serve;
pub mod wiring;
