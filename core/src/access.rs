//! The one place that decides who may do what. HTTP handlers never check rights themselves: they
//! declare an [`Action`] through the typed extractor, which calls [`decide`].

use std::collections::HashMap;

use crate::ids::{ChannelId, ClientId, UserId};
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
        ViewOwnClient | ManageEmployees | ManageSettings | Billing | ViewAnalytics
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

#[cfg(test)]
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
}
