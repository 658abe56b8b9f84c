//! The policy stream (`rma-policy`): administrators' commands and the default policy.
//!
//! The policy is one small aggregate that changes rarely, so plain optimistic concurrency is
//! enough: two administrators editing at once cost one reload.

use super::{PolicyExecuted, RmaHandlerError};
use crate::domain::{
    decide_policy, default_policy, Policy, PolicyCommand, PolicyEvent, RmaError, POLICY_STREAM,
};
use ichigen_shared::aggregate::{self, fold_stream, Encoding, FoldError, Start};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::DynEventStore;

const ENCODING: Encoding<PolicyEvent> = Encoding {
    event_type: PolicyEvent::event_type,
    payload: PolicyEvent::payload_json,
};

/// The policy's command side. Cheap to clone (a store handle).
///
/// No clock: policy decisions do not depend on time (a reason's window runs from each order
/// line's fulfilment, which the return handlers check).
#[derive(Clone)]
pub struct PolicyHandlers {
    store: DynEventStore,
}

impl PolicyHandlers {
    pub fn new(store: DynEventStore) -> Self {
        PolicyHandlers { store }
    }

    /// The current policy and the revision it reflects (`None`: never defined, every reason
    /// and grade unknown).
    pub async fn load(&self) -> Result<(Policy, Option<u64>), FoldError> {
        fold_stream(
            &self.store,
            POLICY_STREAM,
            PolicyEvent::decode,
            Policy::apply,
        )
        .await
    }

    /// Runs one administrator command. Defining what is already defined (or retiring what is
    /// retired) decides nothing: `events` is empty and `position` is `None`.
    pub async fn execute(
        &self,
        command: PolicyCommand,
        metadata: Metadata,
    ) -> Result<PolicyExecuted, RmaHandlerError> {
        aggregate::execute(
            &self.store,
            POLICY_STREAM,
            PolicyEvent::decode,
            Policy::apply,
            &ENCODING,
            Start::Load,
            &metadata,
            |policy| decide_policy(policy, &command),
        )
        .await
        .map_err(|e| RmaHandlerError::from_execute(e, None))
    }

    /// Seeds [`default_policy`] when the policy stream does not exist yet; does nothing
    /// otherwise (an administrator's later changes are never overwritten on a restart).
    ///
    /// Every default command is decided in turn against the policy as the previous ones left
    /// it, and all the events go in one append expecting no stream: two processes starting at
    /// once cannot both seed. The loser's append fails on the revision, it reloads, finds the
    /// winner's policy and decides nothing (`events` empty).
    pub async fn ensure_default(
        &self,
        metadata: Metadata,
    ) -> Result<PolicyExecuted, RmaHandlerError> {
        let commands = default_policy();
        aggregate::execute(
            &self.store,
            POLICY_STREAM,
            PolicyEvent::decode,
            Policy::apply,
            &ENCODING,
            // The stream exists on every start but the first: read rather than try to append.
            Start::Load,
            &metadata,
            |current| seed(current, &commands),
        )
        .await
        .map_err(|e| RmaHandlerError::from_execute(e, None))
    }
}

/// The events that define `commands` on an empty policy, or none when a policy exists. A
/// policy that exists is never empty (every event defines a code or retires a defined one),
/// so "empty" is "no stream".
fn seed(current: &Policy, commands: &[PolicyCommand]) -> Result<Vec<PolicyEvent>, RmaError> {
    if !current.reasons.is_empty() || !current.grades.is_empty() {
        return Ok(Vec::new());
    }
    let mut running = current.clone();
    let mut events = Vec::new();
    for command in commands {
        for event in decide_policy(&running, command)? {
            running.apply(&event);
            events.push(event);
        }
    }
    Ok(events)
}
