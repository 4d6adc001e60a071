//! Roles and rights. Global rights are granted per employee; channel rights per employee *and*
//! per connected channel or profile, so an owner can delegate one profile fully and another only
//! for reading.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who a user is on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the service: tariff plans, clients, moderators, payments.
    PlatformOwner,
    /// Service staff: sees clients read-only and can block or unblock them.
    PlatformModerator,
    /// Bought a subscription: all rights inside their own client.
    ClientOwner,
    /// Works for a client within the rights the owner gave.
    Employee,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::PlatformOwner,
        Role::PlatformModerator,
        Role::ClientOwner,
        Role::Employee,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformOwner => "platform_owner",
            Role::PlatformModerator => "platform_moderator",
            Role::ClientOwner => "client_owner",
            Role::Employee => "employee",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Platform staff belong to no client.
    pub fn is_platform_staff(self) -> bool {
        matches!(self, Role::PlatformOwner | Role::PlatformModerator)
    }
}

/// Declares a bitflags type whose JSON form is a list of stable snake_case names.
macro_rules! named_flags {
    ($(#[$doc:meta])* $name:ident { $($flag:ident = $bit:expr, $text:literal;)+ }) => {
        bitflags::bitflags! {
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
            pub struct $name: u32 {
                $(const $flag = $bit;)+
            }
        }

        impl $name {
            /// Every flag with its stable name, in declaration order.
            pub const NAMED: &'static [($name, &'static str)] = &[$(($name::$flag, $text)),+];

            pub fn names(self) -> Vec<&'static str> {
                Self::NAMED.iter().filter(|(f, _)| self.contains(*f)).map(|(_, n)| *n).collect()
            }

            /// Parses names; an unknown name is an error naming it.
            pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
                names.iter().try_fold(Self::empty(), |acc, name| {
                    let name = name.as_ref();
                    Self::NAMED
                        .iter()
                        .find(|(_, n)| *n == name)
                        .map(|(f, _)| acc | *f)
                        .ok_or_else(|| format!("unknown right `{name}`"))
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.names().serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let names = Vec::<String>::deserialize(d)?;
                Self::from_names(&names).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
                ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some([$($text),+])),
                    )
                    .unique_items(true)
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

named_flags!(
    /// Rights over the client as a whole.
    GlobalRights {
        // Invite and remove employees, set their groups and rights.
        MANAGE_EMPLOYEES = 1 << 0, "manage_employees";
        // Change settings, connect channels and profiles, manage API tokens.
        MANAGE_SETTINGS = 1 << 1, "manage_settings";
        // See invoices, change the tariff plan, pay.
        BILLING = 1 << 2, "billing";
        // See every conversation of every delegated channel, not only one's own.
        ALL_CONVERSATIONS = 1 << 3, "all_conversations";
        // See the client's analytics and the audit log.
        ANALYTICS = 1 << 4, "analytics";
        // See and change scheduled tasks (cancel, reschedule, retry) and triggered-task rules.
        SCHEDULING = 1 << 9, "scheduling";
    }
);

named_flags!(
    /// Rights over one connected channel or social profile.
    ChannelRights {
        READ = 1 << 0, "read";
        REPLY = 1 << 1, "reply";
        PUBLISH = 1 << 2, "publish";
        MODERATE = 1 << 3, "moderate";
        DELETE = 1 << 4, "delete";
        ANALYTICS = 1 << 5, "analytics";
        // Approve a social post for publishing (the approval flow's second pair of eyes).
        APPROVE = 1 << 6, "approve";
    }
);

impl ChannelRights {
    /// Full delegation of a channel.
    pub fn full() -> Self {
        Self::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_round_trip_through_names() {
        let r = ChannelRights::READ | ChannelRights::MODERATE;
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"["read","moderate"]"#);
        assert_eq!(serde_json::from_str::<ChannelRights>(&json).unwrap(), r);
    }

    #[test]
    fn unknown_right_is_rejected_by_name() {
        let err = serde_json::from_str::<GlobalRights>(r#"["billing","root"]"#).unwrap_err();
        assert!(err.to_string().contains("unknown right `root`"));
    }

    #[test]
    fn roles_parse_their_own_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
