//! Logs, traces and metrics.
//!
//! * Tracing through `tracing`; JSON or text lines, chosen in config.
//! * A correlation id per request ([`CorrelationId`]): taken from the `X-Correlation-Id` header or
//!   made fresh, put on the request's span and copied into every event the request appends.
//! * Prometheus metrics ([`metrics`]), served at `/metrics`.

pub mod metrics;

use uuid::Uuid;

/// The correlation id of the request being served. The HTTP middleware stores it in the
/// request extensions; handlers copy it into event metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorrelationId(pub Uuid);

/// Header carrying the correlation id in and out.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

#[derive(Debug, thiserror::Error)]
#[error("cannot start logging: {0}")]
pub struct TelemetryError(String);

/// Installs the global tracing subscriber. `format` is `text` or `json`; `filter` an
/// `EnvFilter` directive such as `info,ichigen=debug` (`RUST_LOG` overrides it).
pub fn init_tracing(format: &str, filter: &str) -> Result<(), TelemetryError> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .map_err(|e| TelemetryError(format!("bad log filter {filter:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        "json" => builder.json().flatten_event(true).try_init(),
        "text" => builder.try_init(),
        other => {
            return Err(TelemetryError(format!(
                "log.format must be \"text\" or \"json\", not {other:?}"
            )))
        }
    };
    // A second init (tests start several servers in one process) is not an error.
    let _ = result;
    Ok(())
}
