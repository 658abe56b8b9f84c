//! The command line of the `ichigen` binary.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ichigen",
    version,
    about = "Ichigen: event-sourced unified commerce"
)]
pub struct Cli {
    /// TOML configuration file (default: ./ichigen.toml if present). `ICHIGEN__…` environment
    /// variables override it.
    #[arg(long, global = true, env = "ICHIGEN_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the gateway and every service in one process (the default), or one
    /// part of it per process (`--target`).
    ///
    /// `--target all` (the default) runs the GraphQL gateway and every service in this one
    /// process, on the embedded event store in `store.path` unless the configuration names
    /// KurrentDB. `--target gateway|order|inventory|fulfillment|rma` runs one part per process,
    /// usually against a shared KurrentDB.
    ///
    /// The server listens on `http.bind` (or `--bind`; port 0 picks a free port) and prints its
    /// address: GraphQL on /graphql (GraphiQL and graphql-ws subscriptions on GET), the
    /// integration APIs under /api, /health/live, /health/ready and /metrics. SIGTERM or SIGINT
    /// stops it gracefully: subscriptions are closed, requests in flight finish (at most
    /// `http.shutdown_timeout_secs`), and the store is flushed and closed.
    // The first paragraph is the one-line `about` that `ichigen --help` lists; it must read
    // whole on its own (clap shows nothing of the rest there).
    Serve {
        /// What this process runs.
        #[arg(long, value_enum, default_value = "all")]
        target: crate::serve::Target,
        /// Listen here instead of `http.bind`.
        #[arg(long)]
        bind: Option<String>,
        /// Seed the demo data set when the store is empty (same as `demo.seed = true`).
        #[arg(long)]
        demo: bool,
    },
    /// Mint a development bearer token signed with `auth.secret`.
    Token {
        /// customer, store-staff, cs-agent, wms-integration or admin.
        #[arg(long)]
        role: String,
        /// The store a store-staff token acts for.
        #[arg(long)]
        store: Option<String>,
        /// Token subject (customer id, user id, integration name).
        #[arg(long, default_value = "dev")]
        sub: String,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
    },
    /// Print the GraphQL schema (SDL) the gateway serves.
    Schema,
}
