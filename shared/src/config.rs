//! Configuration: built-in defaults, then an optional TOML file, then `ICHIGEN__…` environment
//! variables (`ICHIGEN__STORE__BACKEND=kurrentdb`, `ICHIGEN__HTTP__BIND=0.0.0.0:8080`).
//!
//! Every key is listed in README.md ("Configuration"); unknown keys are refused so that a typo
//! does not silently fall back to a default.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite in the data directory: one process, no setup.
    Embedded,
    /// EventStoreDB / KurrentDB at `store.url`.
    Kurrentdb,
    /// PostgreSQL at `store.url`: one database many processes share.
    Postgres,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: Backend,
    /// Data directory of the embedded store.
    pub path: PathBuf,
    /// Connection string of KurrentDB (`esdb://` or `kurrentdb://`) or PostgreSQL
    /// (`postgres://user[:password]@host:port/db`).
    pub url: String,
    /// How long start-up waits for KurrentDB or PostgreSQL before giving up.
    pub connect_timeout_ms: u64,
    /// Embedded and PostgreSQL stores: most events per group commit.
    pub max_batch_events: usize,
    /// PostgreSQL: a PEM file of CA certificates to trust besides the system's (a managed
    /// database's CA bundle), for `sslmode=require` in `store.url`; empty for none.
    pub tls_ca_file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address the HTTP server listens on (GraphQL, integration API, health, metrics).
    pub bind: String,
    /// actix-web worker threads; 0 = one per core.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds a graceful shutdown waits for requests in flight.
    pub shutdown_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 secret that signs and checks bearer tokens.
    pub secret: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// `EnvFilter` directive; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Serve the GraphiQL IDE on `GET /graphql` (dev mode).
    pub graphiql: bool,
    /// Deepest query accepted.
    pub depth_limit: usize,
    /// Most complex query accepted: about the number of field values one query may resolve
    /// (a connection's item selection counts once per item of the requested page).
    pub complexity_limit: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// Seed the demo data set on start when the store is empty.
    pub seed: bool,
}

/// What kind of deployment this is. Only `production` changes anything: it refuses the
/// settings that exist for testing (`clock.test_clock`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Staging,
    Production,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSettings {
    /// `development`, `staging` or `production`.
    pub environment: Environment,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    /// A test clock an ADMIN moves forward through GraphQL (`advanceTestClock`), for staging
    /// QA of holds, pickup expiry and return windows. Refused in production.
    pub test_clock: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub store: StoreSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub graphql: GraphqlSettings,
    pub demo: DemoSettings,
    pub deployment: DeploymentSettings,
    pub clock: ClockSettings,
}

/// The secret used when none is configured; the server warns loudly when it runs with it.
pub const DEV_SECRET: &str = "ichigen-dev-secret-change-me";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            store: StoreSettings {
                backend: Backend::Embedded,
                path: PathBuf::from("./data"),
                url: "esdb://127.0.0.1:2113?tls=false".into(),
                connect_timeout_ms: 5000,
                tls_ca_file: String::new(),
                max_batch_events: 8192,
            },
            http: HttpSettings {
                bind: "127.0.0.1:8080".into(),
                workers: 0,
                max_body_bytes: 16 * 1024 * 1024,
                shutdown_timeout_secs: 10,
            },
            auth: AuthSettings {
                secret: DEV_SECRET.into(),
            },
            log: LogSettings {
                format: "text".into(),
                filter: "info".into(),
            },
            graphql: GraphqlSettings {
                graphiql: true,
                depth_limit: 16,
                complexity_limit: crate::graphql::conventions::DEFAULT_COMPLEXITY_LIMIT,
            },
            demo: DemoSettings { seed: false },
            deployment: DeploymentSettings {
                environment: Environment::Development,
            },
            clock: ClockSettings { test_clock: false },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("bad configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults ← `file` (if given) ← `ICHIGEN__…` environment, then checks the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, env)
    }

    /// [`Settings::load`] with the environment given explicitly (tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let invalid = |e: config::ConfigError| ConfigError::Invalid(e.to_string());
        let defaults = config::Config::try_from(&Settings::default()).map_err(invalid)?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ICHIGEN__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("ICHIGEN")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let settings: Settings = builder
            .build()
            .map_err(invalid)?
            .try_deserialize()
            .map_err(invalid)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The checks [`Settings::load`] makes; `serve` makes them again on settings built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.http.bind.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "http.bind {:?} is not an address like 127.0.0.1:8080",
                self.http.bind
            ));
        }
        if self.auth.secret.len() < 16 {
            return bad("auth.secret must be at least 16 characters".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad(format!(
                "log.format must be \"text\" or \"json\", not {:?}",
                self.log.format
            ));
        }
        if self.store.backend == Backend::Kurrentdb
            && !(self.store.url.starts_with("esdb://")
                || self.store.url.starts_with("esdb+discover://")
                || self.store.url.starts_with("kurrentdb://")
                || self.store.url.starts_with("kurrentdb+discover://"))
        {
            return bad(format!(
                "store.url {:?} must start with esdb:// or kurrentdb://",
                self.store.url
            ));
        }
        if self.store.backend == Backend::Postgres
            && !(self.store.url.starts_with("postgres://")
                || self.store.url.starts_with("postgresql://"))
        {
            return bad(format!(
                "store.url {:?} must be a PostgreSQL URL (postgres://user@host:port/db) when \
                 store.backend is \"postgres\"",
                self.store.url
            ));
        }
        if self.store.max_batch_events == 0 {
            return bad("store.max_batch_events must be at least 1".into());
        }
        if self.graphql.depth_limit == 0 || self.graphql.complexity_limit == 0 {
            return bad("graphql limits must be at least 1".into());
        }
        if self.clock.test_clock && self.deployment.environment == Environment::Production {
            return bad(
                "clock.test_clock cannot be enabled when deployment.environment is \"production\": \
                 a test clock moves every process's time"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> SocketAddr {
        // Checked by validate().
        self.http
            .bind
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.store.backend, Backend::Embedded);
        assert_eq!(s.http.bind, "127.0.0.1:8080");
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let mut file = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
        writeln!(
            file,
            "[http]\nbind = \"127.0.0.1:9999\"\n[store]\npath = \"/tmp/x\""
        )
        .unwrap();
        let s = Settings::load_from(
            Some(file.path()),
            env(&[
                ("ICHIGEN__HTTP__BIND", "127.0.0.1:7777"),
                ("ICHIGEN__STORE__MAX_BATCH_EVENTS", "64"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.bind, "127.0.0.1:7777");
        assert_eq!(s.store.path, PathBuf::from("/tmp/x"));
        assert_eq!(s.store.max_batch_events, 64);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_clear_errors() {
        let err = Settings::load_from(None, env(&[("ICHIGEN__HTTP__BIND", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.bind"), "{err}");
        let err = Settings::load_from(None, env(&[("ICHIGEN__STORE__BACKEND", "postgres")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres"), "{err}");
        let err = Settings::load_from(None, env(&[("ICHIGEN__HTTP__BNID", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnid"), "{err}");
        let err = Settings::load_from(
            None,
            env(&[
                ("ICHIGEN__DEPLOYMENT__ENVIRONMENT", "production"),
                ("ICHIGEN__CLOCK__TEST_CLOCK", "true"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("clock.test_clock"), "{err}");
        let staging = Settings::load_from(
            None,
            env(&[
                ("ICHIGEN__DEPLOYMENT__ENVIRONMENT", "staging"),
                ("ICHIGEN__CLOCK__TEST_CLOCK", "true"),
            ]),
        )
        .unwrap();
        assert!(staging.clock.test_clock);
        let err = Settings::load_from(None, env(&[("ICHIGEN__DEPLOYMENT__ENVIRONMENT", "prod")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prod"), "{err}");
        let err = Settings::load_from(Some(Path::new("/nonexistent.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
