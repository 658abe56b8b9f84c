//! The background tasks a service starts (its process managers, expiry passes): started by the
//! service's own start-up, stopped by its shutdown, so that no process is ever wired — or left
//! running — by hand elsewhere.

use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::JoinHandle;

/// Whether a service's start-up starts its background processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processes {
    /// The service's background processes: a process that serves this service.
    Run,
    /// None: a process that only uses the service in-process (another service's target, a
    /// tool, a benchmark's seeding), while the service's own process runs them.
    None,
}

/// The tasks one service started; cheap to clone (clones share them).
#[derive(Clone, Default)]
pub struct BackgroundTasks(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl BackgroundTasks {
    fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `task` to stop it on [`Self::shutdown`].
    pub fn push(&self, task: JoinHandle<()>) {
        self.tasks().push(task);
    }

    /// Stops every task and waits until each has ended. The processes are idempotent, so one
    /// cut off mid-pass is simply done again by the next start. Call before closing the store.
    pub async fn shutdown(&self) {
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Whether tasks were started and all still run (none, or stopped: `false`).
    pub fn running(&self) -> bool {
        let tasks = self.tasks();
        !tasks.is_empty() && tasks.iter().all(|t| !t.is_finished())
    }
}
