//! What every integration API (the inventory WMS API, the order service's PIM API) shares:
//! RFC 9457 problem bodies ([`problem`]), the request checks that come before anything runs
//! ([`request`]: credentials, `Idempotency-Key`, body limits, bulk lines), `Idempotency-Key`
//! replay stored in the event store ([`idempotency`]), and bulk execution and answers
//! ([`bulk`]).
//!
//! What stays with each API: its routes and bodies, the stream category and event type names
//! of its key streams ([`idempotency::KeyStreams`]), and how it recovers an abandoned request
//! (the closure given to [`idempotency::KeyStreams::run`]).

pub mod bulk;
pub mod idempotency;
pub mod problem;
pub mod request;
pub mod testing;

pub use problem::{Answer, LineError, Problem, Refusal};
pub use request::Caller;
