//! Bearer tokens: HS256 JWTs that say who the caller is (design.md, "Every actor is
//! authenticated and scoped").
//!
//! A token carries exactly one role, a subject and — for store staff only — the one store its
//! holder acts for. The gateway turns a token into an [`Actor`]; everything downstream (GraphQL
//! guards, command handlers, event metadata) works with that actor and never sees the token.
//!
//! Claims: `sub`, `role` (`STORE_STAFF`, …), `storeId` (STORE_STAFF only), `iat`, `exp`.
//!
//! The same rules are checked when minting and when verifying, so that a token this module
//! refuses to accept is also one it refuses to issue. `SYSTEM` and `ANONYMOUS` are never carried
//! by a token: the system acts in-process, and anonymity is the absence of a token.

use super::{Actor, Role};
use chrono::{Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Clock skew tolerated on `exp` and `iat`, in seconds. Tokens are minted and checked by hosts
/// that may disagree on the time by a little; more than this is a broken clock, not skew.
pub const LEEWAY_SECS: u64 = 30;

/// Why a token or an `Authorization` header was refused (or why a token could not be minted).
///
/// Every variant means "not authenticated": the gateway answers all of them with the
/// `UNAUTHENTICATED` error code, and the message says which rule failed so that an integrator
/// can fix their client without reading our source.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("the bearer token is malformed: {0}")]
    Malformed(String),
    #[error(
        "the bearer token's signature does not match: it was altered or signed with another secret"
    )]
    BadSignature,
    #[error("the bearer token has expired; obtain a new one")]
    Expired,
    #[error("the bearer token was issued in the future; check the issuing host's clock")]
    IssuedInFuture,
    #[error("the bearer token carries an unknown role {0:?}")]
    UnknownRole(String),
    #[error("role {0} cannot be carried by a token")]
    ForbiddenRole(Role),
    #[error("a STORE_STAFF token must carry the storeId of the store its holder acts for")]
    MissingStore,
    #[error("only STORE_STAFF tokens carry a storeId; a {0} token must not")]
    UnexpectedStore(Role),
    #[error("the bearer token must name its subject (`sub`)")]
    EmptySubject,
    #[error("a token's lifetime must be positive")]
    InvalidTtl,
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// The claims of an Ichigen token, as they travel.
///
/// `role` is text rather than [`Role`] so that an unknown role is reported as such instead of
/// as a generic decoding failure.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    #[serde(rename = "storeId", default, skip_serializing_if = "Option::is_none")]
    store_id: Option<String>,
    iat: i64,
    exp: i64,
}

/// Mints and verifies HS256 tokens with one shared secret.
///
/// The secret should be long and random (32 bytes or more): anyone who knows it can mint an
/// ADMIN token. Choosing and guarding it is the configuration's job; this type only uses it.
#[derive(Clone)]
pub struct JwtAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// Never prints the secret.
impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth").finish_non_exhaustive()
    }
}

impl JwtAuth {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtAuth {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Issues a token valid for `ttl` from now. Refuses what [`JwtAuth::verify`] would refuse,
    /// so that a bad token is caught when it is made rather than when it is first used.
    pub fn mint(
        &self,
        role: Role,
        subject: &str,
        store_id: Option<&str>,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        if ttl <= Duration::zero() {
            return Err(AuthError::InvalidTtl);
        }
        check_claims(role, subject, store_id)?;
        let now = Utc::now();
        let exp = now.checked_add_signed(ttl).ok_or(AuthError::InvalidTtl)?;
        self.sign(&Claims {
            sub: subject.to_string(),
            role: role.as_str().to_string(),
            store_id: store_id.map(str::to_string),
            iat: now.timestamp(),
            exp: exp.timestamp(),
        })
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// Checks the signature, the expiry and the claim rules, and returns who the token speaks
    /// for.
    pub fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidAlgorithm => {
                    AuthError::Malformed("only HS256-signed tokens are accepted".into())
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    AuthError::Malformed(format!("the `{claim}` claim is missing"))
                }
                _ => AuthError::Malformed(e.to_string()),
            })?;
        let claims = data.claims;
        if claims.iat > Utc::now().timestamp().saturating_add(LEEWAY_SECS as i64) {
            return Err(AuthError::IssuedInFuture);
        }
        let role: Role = claims
            .role
            .parse()
            .map_err(|_| AuthError::UnknownRole(claims.role.clone()))?;
        check_claims(role, &claims.sub, claims.store_id.as_deref())?;
        Ok(Actor {
            role,
            subject: claims.sub,
            store_id: claims.store_id,
        })
    }

    /// The actor of a request, from its `Authorization` header: none means anonymous (public
    /// reads only); a header that is present but wrong is an error, never a silent downgrade
    /// to anonymous, so that a client with a broken token finds out at once.
    pub fn actor_from_authorization(&self, header: Option<&str>) -> Result<Actor, AuthError> {
        let Some(header) = header else {
            return Ok(Actor::anonymous());
        };
        let header = header.trim();
        // The auth scheme is case-insensitive (RFC 7235 §2.1).
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::NotBearer),
        };
        if token.is_empty() {
            return Err(AuthError::Malformed(
                "the token after `Bearer` is empty".into(),
            ));
        }
        self.verify(token)
    }
}

/// The rules a token's claims obey, whether minted here or presented by a client.
fn check_claims(role: Role, subject: &str, store_id: Option<&str>) -> Result<(), AuthError> {
    if matches!(role, Role::System | Role::Anonymous) {
        return Err(AuthError::ForbiddenRole(role));
    }
    if subject.trim().is_empty() {
        return Err(AuthError::EmptySubject);
    }
    match (role, store_id) {
        (Role::StoreStaff, Some(store)) if !store.trim().is_empty() => Ok(()),
        (Role::StoreStaff, _) => Err(AuthError::MissingStore),
        (_, Some(_)) => Err(AuthError::UnexpectedStore(role)),
        (_, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

    fn auth() -> JwtAuth {
        JwtAuth::new(SECRET)
    }

    fn hour() -> Duration {
        Duration::hours(1)
    }

    #[test]
    fn every_token_role_round_trips() {
        let auth = auth();
        for role in [
            Role::Customer,
            Role::CsAgent,
            Role::WmsIntegration,
            Role::Admin,
        ] {
            let token = auth.mint(role, "who-1", None, hour()).unwrap();
            assert_eq!(
                auth.verify(&token).unwrap(),
                Actor {
                    role,
                    subject: "who-1".into(),
                    store_id: None
                }
            );
        }
        let token = auth
            .mint(Role::StoreStaff, "u-7", Some("STORE-07"), hour())
            .unwrap();
        assert_eq!(
            auth.verify(&token).unwrap(),
            Actor {
                role: Role::StoreStaff,
                subject: "u-7".into(),
                store_id: Some("STORE-07".into())
            }
        );
    }

    #[test]
    fn claims_use_the_documented_names() {
        let auth = auth();
        let token = auth
            .mint(Role::StoreStaff, "u-7", Some("S1"), hour())
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["role"], "STORE_STAFF");
        assert_eq!(json["storeId"], "S1");
        assert_eq!(json["sub"], "u-7");
        assert!(json["exp"].as_i64().unwrap() > json["iat"].as_i64().unwrap());
    }

    #[test]
    fn system_and_anonymous_cannot_be_minted_or_accepted() {
        let auth = auth();
        for role in [Role::System, Role::Anonymous] {
            assert_eq!(
                auth.mint(role, "x", None, hour()),
                Err(AuthError::ForbiddenRole(role))
            );
            let now = Utc::now().timestamp();
            let forged = auth
                .sign(&Claims {
                    sub: "x".into(),
                    role: role.as_str().into(),
                    store_id: None,
                    iat: now,
                    exp: now + 3600,
                })
                .unwrap();
            assert_eq!(auth.verify(&forged), Err(AuthError::ForbiddenRole(role)));
        }
    }

    #[test]
    fn expired_tokens_are_refused() {
        let auth = auth();
        let now = Utc::now().timestamp();
        let token = auth
            .sign(&Claims {
                sub: "c-1".into(),
                role: "CUSTOMER".into(),
                store_id: None,
                iat: now - 7200,
                exp: now - 2 * LEEWAY_SECS as i64,
            })
            .unwrap();
        assert_eq!(auth.verify(&token), Err(AuthError::Expired));
        assert_eq!(
            auth.mint(Role::Customer, "c-1", None, Duration::seconds(-5)),
            Err(AuthError::InvalidTtl)
        );
    }

    #[test]
    fn tokens_from_the_future_are_refused() {
        let auth = auth();
        let now = Utc::now().timestamp();
        let token = auth
            .sign(&Claims {
                sub: "c-1".into(),
                role: "CUSTOMER".into(),
                store_id: None,
                iat: now + 3600,
                exp: now + 7200,
            })
            .unwrap();
        assert_eq!(auth.verify(&token), Err(AuthError::IssuedInFuture));
    }

    #[test]
    fn another_secret_does_not_verify() {
        let token = JwtAuth::new("some-other-secret")
            .mint(Role::Admin, "root", None, hour())
            .unwrap();
        assert_eq!(auth().verify(&token), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let auth = auth();
        let token = auth.mint(Role::Customer, "c-1", None, hour()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = "ADMIN".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            engine.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert_eq!(auth.verify(&forged), Err(AuthError::BadSignature));
        assert!(matches!(
            auth.verify("not-a-token"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = Utc::now().timestamp();
        let header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = engine.encode(
            serde_json::json!({"sub": "x", "role": "ADMIN", "iat": now, "exp": now + 60})
                .to_string(),
        );
        assert!(matches!(
            auth().verify(&format!("{header}.{claims}.")),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn staff_need_exactly_one_store_and_others_none() {
        let auth = auth();
        assert_eq!(
            auth.mint(Role::StoreStaff, "u-7", None, hour()),
            Err(AuthError::MissingStore)
        );
        assert_eq!(
            auth.mint(Role::StoreStaff, "u-7", Some(" "), hour()),
            Err(AuthError::MissingStore)
        );
        assert_eq!(
            auth.mint(Role::Customer, "c-1", Some("S1"), hour()),
            Err(AuthError::UnexpectedStore(Role::Customer))
        );
        let now = Utc::now().timestamp();
        let staff_without_store = auth
            .sign(&Claims {
                sub: "u-7".into(),
                role: "STORE_STAFF".into(),
                store_id: None,
                iat: now,
                exp: now + 60,
            })
            .unwrap();
        assert_eq!(
            auth.verify(&staff_without_store),
            Err(AuthError::MissingStore)
        );
    }

    #[test]
    fn unknown_roles_and_empty_subjects_are_refused() {
        let auth = auth();
        let now = Utc::now().timestamp();
        let token = auth
            .sign(&Claims {
                sub: "x".into(),
                role: "ROOT".into(),
                store_id: None,
                iat: now,
                exp: now + 60,
            })
            .unwrap();
        assert_eq!(
            auth.verify(&token),
            Err(AuthError::UnknownRole("ROOT".into()))
        );
        assert_eq!(
            auth.mint(Role::Admin, "", None, hour()),
            Err(AuthError::EmptySubject)
        );
    }

    #[test]
    fn authorization_header_forms() {
        let auth = auth();
        assert_eq!(
            auth.actor_from_authorization(None).unwrap(),
            Actor::anonymous()
        );
        let token = auth.mint(Role::CsAgent, "agent-3", None, hour()).unwrap();
        for header in [format!("Bearer {token}"), format!("bearer  {token} ")] {
            assert_eq!(
                auth.actor_from_authorization(Some(&header)).unwrap().role,
                Role::CsAgent
            );
        }
        assert_eq!(
            auth.actor_from_authorization(Some(&format!("Basic {token}"))),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            auth.actor_from_authorization(Some(&token)),
            Err(AuthError::NotBearer)
        );
        assert!(matches!(
            auth.actor_from_authorization(Some("Bearer ")),
            Err(AuthError::NotBearer | AuthError::Malformed(_))
        ));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        assert!(!format!("{:?}", auth()).contains(SECRET));
    }
}
