//! Who is calling, what they may do, and the routes about people: `me`, users, groups, API
//! tokens and the audit trail.
//!
//! Every route but the open ones resolves its caller first (`authorize`, a route layer that
//! knows each route's `Access`): an API token (`baton_…`) is found by its hash (one read) and
//! carries its owner's rights; anything else is read as a Google ID token, verified, and its
//! email found among the users (one read), or signed up. Handlers then check what only they
//! can: the groups of the tables a member changes or runs.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, MatchedPath, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use baton_core::access::{
    self, ApiToken, AuditEntry, GROUPS, Group, Principal, TOKENS, TokenView, USERS, User, Via,
};
use baton_core::ids::validate_path_id;
use baton_service::api::{
    AuditResponse, CreateTokenRequest, CreatedToken, GroupView, GroupsResponse, PutGroupRequest,
    TokensResponse, UpdateUserRequest, UsersResponse,
};
use baton_service::http::{ApiError, Body, path_id};
use baton_service::oidc::{self, Refusal, SignIn, Verifier};

use crate::{App, access_of, store_error};

/// How the API knows people: verified Google sign-in, or (locally) nobody.
pub enum Gate {
    Google {
        verifier: Box<Verifier>,
        domains: std::collections::BTreeSet<String>,
    },
    Off,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gate::Google { domains, .. } => {
                f.debug_struct("Google").field("domains", domains).finish()
            }
            Gate::Off => write!(f, "Off"),
        }
    }
}

impl Gate {
    pub fn new(sign_in: &SignIn) -> Self {
        match sign_in {
            SignIn::Google { oidc, domains } => Gate::Google {
                verifier: Box::new(Verifier::new(oidc.clone())),
                domains: domains.clone(),
            },
            SignIn::Off => {
                tracing::warn!("BATON_AUTH_DISABLED: every caller of the API is an admin");
                Gate::Off
            }
        }
    }
}

impl App {
    /// Who the `Authorization` header's value proves the caller is.
    pub(crate) async fn principal(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let (verifier, domains) = match &self.gate {
            Gate::Off => return Ok(Principal::unauthenticated()),
            Gate::Google { verifier, domains } => (verifier, domains),
        };
        let credential = oidc::bearer(authorization)?;
        let now = Timestamp::now();
        if access::is_api_token(credential) {
            return self.token_principal(credential, now).await;
        }
        let identity = verifier.identity(credential).await?;
        if let Some(refusal) = oidc::outside_domains(domains, &identity) {
            return Err(refusal.into());
        }
        let email = access::normalize_email(&identity.email)
            .map_err(|e| ApiError::from(Refusal::Unauthenticated(e.0)))?;
        let (user, new) = self.store.sign_up(&email, now).await.map_err(store_error)?;
        let principal = Principal::of(&user, Via::SignIn);
        if new {
            tracing::info!(user = %email, role = %user.role, enabled = user.enabled, "signed up");
            self.record(
                &principal,
                "user.sign_up",
                &email,
                None,
                Some(access::digest(&user)),
                serde_json::json!({ "role": user.role, "enabled": user.enabled }),
            )
            .await;
        }
        Ok(principal)
    }

    async fn token_principal(&self, secret: &str, now: Timestamp) -> Result<Principal, ApiError> {
        let unauthenticated = |m: String| ApiError::from(Refusal::Unauthenticated(m));
        let hash = access::token_hash(secret);
        let token = self
            .store
            .token(&hash)
            .await
            .map_err(store_error)?
            .ok_or_else(|| unauthenticated("the API token is not known".into()))?;
        if let Some(reason) = token.unusable(now) {
            return Err(unauthenticated(reason));
        }
        let user: User = self
            .store
            .get(None, USERS, &token.owner)
            .await
            .map_err(store_error)?
            .ok_or_else(|| unauthenticated(format!("the token's owner {} is gone", token.owner)))?;
        if token.use_worth_recording(now) {
            // At most once a minute; in a transaction, so that a revocation is never undone.
            let recorded = self
                .store
                .modify(TOKENS, &hash, |t: &ApiToken| {
                    t.use_worth_recording(now).then(|| ApiToken {
                        last_used_at: Some(now),
                        ..t.clone()
                    })
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(token = %token.id, error = %e, "the token's last use could not be recorded");
            }
        }
        Ok(Principal::of(
            &user,
            Via::Token {
                id: token.id.clone(),
                name: token.name.clone(),
            },
        ))
    }

    /// Keeps a change in the audit trail after it was made (runs, backfills, catalog applies,
    /// sign-ups, whose writes are the store's own). A failure to keep it is logged as an error,
    /// not answered: the change stands.
    pub(crate) async fn record(
        &self,
        who: &Principal,
        action: &str,
        target: &str,
        before: Option<String>,
        after: Option<String>,
        summary: serde_json::Value,
    ) {
        let entry = entry(who, action, target, before, after, summary);
        if let Err(e) = self.store.audit(&entry).await {
            tracing::error!(action, target, error = %e, "the audit trail could not keep a change");
        }
    }
}

/// An audit entry of a change `who` makes now.
pub(crate) fn entry(
    who: &Principal,
    action: &str,
    target: &str,
    before: Option<String>,
    after: Option<String>,
    summary: serde_json::Value,
) -> AuditEntry {
    let at = Timestamp::now();
    AuditEntry {
        schema_version: access::SCHEMA_VERSION,
        id: access::audit_id(at, rand::random()),
        at,
        actor: who.email.clone(),
        via: who.via.clone(),
        action: action.to_string(),
        target: target.to_string(),
        before,
        after,
        summary,
    }
}

/// Resolves the caller of every route that is not open, and refuses those whose role the
/// route does not admit; the handler finds the `Principal` in its extensions.
pub async fn authorize(
    State(app): State<Arc<App>>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", |m| m.as_str());
    let access = access_of(request.method(), path);
    if access == access::Access::Open {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // The page's requests come from a browser, signed in by its cookie; the cookie opens
    // nothing else, and a request that says who it is otherwise is judged by that.
    let page_session = if authorization.is_none() && crate::page::is_page(path) {
        crate::page::session_secret(request.headers())
    } else {
        None
    };
    let proven = match (&app.gate, page_session) {
        (Gate::Google { .. }, Some(secret)) => app.page_principal(&secret).await,
        _ => app.principal(authorization).await,
    };
    let principal = match proven {
        Ok(principal) => principal,
        Err(error) => {
            tracing::warn!(path, reason = %error.message, "call refused");
            return error.into_response();
        }
    };
    if let Some(reason) = principal.refusal(access) {
        tracing::warn!(path, user = %principal.email, reason, "call refused");
        return ApiError::new(StatusCode::FORBIDDEN, "permission_denied", reason).into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// A member's refusal to change or run tables of other groups, naming them.
pub fn not_theirs(principal: &Principal, what: &str, refused: Vec<String>) -> Result<(), ApiError> {
    if refused.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_denied",
        format!(
            "{} may not {what} {} table{} of other groups: {}",
            principal.email,
            refused.len(),
            if refused.len() == 1 { "" } else { "s" },
            refused.join(", ")
        ),
    )
    .with_details(serde_json::json!({ "tables": refused })))
}

/// `GET /v1/me`: who the caller is, with their role and groups.
pub async fn me(Extension(principal): Extension<Principal>) -> Json<Principal> {
    Json(principal)
}

pub async fn list_users(State(app): State<Arc<App>>) -> Result<Json<UsersResponse>, ApiError> {
    let mut users: Vec<User> = app.store.list(None, USERS).await.map_err(store_error)?;
    users.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(Json(UsersResponse { users }))
}

/// `PATCH /v1/users/{email}`: enables, disables, changes a role or the groups. The last
/// enabled admin cannot stop being one.
pub async fn update_user(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(email): Path<String>,
    Body(request): Body<UpdateUserRequest>,
) -> Result<Json<User>, ApiError> {
    path_id("user", &email)?;
    let email = access::normalize_email(&email).map_err(|e| ApiError::bad_request(e.0))?;
    let named = request.groups.iter().flatten().chain(&request.add_groups);
    {
        for group in named {
            access::validate_group_name(group).map_err(|e| ApiError::bad_request(e.0))?;
            let known: Option<Group> = app
                .store
                .get(None, GROUPS, group)
                .await
                .map_err(store_error)?;
            if known.is_none() {
                return Err(ApiError::not_found(format!(
                    "no group {group}: create it first (`baton groups create {group}`)"
                )));
            }
        }
    }
    let before: User = app
        .store
        .get(None, USERS, &email)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no user {email}: they sign in first")))?;
    let demoted = before.role == access::Role::Admin
        && before.enabled
        && (request.enabled == Some(false)
            || request.role.is_some_and(|r| r != access::Role::Admin));
    if demoted {
        let users: Vec<User> = app.store.list(None, USERS).await.map_err(store_error)?;
        let admins = users
            .iter()
            .filter(|u| u.enabled && u.role == access::Role::Admin)
            .count();
        if admins <= 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{email} is the last enabled admin: make another admin first"),
            ));
        }
    }
    let now = Timestamp::now();
    let summary = serde_json::to_value(&request).unwrap_or_default();
    let (after, _) = app
        .store
        .modify_audited(
            USERS,
            &email,
            |u: &User| {
                Some(User {
                    enabled: request.enabled.unwrap_or(u.enabled),
                    role: request.role.unwrap_or(u.role),
                    groups: {
                        let mut groups = request.groups.clone().unwrap_or_else(|| u.groups.clone());
                        groups.extend(request.add_groups.iter().cloned());
                        for group in &request.remove_groups {
                            groups.remove(group);
                        }
                        groups
                    },
                    updated_at: now,
                    ..u.clone()
                })
            },
            |before, after| {
                entry(
                    &principal,
                    "user.update",
                    &email,
                    Some(access::digest(before)),
                    Some(access::digest(after)),
                    summary.clone(),
                )
            },
        )
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no user {email}")))?;
    Ok(Json(after))
}

pub async fn list_groups(State(app): State<Arc<App>>) -> Result<Json<GroupsResponse>, ApiError> {
    let stored: Vec<Group> = app.store.list(None, GROUPS).await.map_err(store_error)?;
    let users: Vec<User> = app.store.list(None, USERS).await.map_err(store_error)?;
    let mut groups: Vec<GroupView> = stored
        .into_iter()
        .map(|g| GroupView {
            members: users
                .iter()
                .filter(|u| u.groups.contains(&g.name))
                .map(|u| u.email.clone())
                .collect(),
            name: g.name,
            description: g.description,
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(GroupsResponse { groups }))
}

pub async fn put_group(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Body(request): Body<PutGroupRequest>,
) -> Result<Json<Group>, ApiError> {
    access::validate_group_name(&name).map_err(|e| ApiError::bad_request(e.0))?;
    let before: Option<Group> = app
        .store
        .get(None, GROUPS, &name)
        .await
        .map_err(store_error)?;
    let group = Group {
        schema_version: access::SCHEMA_VERSION,
        name: name.clone(),
        description: request.description,
        created_at: before
            .as_ref()
            .map_or_else(Timestamp::now, |g| g.created_at),
    };
    let entry = entry(
        &principal,
        "group.put",
        &name,
        before.as_ref().map(access::digest),
        Some(access::digest(&group)),
        serde_json::Value::Null,
    );
    app.store
        .change_audited(GROUPS, &name, Some(&group), &entry)
        .await
        .map_err(store_error)?;
    Ok(Json(group))
}

/// Deletes a group that no user is in.
pub async fn delete_group(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    access::validate_group_name(&name).map_err(|e| ApiError::bad_request(e.0))?;
    let before: Group = app
        .store
        .get(None, GROUPS, &name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no group {name}")))?;
    let users: Vec<User> = app.store.list(None, USERS).await.map_err(store_error)?;
    let members: Vec<&str> = users
        .iter()
        .filter(|u| u.groups.contains(&name))
        .map(|u| u.email.as_str())
        .collect();
    if !members.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("group {name} still has members: {}", members.join(", ")),
        ));
    }
    let entry = entry(
        &principal,
        "group.delete",
        &name,
        Some(access::digest(&before)),
        None,
        serde_json::Value::Null,
    );
    app.store
        .change_audited::<Group>(GROUPS, &name, None, &entry)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The most days a token may be asked to live.
const MAX_TOKEN_DAYS: u32 = 3650;

/// `POST /v1/tokens`: a new token of the caller's, shown this once.
pub async fn create_token(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Body(request): Body<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    if principal.via == Via::Unauthenticated {
        return Err(ApiError::bad_request(
            "authentication is off (BATON_AUTH_DISABLED): there is nobody to own a token",
        ));
    }
    let name = request.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("a token's name has 1 to 100 bytes"));
    }
    let now = Timestamp::now();
    let expires_at = match request.expires_in_days {
        Some(0) => return Err(ApiError::bad_request("`expires_in_days` is at least 1")),
        Some(days) if days > MAX_TOKEN_DAYS => {
            return Err(ApiError::bad_request(format!(
                "`expires_in_days` is at most {MAX_TOKEN_DAYS}"
            )));
        }
        Some(days) => Some(now + jiff::SignedDuration::from_hours(24 * i64::from(days))),
        None => None,
    };
    let secret = access::token_from_bytes(&rand::random());
    let token = ApiToken::new(&secret, name, &principal.email, expires_at, now);
    let entry = entry(
        &principal,
        "token.create",
        &token.id,
        None,
        Some(access::digest(&TokenView::from(&token))),
        serde_json::json!({ "name": token.name, "expires_at": token.expires_at }),
    );
    app.store
        .change_audited(TOKENS, &token.hash, Some(&token), &entry)
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: secret,
            info: TokenView::from(&token),
        }),
    ))
}

/// `GET /v1/tokens`: the caller's tokens; an admin's list has everyone's.
pub async fn list_tokens(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<TokensResponse>, ApiError> {
    let owner = (!principal.is_admin()).then_some(principal.email.as_str());
    let stored = app.store.tokens(owner).await.map_err(store_error)?;
    let mut tokens: Vec<TokenView> = stored.iter().map(TokenView::from).collect();
    tokens.sort_by(|a, b| (&a.owner, a.created_at).cmp(&(&b.owner, b.created_at)));
    Ok(Json(TokensResponse { tokens }))
}

/// `DELETE /v1/tokens/{id}`: revokes one of the caller's tokens (an admin: anyone's). The
/// token's record stays, revoked, for the audit trail.
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    path_id("token", &id)?;
    let token = app
        .store
        .token_by_id(&id)
        .await
        .map_err(store_error)?
        .filter(|t| principal.is_admin() || t.owner == principal.email)
        .ok_or_else(|| ApiError::not_found(format!("no token {id} of yours")))?;
    let now = Timestamp::now();
    let (revoked, _) = app
        .store
        .modify_audited(
            TOKENS,
            &token.hash,
            |t: &ApiToken| {
                t.revoked_at.is_none().then(|| ApiToken {
                    revoked_at: Some(now),
                    ..t.clone()
                })
            },
            |before, after| {
                entry(
                    &principal,
                    "token.revoke",
                    &id,
                    Some(access::digest(&TokenView::from(before))),
                    Some(access::digest(&TokenView::from(after))),
                    serde_json::json!({ "name": before.name, "owner": before.owner }),
                )
            },
        )
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    Ok(Json(TokenView::from(&revoked)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<String>,
}

/// `GET /v1/audit`: the latest changes, newest first.
pub async fn list_audit(
    State(app): State<Arc<App>>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditResponse>, ApiError> {
    if let Some(before) = &query.before {
        validate_path_id("audit entry", before).map_err(ApiError::bad_request)?;
    }
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let entries = app
        .store
        .recent_audit(limit, query.before.as_deref())
        .await
        .map_err(store_error)?;
    Ok(Json(AuditResponse { entries }))
}
