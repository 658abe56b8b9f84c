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
    /// Run the server: every service and the gateway in one process (the default), or one.
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
