//! The moment a server starts to stop, for what must end then rather than be waited for.
//!
//! A graceful stop waits for the connections in flight, up to `http.shutdown_timeout_secs`.
//! Requests end by themselves; a subscription's WebSocket does not, so it held every stop for
//! the whole timeout. [`Shutdown`] is triggered first (by SIGTERM/SIGINT in `ichigen serve`,
//! or [`crate::serve::RunningServer::stop`]); subscriptions close on it at once, and the HTTP
//! server starts its graceful stop on the same signal.

use std::sync::Arc;
use tokio::sync::watch;

/// A one-way switch: off until [`Shutdown::trigger`], then on for good.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the stop; later calls change nothing.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the stop has started (at once if it has).
    pub fn started(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // The sender lives as long as any clone of this switch; if every clone is gone,
            // nobody can stop us any more and waiting forever is right.
            if rx.wait_for(|on| *on).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); on platforms without SIGTERM, on Ctrl-C only.
pub async fn os_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn started_resolves_once_triggered_for_every_waiter() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn(shutdown.started());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), shutdown.started())
                .await
                .is_err()
        );
        shutdown.clone().trigger();
        assert!(shutdown.is_triggered());
        tokio::time::timeout(Duration::from_secs(1), early)
            .await
            .expect("a waiter from before the trigger")
            .expect("task");
        tokio::time::timeout(Duration::from_secs(1), shutdown.started())
            .await
            .expect("a waiter from after the trigger");
    }
}
