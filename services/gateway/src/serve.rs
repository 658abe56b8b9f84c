//! `ichigen serve`: one binary, two modes.
//!
//! [`Target::All`] runs the gateway and every service in one process (on the embedded store by
//! default; what `make run` starts). Any other target runs one part, against the store named in
//! the configuration (KurrentDB when several processes share it). The code does not fork on the
//! mode: a target only decides which routes and projections this process mounts.

use crate::auth::JwtAuth;
use crate::graphql::{self, GraphqlSettings, SchemaDeps};
use crate::http::{self, Readiness};
use crate::shutdown::Shutdown;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use ichigen_inventory::InventoryService;
use ichigen_shared::clock::{Clock, SystemClock};
use ichigen_shared::config::{Backend, Settings, DEV_SECRET};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::kurrent::KurrentStore;
use ichigen_shared::store::postgres::{PostgresOptions, PostgresStore};
use ichigen_shared::store::{DynEventStore, StoreError};
use ichigen_shared::tasks::Processes;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What one process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The gateway and every service.
    All,
    /// The GraphQL gateway.
    Gateway,
    Order,
    Inventory,
    Fulfillment,
    Rma,
}

impl Target {
    fn runs(self, part: Target) -> bool {
        self == Target::All || self == part
    }
}

/// Opens the configured event store, with one clear error when it cannot.
pub async fn open_store(settings: &Settings) -> Result<DynEventStore, StoreError> {
    match settings.store.backend {
        Backend::Embedded => {
            let options = EmbeddedOptions {
                max_batch_events: settings.store.max_batch_events,
                ..EmbeddedOptions::default()
            };
            Ok(Arc::new(
                EmbeddedStore::open(&settings.store.path, options).await?,
            ))
        }
        Backend::Kurrentdb => Ok(Arc::new(
            KurrentStore::connect(
                &settings.store.url,
                Duration::from_millis(settings.store.connect_timeout_ms),
            )
            .await?,
        )),
        Backend::Postgres => {
            let options = PostgresOptions {
                connect_timeout: Duration::from_millis(settings.store.connect_timeout_ms),
                max_batch_events: settings.store.max_batch_events,
                ca_file: (!settings.store.tls_ca_file.is_empty())
                    .then(|| settings.store.tls_ca_file.clone().into()),
                ..PostgresOptions::default()
            };
            Ok(Arc::new(
                PostgresStore::connect(&settings.store.url, options).await?,
            ))
        }
    }
}

/// A started server: its address, and the means to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub store: DynEventStore,
    /// Thrown to stop: subscriptions close on it at once, and the HTTP server starts its
    /// graceful stop.
    pub shutdown: Shutdown,
    /// Their background processes are stopped before the store closes.
    services: Services,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, closes subscriptions, finishes requests in flight (at most
    /// `http.shutdown_timeout_secs`), then closes the store.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
        self.services.shutdown().await;
        self.store.shutdown().await;
    }

    /// The inventory service this server runs (its processes, for tests that watch them).
    pub fn inventory(&self) -> &InventoryService {
        &self.services.inventory
    }

    /// The services this server runs (their processes, for tests that watch them).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Waits for the server to end (once [`RunningServer::shutdown`] is triggered: graceful),
    /// then closes the store.
    pub async fn wait(self) -> Result<(), String> {
        let served = self.task.await;
        self.services.shutdown().await;
        self.store.shutdown().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("HTTP server failed: {e}")),
            Err(e) => Err(format!("HTTP server task failed: {e}")),
        }
    }
}

/// The services of one process, each with the background processes its start-up started.
#[derive(Clone)]
pub struct Services {
    pub inventory: InventoryService,
    pub fulfillment: ichigen_fulfillment::FulfillmentService,
    pub orders: ichigen_order::OrderService,
    pub returns: ichigen_rma::RmaService,
}

impl Services {
    /// Stops every service's background processes, the ones that act on others' events first.
    pub async fn shutdown(&self) {
        self.returns.shutdown().await;
        self.orders.shutdown().await;
        self.fulfillment.shutdown().await;
        self.inventory.shutdown().await;
    }
}

/// Opens the store, starts projections and binds the HTTP server (`http.bind`; port 0 picks a
/// free port, reported in [`RunningServer::addr`]).
pub async fn start(settings: Settings, target: Target) -> Result<RunningServer, String> {
    start_with_clock(settings, target, Arc::new(SystemClock)).await
}

/// [`start`] with the clock every service decides on (hold and pickup expiry, pickup hold
/// days): end-to-end tests pass a `ManualClock` and move time forward.
pub async fn start_with_clock(
    settings: Settings,
    target: Target,
    clock: Arc<dyn Clock>,
) -> Result<RunningServer, String> {
    // Settings built in code (tests, embedders) get the checks a loaded file gets.
    settings.validate().map_err(|e| e.to_string())?;
    if settings.auth.secret == DEV_SECRET {
        tracing::warn!("auth.secret is the built-in development secret: set ICHIGEN__AUTH__SECRET");
    }
    let store = open_store(&settings).await.map_err(|e| match e {
        StoreError::Locked { path } => format!(
            "data directory {path} is in use by another ichigen process (or set store.path)"
        ),
        other => other.to_string(),
    })?;
    // A staging server's test clock: every service decides on the shared offset.
    let (clock, test_clock) = if settings.clock.test_clock {
        match crate::test_clock::TestClockService::start(store.clone(), clock).await {
            Ok(test_clock) => {
                tracing::warn!(
                    offset = %crate::test_clock::format_duration(test_clock.offset()),
                    "clock.test_clock is on: ADMINs can move this deployment's time forward"
                );
                (test_clock.clock(), Some(test_clock))
            }
            Err(e) => {
                store.shutdown().await;
                return Err(format!("cannot start the test clock: {e}"));
            }
        }
    } else {
        (clock, None)
    };
    let mut readiness = Readiness::default();
    // One inventory service per process, shared by GraphQL, the WMS API and its processes
    // (hold expiry, transfers: started by the service itself where inventory is served, and
    // stopped with the server): its stock handlers keep one writer per stream.
    let processes = |part: Target| {
        if target.runs(part) {
            Processes::Run
        } else {
            Processes::None
        }
    };
    let inventory =
        InventoryService::start_with(store.clone(), clock.clone(), processes(Target::Inventory));
    readiness.projections.extend(inventory.projections());
    // The fulfillment service: its handlers, store queues, the order intake (placed orders
    // become fulfillment orders, from a stored checkpoint) and the pickup expiry.
    let view = inventory.view.clone();
    let hold_days: ichigen_fulfillment::process::order_intake::HoldDays =
        Arc::new(move |code: &str| crate::wiring::pickup_hold(&view, code));
    let fulfillment = ichigen_fulfillment::FulfillmentService::start_with(
        store.clone(),
        clock.clone(),
        hold_days,
        processes(Target::Fulfillment),
    );
    readiness.projections.extend(fulfillment.projections());
    // The order service reaches inventory and fulfillment through its ports, here the
    // in-process adapters. Cancellations of units a location holds are decided by the
    // fulfillment orders (ichigen_fulfillment::cancellation). Its processes: the fulfillment
    // reactions and the sweep of unrecorded placements.
    let orders = ichigen_order::OrderService::start_with(
        store.clone(),
        clock.clone(),
        Arc::new(crate::wiring::InProcessInventory(inventory.clone())),
        Arc::new(ichigen_order::payment::ManualProvider::new()),
        Arc::new(crate::wiring::InProcessFulfillment(
            fulfillment.cancellation(),
        )),
        processes(Target::Order),
    );
    readiness.projections.extend(orders.projections());
    // The returns service: its handlers and view over the other services' ports. The default
    // return policy is seeded on the first start (never over an administrator's changes).
    // Its process: the stock disposition of graded units (checkpointed; keyed by unit).
    let returns = ichigen_rma::RmaService::start_with(
        store.clone(),
        clock.clone(),
        ichigen_rma::service::RmaPorts {
            orders: Arc::new(crate::returns_wiring::InProcessOrders(orders.clone())),
            stock: Arc::new(crate::returns_wiring::InProcessStock(inventory.clone())),
            catalog: Arc::new(crate::returns_wiring::InProcessCatalog(
                orders.catalog.clone(),
            )),
            locations: Arc::new(crate::returns_wiring::InProcessLocations(inventory.clone())),
        },
        processes(Target::Rma),
    );
    readiness.projections.extend(returns.projections());
    let services = Services {
        inventory: inventory.clone(),
        fulfillment: fulfillment.clone(),
        orders: orders.clone(),
        returns: returns.clone(),
    };
    if let Err(e) = returns
        .handlers
        .policy()
        .ensure_default(ichigen_shared::envelope::Metadata::new(
            ichigen_shared::auth::Actor::system("rma-policy-seed"),
        ))
        .await
    {
        services.shutdown().await;
        store.shutdown().await;
        return Err(format!("cannot seed the default return policy: {e}"));
    }
    if settings.demo.seed {
        match crate::demo::seed(&inventory, &orders).await {
            Ok(seeded) => tracing::info!(%seeded, "demo data set"),
            Err(e) => {
                services.shutdown().await;
                store.shutdown().await;
                return Err(format!("cannot seed the demo data set: {e}"));
            }
        }
    }
    let graphql_settings = GraphqlSettings {
        depth_limit: settings.graphql.depth_limit,
        complexity_limit: settings.graphql.complexity_limit,
        graphiql: settings.graphql.graphiql,
    };
    let schema = graphql::build_schema(
        SchemaDeps {
            store: store.clone(),
            inventory: inventory.clone(),
            orders: orders.clone(),
            fulfillment: fulfillment.clone(),
            returns: returns.clone(),
            clock: graphql::clock::ServerClock {
                clock: clock.clone(),
                test_clock,
            },
        },
        &graphql_settings,
    );
    let auth = Arc::new(JwtAuth::new(&settings.auth.secret));
    let shutdown = Shutdown::new();
    let app_shutdown = shutdown.clone();
    let max_body = settings.http.max_body_bytes;
    let app_store = store.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            // Inside `observe`, so that a 413 is timed and carries the correlation id too.
            .wrap(from_fn(http::body_limit::enforce))
            .wrap(from_fn(http::observe))
            .app_data(http::body_limit::BodyLimit(max_body))
            .app_data(web::JsonConfig::default().limit(max_body))
            .app_data(web::PayloadConfig::default().limit(max_body))
            .app_data(web::Data::new(app_store.clone()))
            .app_data(web::Data::new(readiness.clone()))
            .configure(http::configure);
        if target.runs(Target::Gateway) {
            app = app
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(auth.clone()))
                .app_data(web::Data::new(graphql_settings.clone()))
                .app_data(web::Data::new(app_shutdown.clone()))
                .configure(graphql::configure);
        }
        if target.runs(Target::Order) {
            app = app
                .app_data(web::Data::new(orders.catalog.clone()))
                .app_data(web::Data::new(auth.clone()))
                .configure(|cfg| http::service_status(cfg, ichigen_order::CATEGORY))
                .configure(ichigen_order::api::configure);
        }
        if target.runs(Target::Inventory) {
            app = app
                .app_data(web::Data::new(inventory.clone()))
                .app_data(web::Data::new(auth.clone()))
                .configure(|cfg| http::service_status(cfg, ichigen_inventory::CATEGORY))
                .configure(ichigen_inventory::api::configure);
        }
        if target.runs(Target::Fulfillment) {
            app = app
                .app_data(web::Data::new(fulfillment.clone()))
                .app_data(web::Data::new(auth.clone()))
                .configure(|cfg| http::service_status(cfg, ichigen_fulfillment::CATEGORY))
                .configure(ichigen_fulfillment::api::configure);
        }
        if target.runs(Target::Rma) {
            app = app
                .app_data(web::Data::new(returns.clone()))
                .app_data(web::Data::new(auth.clone()))
                .configure(|cfg| http::service_status(cfg, ichigen_rma::CATEGORY))
                .configure(ichigen_rma::api::configure);
        }
        app
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs)
    // The server stops when `shutdown` is thrown (and handles no OS signal itself: `run`
    // throws it on SIGTERM/SIGINT), so that subscriptions close before the graceful wait.
    .shutdown_signal(shutdown.started());
    let server = if settings.http.workers > 0 {
        server.workers(settings.http.workers)
    } else {
        server
    };
    let bind = settings.bind_addr();
    let server = match server.bind(bind) {
        Ok(s) => s,
        Err(e) => {
            services.shutdown().await;
            store.shutdown().await;
            return Err(format!("cannot listen on {bind}: {e}"));
        }
    };
    let addr = server.addrs().first().copied().unwrap_or(bind);
    let task = tokio::spawn(server.run());
    Ok(RunningServer {
        addr,
        store,
        shutdown,
        services,
        task,
    })
}

/// `ichigen serve`: runs until SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(settings: Settings, target: Target) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ichigen")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let graphiql = settings.graphql.graphiql && target.runs(Target::Gateway);
    actix_web::rt::System::with_tokio_rt(|| runtime).block_on(async move {
        let server = start(settings, target).await?;
        let addr = server.addr;
        tracing::info!(%addr, ?target, backend = server.store.backend_name(), "ichigen listening");
        // Not println!: a closed stdout (a supervisor that stopped reading) must not panic us.
        let mut banner = format!("Ichigen ({target:?}) listening on http://{addr}\n");
        if graphiql {
            banner.push_str(&format!("GraphiQL: http://{addr}/graphql\n"));
        }
        let mut stdout = std::io::stdout();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|_| stdout.flush());
        let shutdown = server.shutdown.clone();
        tokio::spawn(async move {
            match crate::shutdown::os_signal().await {
                Ok(()) => {
                    tracing::info!("stop signal received; shutting down");
                    shutdown.trigger();
                }
                // No handler installed: the signals keep their default (ending the process).
                Err(e) => tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT"),
            }
        });
        server.wait().await?;
        tracing::info!("ichigen stopped");
        Ok(())
    })
}
