//! The one place that decides who may do what. HTTP handlers never check rights themselves: they
//! declare an [`Action`] through the typed extractor, which calls [`decide`].

use std::collections::HashMap;

use crate::ids::{ChannelId, ClientId, GroupId, UserId};
use crate::rights::{ChannelRights, GlobalRights, Role};

/// The authenticated caller, as loaded from the store for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    /// The client an owner or employee belongs to; `None` for platform staff.
    pub client_id: Option<ClientId>,
    /// False when the platform has blocked the caller's client.
    pub client_active: bool,
    pub global: GlobalRights,
    pub channels: HashMap<ChannelId, ChannelRights>,
    /// The groups the caller is a member of (routing and conversation visibility).
    pub groups: Vec<GroupId>,
}

/// Something a caller wants to do. Client-scoped actions always apply to the caller's own client:
/// queries are scoped by it, so another client's ids are simply not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Any signed-in user, on their own account (profile, password, second factor, sign-out).
    OwnAccount,
    /// List, search and view clients (read-only).
    ViewClients,
    /// Create clients.
    CreateClient,
    /// Block and unblock clients.
    BlockClient,
    /// Add and remove platform moderators.
    ManageModerators,
    /// See one's own client, its groups and colleagues.
    ViewOwnClient,
    /// Invite, edit and remove employees, groups and rights.
    ManageEmployees,
    /// Connect channels, change settings, manage API tokens.
    ManageSettings,
    /// Billing and tariff plans.
    Billing,
    /// Read the audit log and analytics.
    ViewAnalytics,
    /// See and change scheduled tasks and the rules of triggered tasks.
    Scheduling,
    /// See one channel's or profile's configuration (not its conversations): whoever manages
    /// settings sees every channel; others only channels delegated to them in any way.
    ViewChannel(ChannelId),
    /// Act on one channel or profile with the given rights.
    Channel(ChannelId, ChannelRights),
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Signed in, but this role or these rights do not allow it.
    Forbidden,
    /// The caller's client is blocked by the platform.
    ClientBlocked,
    /// The target is outside what the caller may even know exists.
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

/// Decides whether `who` may perform `action`. Pure: everything it needs is in its arguments.
pub fn decide(who: &Principal, action: Action) -> Decision {
    use Action::*;
    use Decision::*;
    use Denial::*;

    let platform = |allowed: &[Role]| {
        if allowed.contains(&who.role) {
            Allow
        } else {
            Deny(Forbidden)
        }
    };

    match action {
        OwnAccount => Allow,
        ViewClients | BlockClient => platform(&[Role::PlatformOwner, Role::PlatformModerator]),
        CreateClient | ManageModerators => platform(&[Role::PlatformOwner]),
        ViewOwnClient | ManageEmployees | ManageSettings | Billing | ViewAnalytics | Scheduling
        | ViewChannel(_) | Channel(..) => {
            if who.client_id.is_none() || who.role.is_platform_staff() {
                return Deny(Forbidden);
            }
            if !who.client_active {
                return Deny(ClientBlocked);
            }
            if who.role == Role::ClientOwner {
                return Allow;
            }
            let needs_global = |right: GlobalRights| {
                if who.global.contains(right) {
                    Allow
                } else {
                    Deny(Forbidden)
                }
            };
            match action {
                ViewOwnClient => Allow,
                ManageEmployees => needs_global(GlobalRights::MANAGE_EMPLOYEES),
                ManageSettings => needs_global(GlobalRights::MANAGE_SETTINGS),
                Billing => needs_global(GlobalRights::BILLING),
                ViewAnalytics => needs_global(GlobalRights::ANALYTICS),
                Scheduling => needs_global(GlobalRights::SCHEDULING),
                ViewChannel(id) => {
                    let delegated = who.channels.get(&id).is_some_and(|r| !r.is_empty());
                    if delegated || who.global.contains(GlobalRights::MANAGE_SETTINGS) {
                        Allow
                    } else {
                        Deny(NotFound)
                    }
                }
                Channel(id, wanted) => match who.channels.get(&id) {
                    // A channel not delegated at all is not even acknowledged to exist.
                    None => Deny(NotFound),
                    Some(granted) if granted.contains(wanted) => Allow,
                    Some(_) => Deny(Forbidden),
                },
                _ => Deny(Forbidden),
            }
        }
    }
}

/// The rights `who` holds on a channel of their own client (used to filter listings).
pub fn channel_rights(who: &Principal, channel: ChannelId) -> ChannelRights {
    match who.role {
        Role::ClientOwner if who.client_active => ChannelRights::full(),
        Role::Employee if who.client_active => {
            who.channels.get(&channel).copied().unwrap_or_default()
        }
        _ => ChannelRights::empty(),
    }
}

/// The conversation facts visibility depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConversationScope {
    pub channel_id: ChannelId,
    pub assignee_id: Option<UserId>,
    pub group_id: Option<GroupId>,
}

/// Whether `who` may see a conversation: owners see all of their client's; employees need READ
/// on its channel, and then either the ALL_CONVERSATIONS right, or it is assigned to them, or it
/// is unassigned and either in one of their groups or in no group, or it is in one of their
/// groups. Platform staff and blocked clients: never.
///
/// The scope carries no client: like [`decide`], this assumes the conversation was loaded by a
/// query scoped to the caller's client. Where that is not certain, use [`may_see_in`].
pub fn may_see(who: &Principal, scope: &ConversationScope) -> bool {
    if who.role.is_platform_staff() || who.client_id.is_none() || !who.client_active {
        return false;
    }
    match who.role {
        Role::ClientOwner => true,
        Role::Employee => {
            let reads = who
                .channels
                .get(&scope.channel_id)
                .is_some_and(|r| r.contains(ChannelRights::READ));
            if !reads {
                return false;
            }
            let in_my_group = scope.group_id.is_some_and(|g| who.groups.contains(&g));
            who.global.contains(GlobalRights::ALL_CONVERSATIONS)
                || scope.assignee_id == Some(who.user_id)
                || in_my_group
                // Unassigned and in no group: the common pool every reader of the channel
                // may pick from. Unassigned in another group stays that group's business.
                || (scope.assignee_id.is_none() && scope.group_id.is_none())
        }
        Role::PlatformOwner | Role::PlatformModerator => false,
    }
}

/// [`may_see`] for a conversation of client `client`: false unless it is the caller's own.
pub fn may_see_in(who: &Principal, client: ClientId, scope: &ConversationScope) -> bool {
    who.client_id == Some(client) && may_see(who, scope)
}

/// Whether `who` may write in a conversation (replies, notes, status changes): seeing it and
/// holding REPLY on its channel (owners hold every right).
pub fn may_reply(who: &Principal, scope: &ConversationScope) -> bool {
    may_see(who, scope) && channel_rights(who, scope.channel_id).contains(ChannelRights::REPLY)
}

/// Whether `who` supervises their client's conversations: the owner, or an employee holding
/// ALL_CONVERSATIONS. Supervisors assign, transfer and reassign; operators only take.
pub fn supervises(who: &Principal) -> bool {
    if who.role.is_platform_staff() || who.client_id.is_none() || !who.client_active {
        return false;
    }
    who.role == Role::ClientOwner || who.global.contains(GlobalRights::ALL_CONVERSATIONS)
}

/// Whether `who` may change the assignee of a conversation (as it is now: `scope`) to `new`
/// (`None` unassigns). Supervisor reassignment: a supervisor ([`supervises`]) who sees the
/// conversation may assign anyone, transfer, reassign or release it; anyone else may only take
/// an unassigned conversation they may reply in for themselves. Setting the assignee it already
/// has changes nothing and is allowed to whoever sees the conversation.
pub fn may_assign(who: &Principal, scope: &ConversationScope, new: Option<UserId>) -> bool {
    if !may_see(who, scope) {
        return false;
    }
    if new == scope.assignee_id || supervises(who) {
        return true;
    }
    scope.assignee_id.is_none() && new == Some(who.user_id) && may_reply(who, scope)
}

#[cfg(test)]
mod assignment_tests {
    use super::*;

    fn member(role: Role, rights: ChannelRights, channel: ChannelId) -> Principal {
        let mut channels = HashMap::new();
        channels.insert(channel, rights);
        Principal {
            user_id: UserId::new(),
            role,
            client_id: Some(ClientId::new()),
            client_active: true,
            global: GlobalRights::empty(),
            channels,
            groups: Vec::new(),
        }
    }

    #[test]
    fn operators_take_unassigned_conversations_for_themselves_only() {
        let channel = ChannelId::new();
        let op = member(
            Role::Employee,
            ChannelRights::READ | ChannelRights::REPLY,
            channel,
        );
        let colleague = UserId::new();
        let free = ConversationScope {
            channel_id: channel,
            assignee_id: None,
            group_id: None,
        };
        assert!(may_assign(&op, &free, Some(op.user_id)));
        assert!(!may_assign(&op, &free, Some(colleague)), "assigning others");
        assert!(may_assign(&op, &free, None), "no change");
        let mine = ConversationScope {
            assignee_id: Some(op.user_id),
            ..free
        };
        assert!(!may_assign(&op, &mine, Some(colleague)), "transfer");
        assert!(!may_assign(&op, &mine, None), "release");
        assert!(may_assign(&op, &mine, Some(op.user_id)), "no change");
        let theirs = ConversationScope {
            assignee_id: Some(colleague),
            ..free
        };
        assert!(!may_assign(&op, &theirs, Some(op.user_id)), "not visible");
        // Reading is not enough to take a conversation: taking it means answering it.
        let reader = member(Role::Employee, ChannelRights::READ, channel);
        assert!(!may_assign(&reader, &free, Some(reader.user_id)));
    }

    #[test]
    fn supervisors_reassign_what_they_see() {
        let channel = ChannelId::new();
        let mut sup = member(Role::Employee, ChannelRights::READ, channel);
        sup.global = GlobalRights::ALL_CONVERSATIONS;
        let a = UserId::new();
        let b = UserId::new();
        let held = ConversationScope {
            channel_id: channel,
            assignee_id: Some(a),
            group_id: Some(GroupId::new()),
        };
        assert!(supervises(&sup));
        assert!(may_assign(&sup, &held, Some(b)));
        assert!(may_assign(&sup, &held, None));
        let elsewhere = ConversationScope {
            channel_id: ChannelId::new(),
            ..held
        };
        assert!(
            !may_assign(&sup, &elsewhere, Some(b)),
            "channel not delegated"
        );
        let owner = member(Role::ClientOwner, ChannelRights::empty(), channel);
        assert!(may_assign(&owner, &elsewhere, Some(b)));
        let mut blocked = owner.clone();
        blocked.client_active = false;
        assert!(!supervises(&blocked));
        assert!(!may_assign(&blocked, &held, Some(b)));
        let mut staff = owner;
        staff.role = Role::PlatformOwner;
        staff.client_id = None;
        assert!(!may_assign(&staff, &held, Some(b)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::new(),
            role,
            client_id: (!role.is_platform_staff()).then(ClientId::new),
            client_active: true,
            global: GlobalRights::empty(),
            channels: HashMap::new(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn platform_actions_by_role() {
        let cases = [
            (Action::ViewClients, [true, true, false, false]),
            (Action::BlockClient, [true, true, false, false]),
            (Action::CreateClient, [true, false, false, false]),
            (Action::ManageModerators, [true, false, false, false]),
            (Action::ViewOwnClient, [false, false, true, true]),
            (Action::ManageEmployees, [false, false, true, false]),
            (Action::OwnAccount, [true, true, true, true]),
        ];
        for (action, expected) in cases {
            for (role, allowed) in Role::ALL.into_iter().zip(expected) {
                let got = decide(&principal(role), action) == Decision::Allow;
                assert_eq!(got, allowed, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn employee_global_rights_are_checked_one_by_one() {
        let mut e = principal(Role::Employee);
        e.global = GlobalRights::MANAGE_SETTINGS | GlobalRights::ANALYTICS;
        assert_eq!(decide(&e, Action::ManageSettings), Decision::Allow);
        assert_eq!(decide(&e, Action::ViewAnalytics), Decision::Allow);
        assert_eq!(
            decide(&e, Action::ManageEmployees),
            Decision::Deny(Denial::Forbidden)
        );
        assert_eq!(
            decide(&e, Action::Billing),
            Decision::Deny(Denial::Forbidden)
        );
    }

    #[test]
    fn partial_channel_delegation() {
        let mut e = principal(Role::Employee);
        let read_only = ChannelId::new();
        let full = ChannelId::new();
        e.channels.insert(read_only, ChannelRights::READ);
        e.channels.insert(full, ChannelRights::full());
        let other = ChannelId::new();
        assert_eq!(
            decide(&e, Action::Channel(read_only, ChannelRights::READ)),
            Decision::Allow
        );
        assert_eq!(
            decide(&e, Action::Channel(read_only, ChannelRights::REPLY)),
            Decision::Deny(Denial::Forbidden)
        );
        assert_eq!(
            decide(
                &e,
                Action::Channel(full, ChannelRights::PUBLISH | ChannelRights::DELETE)
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(&e, Action::Channel(other, ChannelRights::READ)),
            Decision::Deny(Denial::NotFound)
        );
        assert_eq!(channel_rights(&e, read_only), ChannelRights::READ);
        assert_eq!(channel_rights(&e, other), ChannelRights::empty());
    }

    #[test]
    fn channel_configuration_is_visible_to_delegates_and_settings_managers() {
        let mut e = principal(Role::Employee);
        let delegated = ChannelId::new();
        let other = ChannelId::new();
        e.channels.insert(delegated, ChannelRights::REPLY);
        assert_eq!(decide(&e, Action::ViewChannel(delegated)), Decision::Allow);
        assert_eq!(
            decide(&e, Action::ViewChannel(other)),
            Decision::Deny(Denial::NotFound)
        );
        e.global = GlobalRights::MANAGE_SETTINGS;
        assert_eq!(decide(&e, Action::ViewChannel(other)), Decision::Allow);
        // Managing settings is not reading conversations.
        assert_eq!(
            decide(&e, Action::Channel(other, ChannelRights::READ)),
            Decision::Deny(Denial::NotFound)
        );
    }

    #[test]
    fn blocked_client_stops_its_members_but_not_their_own_account() {
        for role in [Role::ClientOwner, Role::Employee] {
            let mut p = principal(role);
            p.client_active = false;
            p.global = GlobalRights::all();
            assert_eq!(
                decide(&p, Action::ViewOwnClient),
                Decision::Deny(Denial::ClientBlocked)
            );
            assert_eq!(decide(&p, Action::OwnAccount), Decision::Allow);
            assert_eq!(channel_rights(&p, ChannelId::new()), ChannelRights::empty());
        }
    }

    #[test]
    fn owner_holds_everything_in_own_client() {
        let o = principal(Role::ClientOwner);
        for a in [
            Action::ManageEmployees,
            Action::ManageSettings,
            Action::Billing,
            Action::ViewAnalytics,
            Action::Channel(ChannelId::new(), ChannelRights::full()),
        ] {
            assert_eq!(decide(&o, a), Decision::Allow, "{a:?}");
        }
    }

    /// An employee with READ on one channel, in one group, without ALL_CONVERSATIONS.
    struct World {
        me: Principal,
        channel: ChannelId,
        my_group: GroupId,
        other_group: GroupId,
        colleague: UserId,
    }

    fn world() -> World {
        let mut me = principal(Role::Employee);
        let channel = ChannelId::new();
        let my_group = GroupId::new();
        me.channels.insert(channel, ChannelRights::READ);
        me.groups.push(my_group);
        World {
            me,
            channel,
            my_group,
            other_group: GroupId::new(),
            colleague: UserId::new(),
        }
    }

    #[test]
    fn employee_visibility_table() {
        let w = world();
        let me = Some(w.me.user_id);
        let colleague = Some(w.colleague);
        let mine = Some(w.my_group);
        let other = Some(w.other_group);
        // (assignee, group, visible without ALL_CONVERSATIONS)
        let cases = [
            (None, None, true),
            (None, mine, true),
            (None, other, false),
            (me, None, true),
            (me, mine, true),
            (me, other, true),
            (colleague, None, false),
            (colleague, mine, true),
            (colleague, other, false),
        ];
        for (assignee_id, group_id, visible) in cases {
            let scope = ConversationScope {
                channel_id: w.channel,
                assignee_id,
                group_id,
            };
            assert_eq!(may_see(&w.me, &scope), visible, "{scope:?}");
            // ALL_CONVERSATIONS opens every conversation of a readable channel.
            let mut all = w.me.clone();
            all.global = GlobalRights::ALL_CONVERSATIONS;
            assert!(may_see(&all, &scope), "all: {scope:?}");
            // An owner sees everything, with no delegation at all.
            assert!(
                may_see(&principal(Role::ClientOwner), &scope),
                "owner: {scope:?}"
            );
            // Without READ on the channel nothing is visible, whatever else holds.
            let mut no_read = all.clone();
            no_read
                .channels
                .insert(w.channel, ChannelRights::full() - ChannelRights::READ);
            assert!(!may_see(&no_read, &scope), "no read: {scope:?}");
            let elsewhere = ConversationScope {
                channel_id: ChannelId::new(),
                ..scope
            };
            assert!(!may_see(&all, &elsewhere), "undelegated channel: {scope:?}");
        }
    }

    #[test]
    fn staff_and_blocked_clients_see_nothing() {
        let w = world();
        let scope = ConversationScope {
            channel_id: w.channel,
            assignee_id: None,
            group_id: None,
        };
        for role in [Role::PlatformOwner, Role::PlatformModerator] {
            let mut p = principal(role);
            p.global = GlobalRights::all();
            p.channels.insert(w.channel, ChannelRights::full());
            assert!(!may_see(&p, &scope), "{role:?}");
        }
        for role in [Role::ClientOwner, Role::Employee] {
            let mut p = principal(role);
            p.global = GlobalRights::all();
            p.channels.insert(w.channel, ChannelRights::full());
            assert!(may_see(&p, &scope), "{role:?}");
            p.client_active = false;
            assert!(!may_see(&p, &scope), "blocked {role:?}");
            assert!(!may_reply(&p, &scope), "blocked {role:?}");
        }
    }

    #[test]
    fn visibility_is_limited_to_the_callers_client() {
        let w = world();
        let scope = ConversationScope {
            channel_id: w.channel,
            assignee_id: None,
            group_id: None,
        };
        let own = w.me.client_id.unwrap();
        assert!(may_see_in(&w.me, own, &scope));
        assert!(!may_see_in(&w.me, ClientId::new(), &scope));
        let owner = principal(Role::ClientOwner);
        assert!(!may_see_in(&owner, ClientId::new(), &scope));
        assert!(may_see_in(&owner, owner.client_id.unwrap(), &scope));
    }

    #[test]
    fn replying_needs_sight_and_the_reply_right() {
        let mut w = world();
        let unassigned = ConversationScope {
            channel_id: w.channel,
            assignee_id: None,
            group_id: None,
        };
        let colleagues = ConversationScope {
            assignee_id: Some(w.colleague),
            ..unassigned
        };
        assert!(!may_reply(&w.me, &unassigned), "read only");
        w.me.channels
            .insert(w.channel, ChannelRights::READ | ChannelRights::REPLY);
        assert!(may_reply(&w.me, &unassigned));
        assert!(!may_reply(&w.me, &colleagues), "cannot even see it");
        w.me.channels.insert(w.channel, ChannelRights::REPLY);
        assert!(!may_reply(&w.me, &unassigned), "reply without read");
        assert!(may_reply(&principal(Role::ClientOwner), &colleagues));
    }
}
