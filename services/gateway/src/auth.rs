//! Bearer tokens: the HS256 JWTs live in `ichigen_shared::auth::jwt`, because every service's
//! HTTP API (the WMS integration API among them) verifies them, not only the gateway.

pub use ichigen_shared::auth::jwt::*;
