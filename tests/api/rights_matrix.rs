//! The rights matrix: every operation of the OpenAPI document × every role × own client,
//! another client and a nonexistent id → the expected status. A route without a row here fails
//! the test, so a new route cannot ship without deciding who may call it.
//!
//! Another client's ids answer exactly as a nonexistent id does: 404 `not_found` for a caller
//! who may perform the operation on their own client, and otherwise the same refusal the caller
//! gets for their own ids (the refusal cannot depend on the id, so it tells nothing). No answer
//! to anyone but platform staff contains the other client's names, addresses or ids, and no
//! answer to anyone contains a channel's stored credentials.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use actix_web::http::Method;
use omnihub_core::model::{ClientStatus, Conversation, Message};
use omnihub_core::{GlobalRights, Role as UserRole};
use omnihub_store::{InboundEvent, Ingest};
use serde_json::{Value, json};

use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Anon,
    PlatformOwner,
    Moderator,
    Owner,
    /// Employee without any rights.
    Plain,
    /// Employee with manage-employees, manage-settings, analytics and scheduling.
    Manager,
    /// API token of an employee with the manager's rights.
    Token,
}

const ROLES: [Role; 7] = [
    Role::Anon,
    Role::PlatformOwner,
    Role::Moderator,
    Role::Owner,
    Role::Plain,
    Role::Manager,
    Role::Token,
];

impl Role {
    fn short(self) -> &'static str {
        match self {
            Role::Anon => "anon",
            Role::PlatformOwner => "p.owner",
            Role::Moderator => "p.mod",
            Role::Owner => "owner",
            Role::Plain => "emp",
            Role::Manager => "emp+R",
            Role::Token => "token",
        }
    }

    fn is_staff(self) -> bool {
        matches!(self, Role::PlatformOwner | Role::Moderator)
    }
}

/// Which ids the path carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// No tenant ids (or a fixed one, e.g. an invitation link).
    Fixed,
    /// Ids of the caller's own client (client `alpha`).
    Own,
    /// Ids of the other client (`bravo`).
    Other,
    /// A well-formed id nobody has.
    Missing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Public or own-account routes.
    Open,
    /// Platform routes: staff see every client, so "other client" is no different from own.
    Platform,
    /// Client-scoped routes: another client's ids do not exist for the caller.
    Client,
}

struct Row {
    method: &'static str,
    path: &'static str,
    kind: Kind,
    /// Status for [anon, platform owner, moderator, owner, employee, employee with rights,
    /// API token] with the caller's own ids.
    expect: [u16; 7],
}

const fn row(method: &'static str, path: &'static str, kind: Kind, expect: [u16; 7]) -> Row {
    Row {
        method,
        path,
        kind,
        expect,
    }
}

use Kind::{Client, Open, Platform};

//                 anon  p.own p.mod owner  emp  emp+R token
const ALL_200: [u16; 7] = [200, 200, 200, 200, 200, 200, 200];
const SIGNED_IN_200: [u16; 7] = [401, 200, 200, 200, 200, 200, 200];
const SIGNED_IN_204: [u16; 7] = [401, 204, 204, 204, 204, 204, 204];
const STAFF_200: [u16; 7] = [401, 200, 200, 403, 403, 403, 403];
const PLATFORM_OWNER_ONLY: [u16; 7] = [401, 200, 403, 403, 403, 403, 403];
const MEMBERS_200: [u16; 7] = [401, 403, 403, 200, 200, 200, 200];
const MANAGERS_200: [u16; 7] = [401, 403, 403, 200, 403, 200, 200];
const MANAGERS_201: [u16; 7] = [401, 403, 403, 201, 403, 201, 201];
const MANAGERS_204: [u16; 7] = [401, 403, 403, 204, 403, 204, 204];
/// Conversation-scoped: only the owner sees the seeded conversation (no employee of the
/// matrix has its channel delegated), so for everyone else it does not exist.
const OWNER_SEES_200: [u16; 7] = [401, 403, 403, 200, 404, 404, 404];
const OWNER_SEES_201: [u16; 7] = [401, 403, 403, 201, 404, 404, 404];
const OWNER_SEES_204: [u16; 7] = [401, 403, 403, 204, 404, 404, 404];
/// The matrix's clients connect no telephony: the owner reaches the conversation and is told
/// so (409), everyone else is refused as for any conversation.
const OWNER_SEES_409: [u16; 7] = [401, 403, 403, 409, 404, 404, 404];
/// A network that refuses what was asked (422 `unsupported_by_network`: Google+).
const MANAGERS_422: [u16; 7] = [401, 403, 403, 422, 403, 422, 422];
/// A profile whose stored credentials cannot reach its network (400, in the network's terms),
/// once the record is reached.
const OWNER_SEES_400: [u16; 7] = [401, 403, 403, 400, 404, 404, 404];
/// A grant that is not the caller's (or anyone's): refused as invalid (400) by those who may
/// connect profiles.
const MANAGERS_400: [u16; 7] = [401, 403, 403, 400, 403, 400, 400];
/// Scheduled for the scheduler to carry out.
const OWNER_SEES_202: [u16; 7] = [401, 403, 403, 202, 404, 404, 404];

const ROWS: &[Row] = &[
    // system
    row("GET", "/healthz", Open, ALL_200),
    row("GET", "/readyz", Open, ALL_200),
    row("GET", "/metrics", Open, ALL_200),
    row("GET", "/api/v1/openapi.json", Open, ALL_200),
    // sign-in and own account (anon signs in with an unknown address; others with their own)
    row(
        "POST",
        "/api/v1/auth/login",
        Open,
        [401, 200, 200, 200, 200, 200, 200],
    ),
    row("POST", "/api/v1/auth/logout", Open, SIGNED_IN_204),
    row("GET", "/api/v1/auth/me", Open, SIGNED_IN_200),
    row("GET", "/api/v1/auth/profile", Open, SIGNED_IN_200),
    row("PATCH", "/api/v1/auth/profile", Open, SIGNED_IN_200),
    row("POST", "/api/v1/auth/password", Open, SIGNED_IN_204),
    row("POST", "/api/v1/auth/password-reset", Open, [202; 7]),
    row(
        "POST",
        "/api/v1/auth/password-reset/confirm",
        Open,
        [410; 7],
    ),
    row("POST", "/api/v1/auth/totp/setup", Open, SIGNED_IN_200),
    row("POST", "/api/v1/auth/totp/enable", Open, SIGNED_IN_204),
    row("POST", "/api/v1/auth/totp/disable", Open, SIGNED_IN_204),
    row("GET", "/api/v1/auth/invites/{token}", Open, ALL_200),
    row("POST", "/api/v1/auth/invites/accept", Open, [410; 7]),
    // platform
    row("GET", "/api/v1/platform/clients", Platform, STAFF_200),
    row(
        "POST",
        "/api/v1/platform/clients",
        Platform,
        [401, 201, 403, 403, 403, 403, 403],
    ),
    row("GET", "/api/v1/platform/clients/{id}", Platform, STAFF_200),
    row("GET", "/api/v1/platform/hub", Platform, STAFF_200),
    row(
        "POST",
        "/api/v1/platform/clients/{id}/block",
        Platform,
        STAFF_200,
    ),
    row(
        "POST",
        "/api/v1/platform/clients/{id}/unblock",
        Platform,
        STAFF_200,
    ),
    row(
        "GET",
        "/api/v1/platform/moderators",
        Platform,
        PLATFORM_OWNER_ONLY,
    ),
    row(
        "POST",
        "/api/v1/platform/moderators",
        Platform,
        [401, 201, 403, 403, 403, 403, 403],
    ),
    row(
        "DELETE",
        "/api/v1/platform/moderators/{id}",
        Platform,
        [401, 204, 403, 403, 403, 403, 403],
    ),
    // employees
    row("GET", "/api/v1/employees", Client, MEMBERS_200),
    row("GET", "/api/v1/employees/{id}", Client, MEMBERS_200),
    row("PATCH", "/api/v1/employees/{id}", Client, MANAGERS_200),
    row("DELETE", "/api/v1/employees/{id}", Client, MANAGERS_204),
    row(
        "PUT",
        "/api/v1/employees/{id}/channels",
        Client,
        MANAGERS_200,
    ),
    // groups
    row("GET", "/api/v1/groups", Client, MEMBERS_200),
    row("POST", "/api/v1/groups", Client, MANAGERS_201),
    row("GET", "/api/v1/groups/{id}", Client, MEMBERS_200),
    row("PATCH", "/api/v1/groups/{id}", Client, MANAGERS_200),
    row("DELETE", "/api/v1/groups/{id}", Client, MANAGERS_204),
    row("PUT", "/api/v1/groups/{id}/members", Client, MANAGERS_200),
    // channels: the employee without rights has no channel delegated, so a channel of their own
    // client does not exist for them (404); whoever manages settings sees (and changes) every
    // channel, as `GET /channels` lists them all to them.
    row("GET", "/api/v1/channels", Client, MEMBERS_200),
    row("POST", "/api/v1/channels", Client, MANAGERS_201),
    row(
        "GET",
        "/api/v1/channels/{channel_id}",
        Client,
        [401, 403, 403, 200, 404, 200, 200],
    ),
    row(
        "PATCH",
        "/api/v1/channels/{channel_id}",
        Client,
        MANAGERS_200,
    ),
    row(
        "DELETE",
        "/api/v1/channels/{channel_id}",
        Client,
        MANAGERS_204,
    ),
    // the matrix's channel is an API channel: healthy with its outbound URL, and without a
    // provider webhook to register (409)
    row(
        "GET",
        "/api/v1/channels/{channel_id}/health",
        Client,
        MANAGERS_200,
    ),
    row(
        "POST",
        "/api/v1/channels/{channel_id}/webhook",
        Client,
        [401, 403, 403, 409, 403, 409, 409],
    ),
    // an empty test: nothing to try, 200 `not_configured` for whoever manages settings
    row("POST", "/api/v1/connection-tests", Client, MANAGERS_200),
    // invitations, tokens, audit
    row("GET", "/api/v1/invites", Client, MANAGERS_200),
    row("POST", "/api/v1/invites", Client, MANAGERS_201),
    row("DELETE", "/api/v1/invites/{id}", Client, MANAGERS_204),
    row("GET", "/api/v1/tokens", Client, MANAGERS_200),
    row("POST", "/api/v1/tokens", Client, MANAGERS_201),
    row("DELETE", "/api/v1/tokens/{id}", Client, MANAGERS_204),
    row("GET", "/api/v1/audit", Client, MANAGERS_200),
    // the inbox
    row("GET", "/api/v1/conversations", Client, MEMBERS_200),
    row("GET", "/api/v1/conversations/{id}", Client, OWNER_SEES_200),
    row(
        "PATCH",
        "/api/v1/conversations/{id}",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "GET",
        "/api/v1/conversations/{id}/messages",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/conversations/{id}/messages",
        Client,
        OWNER_SEES_201,
    ),
    row(
        "POST",
        "/api/v1/conversations/{id}/notes",
        Client,
        OWNER_SEES_201,
    ),
    row(
        "GET",
        "/api/v1/conversations/{id}/callback",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/conversations/{id}/callback",
        Client,
        OWNER_SEES_409,
    ),
    row(
        "PUT",
        "/api/v1/conversations/{id}/tags/{tag}",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "DELETE",
        "/api/v1/conversations/{id}/tags/{tag}",
        Client,
        OWNER_SEES_204,
    ),
    row(
        "POST",
        "/api/v1/conversations/{id}/read",
        Client,
        OWNER_SEES_204,
    ),
    row(
        "POST",
        "/api/v1/conversations/{id}/attachments",
        Client,
        OWNER_SEES_201,
    ),
    row("GET", "/api/v1/attachments/{id}", Client, OWNER_SEES_200),
    row("GET", "/api/v1/search", Client, MEMBERS_200),
    row("GET", "/api/v1/contacts/{id}", Client, OWNER_SEES_200),
    row("PATCH", "/api/v1/contacts/{id}", Client, OWNER_SEES_200),
    row(
        "GET",
        "/api/v1/contacts/{id}/identities",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "GET",
        "/api/v1/contacts/{id}/conversations",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/contacts/{id}/merge",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/contacts/{id}/split",
        Client,
        OWNER_SEES_201,
    ),
    row("GET", "/api/v1/quick-replies", Client, MEMBERS_200),
    row("POST", "/api/v1/quick-replies", Client, MANAGERS_201),
    row("DELETE", "/api/v1/quick-replies/{id}", Client, MANAGERS_204),
    row(
        "POST",
        "/api/v1/quick-replies/{id}/render",
        Client,
        OWNER_SEES_200,
    ),
    // routing and operators
    row("GET", "/api/v1/groups/{id}/routing", Client, MEMBERS_200),
    row("PUT", "/api/v1/groups/{id}/routing", Client, MANAGERS_200),
    row(
        "PUT",
        "/api/v1/groups/{id}/members/{user_id}/competency",
        Client,
        MANAGERS_200,
    ),
    row("GET", "/api/v1/operators", Client, MEMBERS_200),
    row("PATCH", "/api/v1/operators/{user_id}", Client, MANAGERS_200),
    row("PUT", "/api/v1/auth/presence", Client, MEMBERS_200),
    // the operator WebSocket, asked without an upgrade (cookie callers send our origin): the
    // caller is authenticated and authorized, then told it is not a WebSocket request
    row(
        "GET",
        "/api/v1/ws",
        Client,
        [401, 403, 403, 400, 400, 400, 400],
    ),
    // the scheduler: tasks, triggered-task rules, one's own notifications
    row("GET", "/api/v1/tasks", Client, MANAGERS_200),
    row("GET", "/api/v1/tasks/{id}", Client, MANAGERS_200),
    row("POST", "/api/v1/tasks/{id}/cancel", Client, MANAGERS_200),
    row(
        "POST",
        "/api/v1/tasks/{id}/reschedule",
        Client,
        MANAGERS_200,
    ),
    row("POST", "/api/v1/tasks/{id}/retry", Client, MANAGERS_200),
    row("GET", "/api/v1/triggers", Client, MANAGERS_200),
    row("POST", "/api/v1/triggers", Client, MANAGERS_201),
    row("GET", "/api/v1/triggers/{id}", Client, MANAGERS_200),
    row("PUT", "/api/v1/triggers/{id}", Client, MANAGERS_200),
    row("DELETE", "/api/v1/triggers/{id}", Client, MANAGERS_204),
    row("GET", "/api/v1/notifications", Client, MEMBERS_200),
    // widgets: the owner's settings
    row("GET", "/api/v1/widgets", Client, MANAGERS_200),
    row("POST", "/api/v1/widgets", Client, MANAGERS_201),
    row("GET", "/api/v1/widgets/{channel_id}", Client, MANAGERS_200),
    row(
        "PATCH",
        "/api/v1/widgets/{channel_id}",
        Client,
        MANAGERS_200,
    ),
    // the widget's public API, from a page of the widget's origin: sessions and API tokens
    // count for nothing there; a visitor is their own token, which none of these callers has
    row(
        "GET",
        "/api/v1/public/widgets/{public_key}/config",
        Open,
        ALL_200,
    ),
    row(
        "POST",
        "/api/v1/public/widgets/{public_key}/visitors",
        Open,
        [201; 7],
    ),
    row(
        "GET",
        "/api/v1/public/widgets/{public_key}/messages",
        Open,
        [401; 7],
    ),
    row(
        "POST",
        "/api/v1/public/widgets/{public_key}/messages",
        Open,
        [401; 7],
    ),
    row(
        "POST",
        "/api/v1/public/widgets/{public_key}/offline",
        Open,
        [401; 7],
    ),
    row(
        "POST",
        "/api/v1/public/widgets/{public_key}/callbacks",
        Open,
        [401; 7],
    ),
    row(
        "POST",
        "/api/v1/public/widgets/{public_key}/attachments",
        Open,
        [401; 7],
    ),
    row(
        "GET",
        "/api/v1/public/widgets/{public_key}/attachments/{attachment_id}",
        Open,
        [401; 7],
    ),
    row(
        "GET",
        "/api/v1/public/widgets/{public_key}/ws",
        Open,
        [400; 7],
    ),
    row(
        "OPTIONS",
        "/api/v1/public/widgets/{public_key}/{tail}",
        Open,
        [204; 7],
    ),
    // social publishing: the matrix's profiles are OK groups stored without a group id, and the
    // server has no OK application, so whatever must reach OK is refused (400) while drafts and
    // scheduled actions are kept; Google+ cannot be connected (422); employees have no profile
    // delegated, so for them the profiles and their posts do not exist
    row("GET", "/api/v1/social/networks", Client, MEMBERS_200),
    row("GET", "/api/v1/social/profiles", Client, MEMBERS_200),
    row("POST", "/api/v1/social/profiles", Client, MANAGERS_422),
    row(
        "DELETE",
        "/api/v1/social/profiles/{channel_id}",
        Client,
        MANAGERS_204,
    ),
    row(
        "GET",
        "/api/v1/social/profiles/{channel_id}/posts",
        Client,
        OWNER_SEES_400,
    ),
    row("GET", "/api/v1/social/media", Client, MEMBERS_200),
    row(
        "POST",
        "/api/v1/social/media",
        Client,
        [401, 403, 403, 201, 403, 403, 403],
    ),
    row("GET", "/api/v1/social/posts", Client, MEMBERS_200),
    row("POST", "/api/v1/social/posts", Client, OWNER_SEES_201),
    row("GET", "/api/v1/social/posts/{id}", Client, OWNER_SEES_200),
    row("PATCH", "/api/v1/social/posts/{id}", Client, OWNER_SEES_200),
    row(
        "DELETE",
        "/api/v1/social/posts/{id}",
        Client,
        OWNER_SEES_204,
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/submit",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/approve",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/reject",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/schedule",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/unschedule",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/publish",
        Client,
        [401, 403, 403, 202, 404, 404, 404],
    ),
    row(
        "POST",
        "/api/v1/social/posts/{id}/actions",
        Client,
        OWNER_SEES_202,
    ),
    row(
        "GET",
        "/api/v1/social/posts/{id}/comments",
        Client,
        OWNER_SEES_200,
    ),
    row(
        "POST",
        "/api/v1/social/comments/{message_id}/actions",
        Client,
        OWNER_SEES_202,
    ),
    row(
        "POST",
        "/hooks/social/{network}/{profile_id}",
        Open,
        [401; 7],
    ),
    row(
        "GET",
        "/hooks/social/{network}/{profile_id}",
        Open,
        [401; 7],
    ),
    // the Meta application's callback: unsigned, or without the app's verify token
    row("POST", "/hooks/social/{network}", Open, [401; 7]),
    row("GET", "/hooks/social/{network}", Open, [401; 7]),
    // connecting by OAuth: the matrix's server has no VK application (422); a made-up grant
    // opens for nobody (400); the network's redirect back needs no session and, without a
    // state, sends the browser to the console's page with an error (303)
    row(
        "POST",
        "/api/v1/social/oauth/{network}/start",
        Client,
        MANAGERS_422,
    ),
    row(
        "GET",
        "/api/v1/social/oauth/grants/{grant}",
        Client,
        MANAGERS_400,
    ),
    row(
        "POST",
        "/api/v1/social/oauth/grants/{grant}/connect",
        Client,
        MANAGERS_400,
    ),
    row("GET", "/oauth/social/{network}/callback", Open, [303; 7]),
    // the API channel's webhook: nobody's session or API token is the channel's inbound token
    row("POST", "/hooks/api/{channel_id}", Open, [401; 7]),
    row("GET", "/hooks/api/{channel_id}", Open, [405; 7]),
    // messenger webhooks: the matrix's channel is an API channel, so every provider's path to
    // it is a channel of another provider, which is the same 401 as a bad signature
    row("POST", "/hooks/{provider}/{channel_id}", Open, [401; 7]),
    row("GET", "/hooks/{provider}/{channel_id}", Open, [401; 7]),
    // signed media links: no session or token stands in for the link's signature
    row(
        "GET",
        "/media/{client_id}/{attachment_id}/{file_name}",
        Open,
        [403; 7],
    ),
    row(
        "GET",
        "/media/social/{client_id}/{media_id}/{file_name}",
        Open,
        [403; 7],
    ),
];

/// The request got past authorization to the record itself: it succeeded, the record's state
/// refused it (409), or its network did (400 with the network's words, 422 for what it does not
/// allow). For another client's or a missing id it must be a plain 404.
fn reaches_the_record(status: u16) -> bool {
    (200..300).contains(&status) || matches!(status, 400 | 409 | 422)
}

impl Row {
    fn key(&self) -> (String, String) {
        (self.method.to_string(), self.path.to_string())
    }

    fn has_tenant_id(&self) -> bool {
        match self.kind {
            Kind::Open => false,
            Kind::Platform => self.path.starts_with("/api/v1/platform/clients/{id}"),
            // A network's name and a sealed grant name no record of a client.
            Kind::Client => {
                self.path.contains('{') && !self.path.starts_with("/api/v1/social/oauth/")
            }
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        if self.has_tenant_id() {
            &[Scope::Own, Scope::Other, Scope::Missing]
        } else if self.path.contains("{id}") {
            // A throw-away moderator, and a nonexistent one.
            &[Scope::Fixed, Scope::Missing]
        } else {
            &[Scope::Fixed]
        }
    }

    fn expected(&self, role: usize, scope: Scope) -> u16 {
        let own = self.expect[role];
        match scope {
            Scope::Fixed | Scope::Own => own,
            Scope::Other if self.kind == Kind::Client && reaches_the_record(own) => 404,
            Scope::Other => own,
            Scope::Missing if reaches_the_record(own) => 404,
            Scope::Missing => own,
        }
    }

    /// The error code a refusal must carry.
    fn expected_code(&self, status: u16) -> Option<&'static str> {
        match status {
            401 if self.path == "/api/v1/auth/login" => Some("invalid_credentials"),
            401 if self.path.starts_with("/hooks/") => Some("invalid_signature"),
            401 if self.path.starts_with("/api/v1/public/widgets/") => Some("visitor_unknown"),
            401 => Some("unauthenticated"),
            403 if self.path.starts_with("/media/") => Some("invalid_link"),
            403 => Some("forbidden"),
            404 => Some("not_found"),
            405 => Some("method_not_allowed"),
            410 => Some("invalid_token"),
            _ => None,
        }
    }
}

fn who<'a>(w: &'a World, role: Role, anon_ip: IpAddr) -> Who<'a> {
    match role {
        Role::Anon => Who::Anon(anon_ip),
        Role::Token => w.a.token_who(),
        _ => Who::Session(actor(w, role).unwrap()),
    }
}

/// The user behind a role (the token's holder for the token).
fn actor(w: &World, role: Role) -> Option<&Actor> {
    match role {
        Role::Anon => None,
        Role::PlatformOwner => Some(&w.platform_owner),
        Role::Moderator => Some(&w.moderator),
        Role::Owner => Some(&w.a.owner),
        Role::Plain => Some(&w.a.plain),
        Role::Manager => Some(&w.a.manager),
        Role::Token => Some(&w.a.integrator),
    }
}

/// A request ready to send.
struct Prepared {
    uri: String,
    body: Option<Value>,
    /// A session made for this request only (sign-out must not end the matrix's session).
    fresh: Option<Sess>,
    /// Headers beyond the caller's credentials.
    headers: Vec<(&'static str, String)>,
    /// A body that is no JSON (a multipart upload).
    raw: Option<Vec<u8>>,
}

/// The seeded conversation of a tenant (one per tenant, made on first use) and a message in it.
async fn conversation(w: &World, t: &Tenant) -> (Conversation, Message) {
    inbound(w, t, "matrix-chat", "matrix-user").await
}

/// A customer message on the tenant's channel, committed through the hub.
async fn inbound(w: &World, t: &Tenant, chat: &str, user: &str) -> (Conversation, Message) {
    let event = InboundEvent {
        attachments: Vec::new(),
        client_id: t.client.id,
        channel_id: t.channel.id,
        external_conversation_id: chat.to_string(),
        external_user_id: user.to_string(),
        contact_name: "Matrix Customer".into(),
        provider_event_id: format!("matrix-event-{}", seq()),
        text: "matrix message".into(),
    };
    match w.state.hub.ingest(event).await.unwrap() {
        Ingest::New {
            message,
            conversation,
            ..
        } => (conversation, message),
        Ingest::Duplicate(_) => panic!("fresh event ids are never duplicates"),
    }
}

/// A contact of its own (a new customer) with its one identity, to merge away or split.
async fn victim_contact(w: &World, t: &Tenant) -> (Conversation, String) {
    let user = format!("victim-user-{}", seq());
    let (c, _) = inbound(w, t, &format!("victim-chat-{}", seq()), &user).await;
    (c, user)
}

/// A file uploaded to the tenant's seeded conversation, its bytes in the media store.
async fn stored_upload(w: &World, t: &Tenant) -> String {
    let (c, _) = conversation(w, t).await;
    let chunk = futures_util::stream::once(async { Ok(bytes::Bytes::from_static(b"%PDF-1.4")) });
    let put = w.state.media.put(Box::pin(chunk), 1024).await.unwrap();
    let upload = omnihub_store::NewUpload {
        client_id: t.client.id,
        conversation_id: c.id,
        uploaded_by: None,
        kind: omnihub_core::media::AttachmentKind::Document,
        file_name: "matrix.pdf".into(),
        mime_type: "application/pdf".into(),
        size: i64::try_from(put.size).unwrap(),
        sha256: put.sha256,
        storage_key: put.key,
    };
    w.store.create_upload(&upload).await.unwrap().id.to_string()
}

/// A pending task of the tenant (failed, for a retry), fresh for every request.
async fn matrix_task(w: &World, t: &Tenant, failed: bool) -> String {
    // A failed one is due long ago: this node fails it, unless the application's scheduler
    // got to it first (its kind is unknown there, which fails it too).
    let due_at = if failed {
        chrono::DateTime::UNIX_EPOCH
    } else {
        chrono::Utc::now() + chrono::Duration::days(30)
    };
    let task = w
        .store
        .schedule_task(&omnihub_store::NewTask {
            client_id: Some(t.client.id),
            kind: "matrix.kind".into(),
            payload: json!({}),
            due_at,
            idempotency_key: format!("matrix-{}", seq()),
        })
        .await
        .unwrap();
    if failed {
        let node = format!("matrix-node-{}", seq());
        let claimed = w
            .store
            .claim_due_tasks(&node, due_at, due_at + chrono::Duration::seconds(60), 10)
            .await
            .unwrap();
        let finished: Vec<omnihub_store::FinishedTask> = claimed
            .iter()
            .map(|c| omnihub_store::FinishedTask {
                id: c.id,
                outcome: omnihub_store::TaskOutcome::Failed {
                    error: "matrix failure".into(),
                    retry_at: None,
                },
                next_due: None,
            })
            .collect();
        w.store
            .finish_tasks(&finished, &node, due_at)
            .await
            .unwrap();
        while w.store.get_task(t.client.id, task.id).await.unwrap().status
            != omnihub_store::TaskStatus::Failed
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    task.id.to_string()
}

fn matrix_trigger() -> omnihub_store::NewTrigger {
    omnihub_store::NewTrigger {
        name: "matrix rule".into(),
        profile_id: None,
        condition: omnihub_core::triggers::TriggerCondition::Hashtag {
            hashtag: "#matrix".into(),
        },
        action: omnihub_core::triggers::TriggerAction::Like,
        enabled: true,
    }
}

/// The id a path needs, creating a throw-away row for destructive requests.
async fn path_id(w: &World, row: &Row, scope: Scope) -> Option<String> {
    if scope == Scope::Missing {
        return Some(uuid::Uuid::now_v7().to_string());
    }
    let t = if scope == Scope::Other { &w.b } else { &w.a };
    let id = match (row.method, row.path) {
        ("GET", "/api/v1/auth/invites/{token}") => w.a.invite_token.clone(),
        (_, p) if p.starts_with("/api/v1/platform/clients/{id}") => t.client.id.to_string(),
        ("DELETE", "/api/v1/platform/moderators/{id}") => {
            let n = seq();
            w.create_user(
                &format!("victim-mod{n}@platform.test"),
                &format!("Victim Moderator {n}"),
                UserRole::PlatformModerator,
                None,
                GlobalRights::empty(),
            )
            .await
            .id
            .to_string()
        }
        ("DELETE", "/api/v1/employees/{id}") => w.victim_employee(t).await.id.to_string(),
        (_, p) if p.starts_with("/api/v1/employees/{id}") => t.plain.user.id.to_string(),
        ("DELETE", "/api/v1/groups/{id}") => w.victim_group(t).await.id.to_string(),
        (_, p) if p.starts_with("/api/v1/groups/{id}") => t.group.id.to_string(),
        ("DELETE", "/api/v1/channels/{channel_id}") => w.victim_channel(t).await.id.to_string(),
        (_, "/api/v1/channels/{channel_id}")
        | (_, "/api/v1/channels/{channel_id}/health")
        | (_, "/api/v1/channels/{channel_id}/webhook") => t.channel.id.to_string(),
        ("DELETE", "/api/v1/invites/{id}") => w.victim_invite(t).await.id.to_string(),
        ("DELETE", "/api/v1/tokens/{id}") => w.victim_token(t).await.id.to_string(),
        (_, p) if p.starts_with("/api/v1/conversations/{id}") => {
            conversation(w, t).await.0.id.to_string()
        }
        (_, p) if p.starts_with("/api/v1/contacts/{id}") => {
            conversation(w, t).await.0.contact_id.to_string()
        }
        ("DELETE", "/api/v1/quick-replies/{id}")
        | ("POST", "/api/v1/quick-replies/{id}/render") => w
            .store
            .create_quick_reply(t.client.id, "matrix reply", "Hello {{contact.name}}")
            .await
            .unwrap()
            .id
            .to_string(),
        (_, "/hooks/api/{channel_id}")
        | (_, "/hooks/{provider}/{channel_id}")
        | (_, "/hooks/social/{network}/{profile_id}") => w.a.channel.id.to_string(),
        ("DELETE", "/api/v1/social/profiles/{channel_id}") => {
            social::profile(w, t, "victim").await.to_string()
        }
        (_, "/api/v1/social/profiles/{channel_id}/posts") => {
            social::profile(w, t, "matrix").await.to_string()
        }
        ("POST", "/api/v1/social/posts/{id}/approve" | "/api/v1/social/posts/{id}/reject") => {
            social::post(w, t, &["awaiting_approval"]).await
        }
        ("POST", "/api/v1/social/posts/{id}/schedule" | "/api/v1/social/posts/{id}/publish") => {
            social::post(w, t, &["awaiting_approval", "approved"]).await
        }
        ("POST", "/api/v1/social/posts/{id}/unschedule") => {
            social::post(w, t, &["awaiting_approval", "approved", "scheduled"]).await
        }
        ("POST", "/api/v1/social/posts/{id}/actions") => social::published_post(w, t).await,
        (_, p) if p.starts_with("/api/v1/social/posts/{id}") => social::post(w, t, &[]).await,
        (_, "/api/v1/social/comments/{message_id}/actions") => social::comment(w, t).await,
        (_, "/api/v1/operators/{user_id}") => t.plain.user.id.to_string(),
        ("POST", "/api/v1/tasks/{id}/retry") => matrix_task(w, t, true).await,
        (_, p) if p.starts_with("/api/v1/tasks/{id}") => matrix_task(w, t, false).await,
        (_, p) if p.starts_with("/api/v1/triggers/{id}") => w
            .store
            .create_trigger(t.client.id, &matrix_trigger())
            .await
            .unwrap()
            .id
            .to_string(),
        ("GET", "/api/v1/attachments/{id}")
        | ("GET", "/media/{client_id}/{attachment_id}/{file_name}") => stored_upload(w, t).await,
        (_, "/api/v1/widgets/{channel_id}") => matrix_widget(w, t).await.0.id.to_string(),
        (_, p) if p.starts_with("/api/v1/public/widgets/{public_key}") => {
            matrix_widget(w, t).await.1
        }
        // No record of a client: a network's name and a sealed grant, a signed link to a
        // library file without its signature, or the Meta application's callback, filled in
        // below.
        (_, p)
            if p.starts_with("/api/v1/social/oauth/")
                || p == "/hooks/social/{network}"
                || p.starts_with("/oauth/social/")
                || p.starts_with("/media/social/") =>
        {
            return None;
        }
        (_, p) if p.contains('{') => panic!("no id chosen for {} {p}", row.method),
        _ => return None,
    };
    Some(id)
}

/// The origin of the matrix's widgets.
const MATRIX_SITE: &str = "https://matrix.test";

/// A fresh widget of the tenant (channel, public key), answering `MATRIX_SITE`.
async fn matrix_widget(w: &World, t: &Tenant) -> (omnihub_core::model::Channel, String) {
    let key = format!("pk_matrix_{}", uuid::Uuid::now_v7().simple());
    let channel = w
        .store
        .create_widget(
            &omnihub_store::NewChannel {
                client_id: t.client.id,
                kind: omnihub_core::model::ChannelKind::Messaging,
                provider: omnihub_core::model::Provider::Widget,
                name: "matrix widget".into(),
                settings: json!({ "origins": [MATRIX_SITE] }),
                credentials: None,
            },
            &key,
        )
        .await
        .unwrap();
    (channel, key)
}

/// A valid request for `row` as `role`: bodies pass validation, so only rights decide.
async fn prepare(w: &World, row: &Row, role: Role, scope: Scope) -> Prepared {
    let uri = match path_id(w, row, scope).await {
        Some(id) => {
            let uri = row
                .path
                .replace("{id}", &id)
                .replace("{channel_id}", &id)
                .replace("{token}", &id)
                .replace("{public_key}", &id)
                .replace("{message_id}", &id)
                .replace("{profile_id}", &id)
                .replace("{network}", "vk")
                .replace("{tail}", "messages");
            // A signed link names the stored file; the widget's download is given nobody's
            // file below (its id is the widget's key).
            if row.path.starts_with("/media/") {
                uri.replace("{attachment_id}", &id)
            } else {
                uri
            }
        }
        None => row.path.to_string(),
    };
    let t = if scope == Scope::Other { &w.b } else { &w.a };
    let member = match scope {
        Scope::Missing => uuid::Uuid::now_v7().to_string(),
        _ => t.plain.user.id.to_string(),
    };
    let mut uri = uri
        .replace("{user_id}", &member)
        .replace("{tag}", "matrix")
        .replace("{provider}", "telegram")
        .replace("{client_id}", &t.client.id.to_string())
        .replace("{file_name}", "file.png");
    if row.path == "/api/v1/operators/{user_id}" {
        // Its only id is the user's.
        uri = row.path.replace("{user_id}", &member);
    }
    if row.path == "/api/v1/search" {
        uri.push_str("?q=matrix");
    }
    // A file of nobody's: the visitor is refused before any file is looked up.
    uri = uri
        .replace("{attachment_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{media_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{grant}", "matrix-grant")
        .replace("{network}", "vk");
    if row.path == "/api/v1/public/widgets/{public_key}/attachments" {
        uri.push_str("?client_message_id=matrix");
    }
    if row.path == "/hooks/social/{network}" {
        // Only Meta's networks have an application-wide callback.
        uri = "/hooks/social/facebook".to_string();
    }
    let mut headers = Vec::new();
    let mut raw = None;
    if row.path == "/api/v1/ws" {
        headers.push(("origin", w.config.server.public_url.clone()));
    }
    if row.path.starts_with("/api/v1/public/widgets/") {
        headers.push(("origin", MATRIX_SITE.to_string()));
    }
    if row.method == "DELETE"
        && row.path == "/api/v1/conversations/{id}/tags/{tag}"
        && scope == Scope::Own
    {
        let (c, _) = conversation(w, &w.a).await;
        w.store
            .add_tag(w.a.client.id, c.id, "matrix")
            .await
            .unwrap();
    }
    let me = actor(w, role);
    let n = seq();
    let mut fresh = None;
    let body = match (row.method, row.path) {
        ("POST", "/api/v1/auth/login") => Some(match me {
            Some(a) => json!({ "email": a.email(), "password": PASSWORD }),
            None => json!({ "email": "nobody@nowhere.test", "password": PASSWORD }),
        }),
        ("POST", "/api/v1/auth/logout") => {
            if let (Some(a), false) = (me, role == Role::Token) {
                fresh = Some(w.new_session(a).await);
            }
            None
        }
        ("PATCH", "/api/v1/auth/profile") => Some(json!({ "locale": "en" })),
        ("POST", "/api/v1/auth/password") => {
            Some(json!({ "current_password": PASSWORD, "new_password": PASSWORD }))
        }
        ("POST", "/api/v1/auth/password-reset") => Some(json!({ "email": "nobody@nowhere.test" })),
        ("POST", "/api/v1/auth/password-reset/confirm") => {
            Some(json!({ "token": "no-such-reset-token", "new_password": PASSWORD }))
        }
        ("POST", "/api/v1/auth/totp/setup") => Some(json!({ "password": PASSWORD })),
        ("POST", "/api/v1/auth/totp/enable") => Some(match me {
            Some(a) => {
                // Setup done, not yet enabled; the authenticator shows the current code.
                let secret = omnihub::auth::totp::new_secret();
                w.store
                    .set_totp(a.user.id, Some(&secret), false)
                    .await
                    .unwrap();
                json!({ "code": totp_code(&secret, 0) })
            }
            None => json!({ "code": "123456" }),
        }),
        ("POST", "/api/v1/auth/totp/disable") => Some(match me {
            Some(a) => {
                let secret = omnihub::auth::totp::new_secret();
                w.store
                    .set_totp(a.user.id, Some(&secret), true)
                    .await
                    .unwrap();
                w.state.auth_cache.invalidate_user(a.user.id);
                // The next step's code: the enable row already used this step for this user.
                json!({ "password": PASSWORD, "code": totp_code(&secret, 30) })
            }
            None => json!({ "password": PASSWORD, "code": "123456" }),
        }),
        ("POST", "/api/v1/auth/invites/accept") => Some(
            json!({ "token": "no-such-invite", "display_name": "Nobody", "password": PASSWORD }),
        ),
        ("POST", "/api/v1/platform/clients") => Some(json!({
            "name": format!("Matrix Client {n}"),
            "owner_email": format!("matrix-owner{n}@matrix.test"),
            "owner_name": format!("Matrix Owner {n}"),
        })),
        ("POST", "/api/v1/platform/clients/{id}/block") => {
            Some(json!({ "reason": "rights matrix" }))
        }
        ("POST", "/api/v1/platform/clients/{id}/unblock") => None,
        ("POST", "/api/v1/platform/moderators") => Some(json!({
            "email": format!("matrix-mod{n}@platform.test"),
            "display_name": format!("Matrix Moderator {n}"),
        })),
        ("PATCH", "/api/v1/employees/{id}") => {
            Some(json!({ "display_name": w.a.plain.user.display_name }))
        }
        ("PUT", "/api/v1/employees/{id}/channels") => Some(json!({ "grants": [] })),
        ("POST", "/api/v1/groups") => Some(json!({ "name": format!("alpha matrix group {n}") })),
        ("PATCH", "/api/v1/groups/{id}") => Some(json!({ "name": w.a.group.name })),
        ("PUT", "/api/v1/groups/{id}/members") => {
            Some(json!({ "member_ids": [w.a.plain.user.id] }))
        }
        ("POST", "/api/v1/channels") => Some(
            json!({ "kind": "messaging", "provider": "api", "name": format!("alpha matrix channel {n}") }),
        ),
        ("PATCH", "/api/v1/channels/{channel_id}") => Some(json!({ "name": w.a.channel.name })),
        ("POST", "/api/v1/channels/{channel_id}/webhook") => None,
        ("POST", "/api/v1/connection-tests") => Some(json!({ "provider": "max", "settings": {} })),
        ("POST", "/api/v1/invites") => {
            Some(json!({ "email": format!("matrix-invite{n}@alpha.test") }))
        }
        ("POST", "/api/v1/tokens") => Some(json!({ "name": format!("matrix token {n}") })),
        ("PATCH", "/api/v1/conversations/{id}") => Some(json!({ "status": "open" })),
        ("POST", "/api/v1/conversations/{id}/messages" | "/api/v1/conversations/{id}/notes") => {
            Some(json!({ "text": "matrix reply", "idempotency_key": format!("matrix-{n}") }))
        }
        ("POST", "/api/v1/conversations/{id}/callback") => {
            Some(json!({ "number": "+79991234567" }))
        }
        ("PUT", "/api/v1/conversations/{id}/tags/{tag}") => None,
        ("POST", "/api/v1/social/media") => {
            let boundary = "matrix-boundary";
            headers.push((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ));
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"matrix.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(omnihub_sandbox::SAMPLE_PHOTO);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            raw = Some(body);
            None
        }
        (
            "POST",
            "/api/v1/conversations/{id}/attachments"
            | "/api/v1/public/widgets/{public_key}/attachments",
        ) => {
            let boundary = "matrix-boundary";
            headers.push((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ));
            raw = Some(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                     filename=\"matrix.txt\"\r\nContent-Type: text/plain\r\n\r\n\
                     matrix file\r\n--{boundary}--\r\n"
                )
                .into_bytes(),
            );
            None
        }
        ("POST", "/api/v1/conversations/{id}/read") => {
            Some(json!({ "message_id": conversation(w, &w.a).await.1.id }))
        }
        ("PATCH", "/api/v1/contacts/{id}") => Some(json!({ "name": "Matrix Customer" })),
        ("POST", "/api/v1/contacts/{id}/merge") => {
            Some(json!({ "other_id": victim_contact(w, &w.a).await.0.contact_id }))
        }
        ("POST", "/api/v1/contacts/{id}/split") => {
            // A fresh contact of the path's client, so the identity is really on it.
            let t = if scope == Scope::Other { &w.b } else { &w.a };
            let (c, user) = victim_contact(w, t).await;
            let uri_id = c.contact_id.to_string();
            let body = json!({ "channel_id": t.channel.id, "external_id": user });
            return Prepared {
                uri: if scope == Scope::Missing {
                    uri
                } else {
                    row.path.replace("{id}", &uri_id)
                },
                body: Some(body),
                raw: None,
                fresh,
                headers,
            };
        }
        ("POST", "/api/v1/tasks/{id}/cancel") | ("POST", "/api/v1/tasks/{id}/retry") => None,
        ("POST", "/api/v1/tasks/{id}/reschedule") => Some(json!({
            "due_at": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339(),
        })),
        ("POST", "/api/v1/triggers") | ("PUT", "/api/v1/triggers/{id}") => Some(json!({
            "name": format!("matrix rule {n}"),
            "condition": { "kind": "hashtag", "hashtag": "#Скидка" },
            "action": { "kind": "reply", "template": "{{author.name}}, thanks" },
        })),
        ("POST", "/api/v1/quick-replies") => {
            Some(json!({ "title": format!("matrix {n}"), "text": "Hi {{contact.name}}" }))
        }
        ("POST", "/api/v1/quick-replies/{id}/render") => {
            Some(json!({ "conversation_id": conversation(w, &w.a).await.0.id }))
        }
        ("PUT", "/api/v1/groups/{id}/routing") => Some(json!({
            "mode": "round_robin",
            "hours": { "timezone": "Europe/Moscow", "always_open": true, "days": [[], [], [], [], [], [], []] },
            "auto_replies": { "new_off_hours": "We are closed" },
        })),
        ("PUT", "/api/v1/groups/{id}/members/{user_id}/competency") => Some(json!({ "level": 50 })),
        ("PATCH", "/api/v1/operators/{user_id}") => Some(json!({ "capacity": 5 })),
        ("PUT", "/api/v1/auth/presence") => Some(json!({ "presence": "away" })),
        ("POST", "/api/v1/widgets") => Some(json!({
            "name": format!("matrix widget {n}"),
            "settings": { "origins": [MATRIX_SITE] },
        })),
        ("PATCH", "/api/v1/widgets/{channel_id}") => Some(json!({ "name": "matrix widget" })),
        ("POST", "/api/v1/public/widgets/{public_key}/visitors") => Some(json!({})),
        ("POST", "/api/v1/public/widgets/{public_key}/messages") => Some(json!({
            "client_message_id": format!("matrix-{n}"),
            "text": "hello",
        })),
        ("POST", "/api/v1/public/widgets/{public_key}/callbacks") => {
            Some(json!({ "number": "+79991234567" }))
        }
        ("POST", "/api/v1/public/widgets/{public_key}/offline") => Some(json!({
            "client_message_id": format!("matrix-{n}"),
            "text": "hello",
            "email": "visitor@matrix.test",
        })),
        ("POST", "/hooks/{provider}/{channel_id}") => Some(json!({ "update_id": n })),
        ("POST", "/hooks/social/{network}/{profile_id}") => {
            Some(json!({ "type": "wall_reply_new", "group_id": 1, "secret": "matrix" }))
        }
        ("POST", "/hooks/social/{network}") => Some(json!({ "object": "page", "entry": [] })),
        ("POST", "/api/v1/social/oauth/grants/{grant}/connect") => {
            Some(json!({ "external_ids": ["1"] }))
        }
        ("POST", "/api/v1/social/oauth/{network}/start") => Some(json!({})),
        ("POST", "/api/v1/social/profiles") => {
            Some(json!({ "network": "google_plus", "external_id": "1", "access_token": "matrix" }))
        }
        ("POST", "/api/v1/social/posts") | ("PATCH", "/api/v1/social/posts/{id}") => {
            let profile = social::profile(w, &w.a, "matrix").await;
            Some(
                json!({ "content": { "text": "matrix post" }, "targets": [{ "profile_id": profile }] }),
            )
        }
        ("POST", "/api/v1/social/posts/{id}/schedule") => Some(json!({
            "at": (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M").to_string(),
            "time_zone": "Europe/Moscow",
        })),
        ("POST", "/api/v1/social/posts/{id}/actions") => Some(json!({ "action": "like" })),
        ("POST", "/api/v1/social/comments/{message_id}/actions") => {
            Some(json!({ "action": "like" }))
        }
        (
            "POST",
            "/api/v1/social/posts/{id}/submit"
            | "/api/v1/social/posts/{id}/approve"
            | "/api/v1/social/posts/{id}/reject"
            | "/api/v1/social/posts/{id}/unschedule"
            | "/api/v1/social/posts/{id}/publish",
        ) => Some(json!({})),
        ("POST", "/hooks/api/{channel_id}") => Some(json!({
            "event_id": format!("matrix-hook-{n}"),
            "conversation": "matrix-hook-chat",
            "user": { "id": "matrix-hook-user", "name": "Hook Customer" },
            "text": "hello",
        })),
        (m, p) if m != "GET" && m != "DELETE" && m != "OPTIONS" => {
            panic!("no body chosen for {m} {p}")
        }
        _ => None,
    };
    Prepared {
        uri,
        body,
        raw,
        fresh,
        headers,
    }
}

/// Puts back what a request changed so the next one starts from the seeded world.
async fn restore(w: &World, row: &Row, role: Role, scope: Scope) {
    let me = actor(w, role);
    match (row.method, row.path) {
        ("POST", "/api/v1/auth/password") => {
            // Sessions of the user were revoked (that is the point); sign in again.
            if let (Some(a), false) = (me, role == Role::Token) {
                w.sign_in(a).await;
            }
        }
        ("POST", p) if p.starts_with("/api/v1/auth/totp/") => {
            if let Some(a) = me {
                w.store.set_totp(a.user.id, None, false).await.unwrap();
            }
        }
        ("POST", "/api/v1/platform/clients/{id}/block") => {
            let t = if scope == Scope::Other { &w.b } else { &w.a };
            w.store
                .set_client_status(t.client.id, ClientStatus::Active, None)
                .await
                .unwrap();
            w.state.auth_cache.invalidate_client(t.client.id);
        }
        _ => {}
    }
}

/// Strings of `b` that must not reach anyone but platform staff, and its ids.
fn other_client_markers(w: &World) -> (Vec<String>, Vec<String>) {
    let b = &w.b;
    let mut ids = vec![
        b.client.id.to_string(),
        b.channel.id.to_string(),
        b.group.id.to_string(),
        b.invite.id.to_string(),
    ];
    ids.extend(b.actors().iter().map(|a| a.user.id.to_string()));
    (vec![b.tag.clone()], ids)
}

struct Outcome {
    label: String,
    cells: Vec<String>,
    bad: bool,
}

#[actix_web::test]
async fn every_route_every_role_own_and_other_client() {
    let w = World::new("matrix").await;
    let anon_ip = fresh_ip();
    let mut problems: Vec<String> = Vec::new();

    // 1. The table covers the OpenAPI document exactly.
    let doc = w.get(Who::Anon(anon_ip), "/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in [
            "get", "post", "put", "patch", "delete", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let rows: BTreeSet<(String, String)> = ROWS.iter().map(Row::key).collect();
    assert_eq!(rows.len(), ROWS.len(), "a row is listed twice");
    for (m, p) in documented.difference(&rows) {
        problems.push(format!(
            "no matrix row for the documented operation {m} {p}"
        ));
    }
    for (m, p) in rows.difference(&documented) {
        problems.push(format!("matrix row {m} {p} is not in the OpenAPI document"));
    }

    // 2. Every row × scope × role.
    let (b_strings, b_ids) = other_client_markers(&w);
    let secrets = [credential_secret("alpha"), credential_secret("bravo")];
    let mut outcomes = Vec::new();
    for row in ROWS {
        for &scope in row.scopes() {
            let mut cells = Vec::new();
            let mut bad = false;
            for (i, &role) in ROLES.iter().enumerate() {
                let p = prepare(&w, row, role, scope).await;
                let method = Method::from_bytes(row.method.as_bytes()).unwrap();
                let sender = match (&p.fresh, actor(&w, role)) {
                    (Some(s), Some(a)) => Who::Cookie(s, a.ip),
                    _ => who(&w, role, anon_ip),
                };
                let mut req = w.request(sender, method, &p.uri);
                for (name, value) in &p.headers {
                    req = req.insert_header((*name, value.clone()));
                }
                if let Some(body) = &p.body {
                    req = req.set_json(body.clone());
                }
                if let Some(raw) = &p.raw {
                    req = req.set_payload(raw.clone());
                }
                let r = w.send(req).await;
                restore(&w, row, role, scope).await;

                let expected = row.expected(i, scope);
                let what = format!("{} {} [{scope:?}] as {}", row.method, p.uri, role.short());
                let mut cell = r.status.to_string();
                if r.status != expected {
                    bad = true;
                    cell = format!("!{}≠{expected}", r.status);
                    problems.push(format!(
                        "{what}: {} (expected {expected}): {}",
                        r.status,
                        r.text()
                    ));
                } else if let Some(code) = row.expected_code(expected)
                    && r.code().as_deref() != Some(code)
                {
                    bad = true;
                    cell = format!("!{}:{}", r.status, r.code().unwrap_or_default());
                    problems.push(format!(
                        "{what}: code {:?}, expected {code}: {}",
                        r.code(),
                        r.text()
                    ));
                }
                if r.status >= 400 && r.code().is_none() {
                    bad = true;
                    problems.push(format!("{what}: error without a JSON code: {:?}", r.text()));
                }
                let body = r.text();
                for s in &secrets {
                    if body.contains(s.as_str()) {
                        bad = true;
                        cell.push_str("!cred");
                        problems.push(format!(
                            "{what}: the answer contains stored channel credentials"
                        ));
                    }
                }
                if !role.is_staff() {
                    let lower = body.to_lowercase();
                    let leaked: Vec<&String> = b_strings
                        .iter()
                        .filter(|s| lower.contains(s.as_str()))
                        .chain(b_ids.iter().filter(|id| {
                            lower.contains(id.as_str()) && !p.uri.contains(id.as_str())
                        }))
                        .collect();
                    if !leaked.is_empty() {
                        bad = true;
                        cell.push_str("!leak");
                        problems.push(format!(
                            "{what}: leaks the other client's data {leaked:?}: {body}"
                        ));
                    }
                }
                cells.push(cell);
            }
            outcomes.push(Outcome {
                label: format!("{:<6} {:<42} {:?}", row.method, row.path, scope),
                cells,
                bad,
            });
        }
    }

    // 3. The seeded world survived every request.
    for t in [&w.a, &w.b] {
        let client = w.store.get_client(t.client.id).await.unwrap();
        assert_eq!(
            client.status,
            ClientStatus::Active,
            "{} was left blocked",
            t.tag
        );
        for a in t.actors() {
            assert!(
                !w.store.get_user(a.user.id).await.unwrap().disabled,
                "{} was disabled",
                a.label
            );
        }
        w.store
            .get_channel(t.client.id, t.channel.id)
            .await
            .unwrap();
        w.store.get_group(t.client.id, t.group.id).await.unwrap();
    }

    if !problems.is_empty() {
        let mut table = String::new();
        let _ = write!(table, "  {:<58}", "operation / scope");
        for r in ROLES {
            let _ = write!(table, " {:>9}", r.short());
        }
        table.push('\n');
        for o in &outcomes {
            let _ = write!(table, "{} {:<58}", if o.bad { '✗' } else { ' ' }, o.label);
            for c in &o.cells {
                let _ = write!(table, " {c:>9}");
            }
            table.push('\n');
        }
        panic!(
            "rights matrix: {} problem(s)\n{table}\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// Whoever manages settings is shown every channel by `GET /channels` and may rename or delete
/// any of them (and gets the channel back from `PATCH`), so `GET /channels/{id}` must not deny
/// that the channel exists.
#[actix_web::test]
async fn settings_managers_can_read_the_channels_they_list_and_change() {
    let w = World::new("manager-channels").await;
    let channel = w.a.channel.id.to_string();
    for who in [w.a.manager.who(), w.a.token_who()] {
        let list = w.get(who, "/api/v1/channels").await;
        list.assert_status(200);
        let listed = list.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(channel));
        assert!(listed, "the manager is shown the channel: {}", list.text());
        let patched = w
            .patch(
                who,
                &format!("/api/v1/channels/{channel}"),
                json!({ "name": w.a.channel.name }),
            )
            .await;
        patched.assert_status(200);
        assert_eq!(patched.json()["id"], json!(channel));
        let r = w.get(who, &format!("/api/v1/channels/{channel}")).await;
        assert_eq!(
            r.status,
            200,
            "GET of a channel the caller lists and changes: {}",
            r.text()
        );
    }
}

/// The matrix's social fixtures: OK groups (their connector is not built, so nothing ever
/// leaves the machine), posts in each state of the approval flow, and a comment.
mod social {
    use omnihub_core::ChannelId;
    use omnihub_core::model::Provider;
    use omnihub_store::{
        InboundEvent, NewSocialPost, NewSocialProfile, PostTransition, TargetOutcome,
    };
    use serde_json::json;

    use crate::support::{Tenant, World, seq};

    /// The tenant's profile named `tag` (made once), or a fresh one for `victim`.
    pub(super) async fn profile(w: &World, t: &Tenant, tag: &str) -> ChannelId {
        let external = if tag == "victim" {
            format!("victim-{}", seq())
        } else {
            tag.to_string()
        };
        if let Some(found) = w
            .store
            .list_social_profiles(t.client.id)
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.external_id == external)
        {
            return found.id;
        }
        w.store
            .create_social_profile(&NewSocialProfile {
                client_id: t.client.id,
                provider: Provider::Ok,
                network: "ok".into(),
                external_id: external,
                name: format!("{} matrix group", t.tag),
                credentials: json!({ "access_token": "matrix" }),
                token_expires_at: None,
            })
            .await
            .unwrap()
            .id
    }

    /// A fresh post of the tenant, moved through `steps` (statuses, in order).
    pub(super) async fn post(w: &World, t: &Tenant, steps: &[&str]) -> String {
        let profile = profile(w, t, "matrix").await;
        let post = w
            .store
            .create_social_post(&NewSocialPost {
                client_id: t.client.id,
                author_id: None,
                content: json!({ "text": "matrix post" }),
                targets: vec![(profile, None)],
            })
            .await
            .unwrap();
        let mut from = "draft";
        for to in steps {
            let scheduled = (*to == "scheduled")
                .then(|| Some((chrono::Utc::now() + chrono::Duration::days(1), "UTC".into())));
            w.store
                .transition_social_post(
                    t.client.id,
                    post.id,
                    &PostTransition {
                        from: &[from],
                        to,
                        approved_by: None,
                        scheduled,
                    },
                )
                .await
                .unwrap();
            from = to;
        }
        post.id.to_string()
    }

    /// A post published on the tenant's profile.
    pub(super) async fn published_post(w: &World, t: &Tenant) -> String {
        let id = post(w, t, &["awaiting_approval", "approved", "publishing"]).await;
        let profile = profile(w, t, "matrix").await;
        w.store
            .set_target_outcome(
                t.client.id,
                id.parse().unwrap(),
                profile,
                &TargetOutcome {
                    status: "published",
                    remote_id: Some("1001"),
                    failure_reason: None,
                },
            )
            .await
            .unwrap();
        id
    }

    /// A customer's comment under the tenant's published post: its message id.
    pub(super) async fn comment(w: &World, t: &Tenant) -> String {
        let profile = profile(w, t, "matrix").await;
        let thread = format!("1001:{}", seq());
        let ingested = w
            .state
            .hub
            .ingest(InboundEvent {
                client_id: t.client.id,
                channel_id: profile,
                external_conversation_id: thread.clone(),
                external_user_id: thread.clone(),
                contact_name: "Matrix Commenter".into(),
                provider_event_id: format!("matrix-comment-{}", seq()),
                text: "matrix comment".into(),
                attachments: Vec::new(),
            })
            .await
            .unwrap();
        let omnihub_store::Ingest::New {
            message,
            conversation,
            ..
        } = ingested
        else {
            panic!("fresh comments are never duplicates");
        };
        w.store
            .link_social_thread(t.client.id, conversation.id, profile, "1001")
            .await
            .unwrap();
        message.id.to_string()
    }
}
