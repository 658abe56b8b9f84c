//! Returns commands: load → decide → append with the loaded revision, again on a conflict
//! ([`ichigen_shared::aggregate::execute`]).
//!
//! - [`PolicyHandlers`]: the one policy stream (`rma-policy`): administrators' commands and
//!   the seeding of the default policy on start ([`PolicyHandlers::ensure_default`]).
//! - [`RmaHandlers`]: one stream per return (`rma-<uuid>`). A request is serialised per order
//!   and told what the order's other returns already take (see [`RmaHandlers::request`]); every
//!   other command runs on its return's stream alone.
//!
//! Every refusal is an [`RmaHandlerError::Refused`] carrying the domain's [`RmaError`], so the
//! API layer maps it by [`RmaHandlerError::code`], [`RmaHandlerError::kind`] and
//! [`RmaHandlerError::field`] without parsing text.

mod policy;
mod rma;

pub use policy::PolicyHandlers;
pub use rma::{rma_id_for, ReturnRequest, RmaHandlers};

use crate::domain::{Policy, PolicyEvent, Rma, RmaError, RmaEvent};
use ichigen_shared::aggregate::{ExecuteError, Executed, FoldError};
use ichigen_shared::store::StoreError;
use uuid::Uuid;

/// What an accepted policy command did: its events (empty for a retry that changed nothing),
/// the policy after them, and the store position they reached (`None` when nothing changed).
pub type PolicyExecuted = Executed<Policy, PolicyEvent>;

/// What an accepted return command did: its events (empty for a retry that changed nothing),
/// the return after them, and the store position they reached (`None` when nothing changed).
pub type RmaExecuted = Executed<Rma, RmaEvent>;

/// Why a returns command failed. Only `Refused` and `NotFound` are the caller's doing; the
/// others are faults or load on our side (the command may be retried as it is).
#[derive(Debug, thiserror::Error)]
pub enum RmaHandlerError {
    /// The domain refused the command; nothing was appended.
    #[error(transparent)]
    Refused(#[from] RmaError),
    /// A command other than a request for a return that does not exist.
    #[error("return {0} does not exist")]
    NotFound(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error("cannot encode an event: {0}")]
    Encode(String),
    /// The stream kept changing under concurrent writers for every retry.
    #[error("stream {0} kept changing under concurrent writers; try again")]
    Contended(String),
}

impl RmaHandlerError {
    /// The domain's refusal, if that is what this is.
    pub fn refusal(&self) -> Option<&RmaError> {
        match self {
            RmaHandlerError::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// One of the shared `ErrorCode` wire values (`INVALID_INPUT`, `NOT_FOUND`, `CONFLICT`,
    /// `INTERNAL`), for `UserError.code` and problem bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RmaHandlerError::Refused(e) => e.code(),
            RmaHandlerError::NotFound(_) => "NOT_FOUND",
            RmaHandlerError::Contended(_) => "CONFLICT",
            RmaHandlerError::Store(_) | RmaHandlerError::Fold(_) | RmaHandlerError::Encode(_) => {
                "INTERNAL"
            }
        }
    }

    /// The finer, stable name of a refusal (`EXCEEDS_RETURNABLE`, …; `RMA_NOT_FOUND`,
    /// `CONTENDED`, `INTERNAL` for the handler's own cases).
    pub fn kind(&self) -> &'static str {
        match self {
            RmaHandlerError::Refused(e) => e.kind(),
            RmaHandlerError::NotFound(_) => RmaError::RmaNotFound.kind(),
            RmaHandlerError::Contended(_) => "CONTENDED",
            RmaHandlerError::Store(_) | RmaHandlerError::Fold(_) | RmaHandlerError::Encode(_) => {
                "INTERNAL"
            }
        }
    }

    /// The input field to blame (camelCase path, see [`crate::domain::error`]), if any.
    pub fn field(&self) -> Option<&str> {
        self.refusal().and_then(RmaError::field)
    }

    /// Maps [`ExecuteError`]; `rma_id` names the return for `NotFound` (`None` on the policy
    /// stream, where the domain never answers "not found" for the stream itself).
    fn from_execute(e: ExecuteError<RmaError>, rma_id: Option<Uuid>) -> Self {
        match (e, rma_id) {
            (ExecuteError::Decide(RmaError::RmaNotFound), Some(id)) => {
                RmaHandlerError::NotFound(id)
            }
            (ExecuteError::Decide(e), _) => RmaHandlerError::Refused(e),
            (ExecuteError::Fold(e), _) => RmaHandlerError::Fold(e),
            (ExecuteError::Store(e), _) => RmaHandlerError::Store(e),
            (ExecuteError::Encode(e), _) => RmaHandlerError::Encode(e),
            (ExecuteError::Contended(stream), _) => RmaHandlerError::Contended(stream),
        }
    }
}
