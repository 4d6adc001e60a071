//! A client's people: list and view colleagues, change their role, rights and channel grants,
//! disable or remove them. Also the rules about whom a manager may change and what they may
//! grant, shared with invitations.

use std::collections::{HashMap, HashSet};

use actix_web::{HttpResponse, web};
use chrono::Utc;
use omnihub_core::access::channel_rights;
use omnihub_core::model::{ChannelGrant, User};
use omnihub_core::{
    ChannelId, ChannelRights, ClientId, GlobalRights, GroupId, Principal, Role, UserId, validate,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageEmployees, ViewOwnClient};
use crate::i18n::{Fields, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/employees", web::get().to(list_employees))
        .route("/employees/{id}", web::get().to(get_employee))
        .route("/employees/{id}", web::patch().to(update_employee))
        .route("/employees/{id}", web::delete().to(remove_employee))
        .route(
            "/employees/{id}/channels",
            web::put().to(set_channel_grants),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_employees,
    get_employee,
    update_employee,
    set_channel_grants,
    remove_employee
))]
pub struct Api;

// --- rules on the target (the route's own right is enforced by the extractor) -------------

/// A role and global rights, before or after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Access {
    pub role: Role,
    pub rights: GlobalRights,
}

/// Whether a caller who already holds `ManageEmployees` may make this change to `target`.
/// These are rules about the target, so they live here rather than in `decide`:
/// - nobody changes their own role, rights or grants, nor disables themselves (409) — so a
///   client never loses its last owner by accident and nobody raises their own rights
///   (`touches_access` is false for a mere rename, which anyone may do to themselves);
/// - only a client owner touches another owner or makes someone an owner (403);
/// - nobody grants a global right they do not hold themselves (403); owners hold them all.
pub(super) fn check_change(
    caller: &Principal,
    target: UserId,
    before: Access,
    after: Access,
    touches_access: bool,
) -> ApiResult<()> {
    if touches_access && target == caller.user_id {
        return Err(ApiError::Conflict(Msg::OwnAccessChange));
    }
    let involves_owner = before.role == Role::ClientOwner || after.role == Role::ClientOwner;
    if involves_owner && caller.role != Role::ClientOwner {
        return Err(ApiError::Forbidden);
    }
    check_global_grant(caller, before.rights, after.rights)
}

/// Rights being added (`after` minus `before`) must all be held by the caller.
pub(super) fn check_global_grant(
    caller: &Principal,
    before: GlobalRights,
    after: GlobalRights,
) -> ApiResult<()> {
    if caller.global.contains(after.difference(before)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Channel rights being added must all be held by the caller on that channel. Taking rights
/// away is always allowed to a manager.
pub(super) fn check_channel_grants(
    caller: &Principal,
    before: &[ChannelGrant],
    after: &[ChannelGrant],
) -> ApiResult<()> {
    let old: HashMap<ChannelId, ChannelRights> =
        before.iter().map(|g| (g.channel_id, g.rights)).collect();
    let exceeds = after.iter().any(|g| {
        let added = g
            .rights
            .difference(old.get(&g.channel_id).copied().unwrap_or_default());
        !channel_rights(caller, g.channel_id).contains(added)
    });
    if exceeds {
        Err(ApiError::Forbidden)
    } else {
        Ok(())
    }
}

/// Rejects a channel named twice or a grant of no rights (omit the channel instead).
pub(super) fn normalize_grants(grants: Vec<ChannelGrant>) -> ApiResult<Vec<ChannelGrant>> {
    let mut seen = HashSet::new();
    for g in &grants {
        if !seen.insert(g.channel_id) {
            return Err(ApiError::Validation(Msg::ChannelListedTwice {
                channel: g.channel_id,
            }));
        }
        if g.rights.is_empty() {
            return Err(ApiError::Validation(Msg::ChannelWithoutRights {
                channel: g.channel_id,
            }));
        }
    }
    Ok(grants)
}

/// 404 unless every granted channel belongs to the client.
pub(super) async fn ensure_channels(
    state: &AppState,
    client: ClientId,
    grants: &[ChannelGrant],
) -> ApiResult<()> {
    if grants.is_empty() {
        return Ok(());
    }
    let own: HashSet<ChannelId> = state
        .store
        .list_channels(client)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if grants.iter().all(|g| own.contains(&g.channel_id)) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The role and rights a patch leaves: owners always hold every right; an employee keeps their
/// rights unless new ones are given, and starts from none when demoted from owner.
fn resolve_access(
    before: Access,
    role: Option<Role>,
    rights: Option<GlobalRights>,
) -> ApiResult<Access> {
    let role = role.unwrap_or(before.role);
    if role == Role::ClientOwner {
        if rights.is_some_and(|r| r != GlobalRights::all()) {
            return Err(ApiError::Validation(Msg::OwnerHoldsEveryRight));
        }
        return Ok(Access {
            role,
            rights: GlobalRights::all(),
        });
    }
    let rights = match rights {
        Some(r) => r,
        None if role != before.role => role.default_global_rights(),
        None => before.rights,
    };
    Ok(Access { role, rights })
}

// --- views --------------------------------------------------------------------------------

/// A user of the client with their groups and delegated channels.
#[derive(Serialize, ToSchema)]
pub struct Employee {
    #[serde(flatten)]
    pub user: User,
    pub group_ids: Vec<GroupId>,
    /// Stored grants; an owner holds every channel fully whatever is stored.
    pub channel_grants: Vec<ChannelGrant>,
}

#[derive(Serialize, ToSchema)]
pub struct EmployeeList {
    pub items: Vec<Employee>,
}

async fn employee(state: &AppState, client: ClientId, id: UserId) -> ApiResult<Employee> {
    let user = state.store.get_client_user(client, id).await?;
    let group_ids = state.store.user_groups(client, id).await?;
    let channel_grants = state.store.channel_grants(client, id).await?;
    Ok(Employee {
        user,
        group_ids,
        channel_grants,
    })
}

/// Owners and employees of the caller's client, oldest first.
#[utoipa::path(get, path = "/api/v1/employees", tag = "employees",
    responses((status = 200, body = EmployeeList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_employees(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<EmployeeList>> {
    let client = caller.client_id()?;
    let users = state.store.list_client_users(client).await?;
    // One query for every membership instead of one per user.
    let mut groups: HashMap<UserId, Vec<GroupId>> = HashMap::new();
    for g in state.store.list_groups(client).await? {
        for m in g.member_ids {
            groups.entry(m).or_default().push(g.id);
        }
    }
    let mut items = Vec::with_capacity(users.len());
    for user in users {
        let channel_grants = state.store.channel_grants(client, user.id).await?;
        let group_ids = groups.remove(&user.id).unwrap_or_default();
        items.push(Employee {
            user,
            group_ids,
            channel_grants,
        });
    }
    Ok(web::Json(EmployeeList { items }))
}

#[utoipa::path(get, path = "/api/v1/employees/{id}", tag = "employees",
    params(("id" = UserId, Path, description = "user id")),
    responses((status = 200, body = Employee), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_employee(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<UserId>,
) -> ApiResult<web::Json<Employee>> {
    Ok(web::Json(
        employee(&state, caller.client_id()?, path.into_inner()).await?,
    ))
}

/// The roles a client's user can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmployeeRole {
    ClientOwner,
    Employee,
}

impl From<EmployeeRole> for Role {
    fn from(r: EmployeeRole) -> Role {
        match r {
            EmployeeRole::ClientOwner => Role::ClientOwner,
            EmployeeRole::Employee => Role::Employee,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployeePatch {
    /// Only a client owner may make someone an owner or change an owner.
    pub role: Option<EmployeeRole>,
    /// Replaces the employee's global rights (owners always hold all).
    pub global_rights: Option<GlobalRights>,
    /// A disabled user cannot sign in; their sessions end at once.
    pub disabled: Option<bool>,
    pub display_name: Option<String>,
}

/// Changes a colleague's role, rights, status or name. Changing role or rights, or disabling,
/// signs them out everywhere.
#[utoipa::path(patch, path = "/api/v1/employees/{id}", tag = "employees", request_body = EmployeePatch,
    params(("id" = UserId, Path, description = "user id")),
    responses((status = 200, body = Employee), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "no right, an owner changed by a non-owner, or a right the caller does not hold", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the caller changed their own access", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_employee(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<UserId>,
    body: web::Json<EmployeePatch>,
) -> ApiResult<web::Json<Employee>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let patch = body.into_inner();
    let name = patch
        .display_name
        .as_deref()
        .map(|n| validate::text("display_name", n, 200))
        .transpose()?;
    let touches_access =
        patch.role.is_some() || patch.global_rights.is_some() || patch.disabled.is_some();
    if !touches_access && name.is_none() {
        return Err(ApiError::Validation(Msg::NothingToChange {
            fields: Fields(&["role", "global_rights", "disabled", "display_name"]),
        }));
    }
    let target = state.store.get_client_user(client, id).await?;
    let before = Access {
        role: target.role,
        rights: target.global_rights,
    };
    let after = resolve_access(before, patch.role.map(Role::from), patch.global_rights)?;
    check_change(&caller.principal, id, before, after, touches_access)?;

    let access_changed = after != before;
    if access_changed {
        state
            .store
            .set_user_rights(client, id, after.role, after.rights)
            .await?;
    }
    if let Some(disabled) = patch.disabled.filter(|d| *d != target.disabled) {
        state.store.set_user_disabled(id, disabled).await?;
    }
    if let Some(name) = &name {
        state
            .store
            .update_user_profile(id, Some(name), None)
            .await?;
    }
    if access_changed || patch.disabled == Some(true) {
        state.store.revoke_user_sessions(id).await?;
    }
    state.auth_cache.invalidate_user(id);
    state
        .audit(caller.audit(
            Some(client),
            "employee.update",
            "user",
            id,
            json!({
                "role": patch.role.map(|_| after.role),
                "global_rights": patch.global_rights.map(|_| after.rights),
                "disabled": patch.disabled,
                "display_name": name,
            }),
        ))
        .await?;
    Ok(web::Json(employee(&state, client, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelGrants {
    /// The complete new set of delegated channels; channels left out are taken away.
    pub grants: Vec<ChannelGrant>,
}

/// Replaces the channels delegated to a colleague. Takes effect at once.
#[utoipa::path(put, path = "/api/v1/employees/{id}/channels", tag = "employees", request_body = ChannelGrants,
    params(("id" = UserId, Path, description = "user id")),
    responses((status = 200, body = Employee), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the user or a channel is not the client's", body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn set_channel_grants(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<UserId>,
    body: web::Json<ChannelGrants>,
) -> ApiResult<web::Json<Employee>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let grants = normalize_grants(body.into_inner().grants)?;
    let target = state.store.get_client_user(client, id).await?;
    let access = Access {
        role: target.role,
        rights: target.global_rights,
    };
    check_change(&caller.principal, id, access, access, true)?;
    let current = state.store.channel_grants(client, id).await?;
    check_channel_grants(&caller.principal, &current, &grants)?;
    ensure_channels(&state, client, &grants).await?;
    state.store.set_channel_grants(client, id, &grants).await?;
    state.auth_cache.invalidate_user(id);
    state
        .audit(caller.audit(
            Some(client),
            "employee.channels_set",
            "user",
            id,
            json!({ "grants": grants }),
        ))
        .await?;
    Ok(web::Json(employee(&state, client, id).await?))
}

/// Removes a colleague: disables the account, ends their sessions and revokes their API tokens.
/// Their history (messages, audit) stays.
#[utoipa::path(delete, path = "/api/v1/employees/{id}", tag = "employees",
    params(("id" = UserId, Path, description = "user id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the caller tried to remove themselves", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn remove_employee(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let target = state.store.get_client_user(client, id).await?;
    let access = Access {
        role: target.role,
        rights: target.global_rights,
    };
    check_change(&caller.principal, id, access, access, true)?;
    state.store.set_user_disabled(id, true).await?;
    state.store.revoke_user_sessions(id).await?;
    let now = Utc::now();
    for token in state.store.list_api_tokens(client).await? {
        if token.user_id == id && token.revoked_at.is_none() {
            state.store.revoke_api_token(client, token.id, now).await?;
        }
    }
    state.auth_cache.invalidate_user(id);
    state
        .audit(caller.audit(
            Some(client),
            "employee.remove",
            "user",
            id,
            json!({ "email": target.email }),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn principal(role: Role, global: GlobalRights) -> Principal {
        Principal {
            user_id: UserId::new(),
            role,
            client_id: Some(ClientId::new()),
            client_active: true,
            global: if role == Role::ClientOwner {
                GlobalRights::all()
            } else {
                global
            },
            channels: HashMap::new(),
            groups: Vec::new(),
        }
    }

    const EMPLOYEE: Access = Access {
        role: Role::Employee,
        rights: GlobalRights::empty(),
    };

    fn owner_access() -> Access {
        Access {
            role: Role::ClientOwner,
            rights: GlobalRights::all(),
        }
    }

    #[test]
    fn nobody_changes_themselves() {
        let owner = principal(Role::ClientOwner, GlobalRights::empty());
        let err = check_change(&owner, owner.user_id, owner_access(), EMPLOYEE, true).unwrap_err();
        assert!(matches!(err, ApiError::Conflict(_)));
        // A rename alone is not a change of access.
        assert!(check_change(&owner, owner.user_id, owner_access(), owner_access(), false).is_ok());
        let manager = principal(Role::Employee, GlobalRights::MANAGE_EMPLOYEES);
        assert!(matches!(
            check_change(
                &manager,
                UserId::new(),
                owner_access(),
                owner_access(),
                false
            ),
            Err(ApiError::Forbidden)
        ));
    }

    #[test]
    fn only_owners_touch_owners() {
        let manager = principal(Role::Employee, GlobalRights::all());
        let owner = principal(Role::ClientOwner, GlobalRights::empty());
        let other = UserId::new();
        assert!(matches!(
            check_change(&manager, other, owner_access(), EMPLOYEE, true),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            check_change(&manager, other, EMPLOYEE, owner_access(), true),
            Err(ApiError::Forbidden)
        ));
        assert!(check_change(&owner, other, owner_access(), EMPLOYEE, true).is_ok());
        assert!(check_change(&owner, other, EMPLOYEE, owner_access(), true).is_ok());
    }

    #[test]
    fn managers_grant_only_what_they_hold() {
        let manager = principal(
            Role::Employee,
            GlobalRights::MANAGE_EMPLOYEES | GlobalRights::ANALYTICS,
        );
        let other = UserId::new();
        let with = |rights| Access {
            role: Role::Employee,
            rights,
        };
        assert!(
            check_change(
                &manager,
                other,
                EMPLOYEE,
                with(GlobalRights::ANALYTICS),
                true
            )
            .is_ok()
        );
        assert!(matches!(
            check_change(&manager, other, EMPLOYEE, with(GlobalRights::BILLING), true),
            Err(ApiError::Forbidden)
        ));
        // Taking away a right the manager lacks, or keeping it, is fine.
        assert!(check_change(&manager, other, with(GlobalRights::BILLING), EMPLOYEE, true).is_ok());
        assert!(
            check_change(
                &manager,
                other,
                with(GlobalRights::BILLING),
                with(GlobalRights::BILLING),
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn channel_grants_are_bounded_by_the_callers_own() {
        let mut manager = principal(Role::Employee, GlobalRights::MANAGE_EMPLOYEES);
        let (a, b) = (ChannelId::new(), ChannelId::new());
        manager
            .channels
            .insert(a, ChannelRights::READ | ChannelRights::REPLY);
        let grant = |channel_id, rights| ChannelGrant { channel_id, rights };
        assert!(check_channel_grants(&manager, &[], &[grant(a, ChannelRights::READ)]).is_ok());
        assert!(check_channel_grants(&manager, &[], &[grant(a, ChannelRights::PUBLISH)]).is_err());
        assert!(check_channel_grants(&manager, &[], &[grant(b, ChannelRights::READ)]).is_err());
        let existing = [grant(b, ChannelRights::full())];
        assert!(
            check_channel_grants(&manager, &existing, &[grant(b, ChannelRights::READ)]).is_ok()
        );
        let owner = principal(Role::ClientOwner, GlobalRights::empty());
        assert!(check_channel_grants(&owner, &[], &[grant(b, ChannelRights::full())]).is_ok());
    }

    #[test]
    fn grants_must_be_distinct_and_non_empty() {
        let c = ChannelId::new();
        let g = |rights| ChannelGrant {
            channel_id: c,
            rights,
        };
        assert!(normalize_grants(vec![g(ChannelRights::READ)]).is_ok());
        assert!(normalize_grants(vec![g(ChannelRights::READ), g(ChannelRights::REPLY)]).is_err());
        assert!(normalize_grants(vec![g(ChannelRights::empty())]).is_err());
    }

    #[test]
    fn patches_resolve_to_consistent_access() {
        let a = GlobalRights::ANALYTICS;
        let emp = Access {
            role: Role::Employee,
            rights: a,
        };
        assert_eq!(resolve_access(emp, None, None).unwrap(), emp);
        assert_eq!(
            resolve_access(emp, Some(Role::ClientOwner), None).unwrap(),
            owner_access()
        );
        assert!(resolve_access(emp, Some(Role::ClientOwner), Some(a)).is_err());
        assert!(resolve_access(owner_access(), None, Some(a)).is_err());
        assert_eq!(
            resolve_access(owner_access(), Some(Role::Employee), None).unwrap(),
            EMPLOYEE
        );
        assert_eq!(
            resolve_access(owner_access(), Some(Role::Employee), Some(a)).unwrap(),
            Access {
                role: Role::Employee,
                rights: a
            }
        );
    }
}
