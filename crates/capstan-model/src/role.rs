use std::fmt;

/// What a token may do. Roles are ordered for the management API only: an admin can do
/// what an editor can, an editor what a viewer can. `Sdk` and `Client` are evaluation
/// roles scoped to one environment and reach no management route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Editor,
    Viewer,
    Sdk,
    Client,
    /// Ranks content and sends rewards for one project's placement surfaces.
    Placement,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected one of admin, editor, viewer, sdk, client, placement")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn parse(text: &str) -> Result<Role, UnknownRole> {
        match text {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            "sdk" => Ok(Role::Sdk),
            "client" => Ok(Role::Client),
            "placement" => Ok(Role::Placement),
            other => Err(UnknownRole(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Sdk => "sdk",
            Role::Client => "client",
            Role::Placement => "placement",
        }
    }

    /// Whether this role's tokens are bound to one environment.
    pub fn is_environment_scoped(self) -> bool {
        matches!(self, Role::Sdk | Role::Client)
    }

    /// Whether this role's tokens are bound to one project (and may not manage it).
    pub fn is_project_scoped(self) -> bool {
        matches!(self, Role::Sdk | Role::Client | Role::Placement)
    }

    /// Whether a token of this role may use a management route that needs `required`.
    pub fn can_manage(self, required: Role) -> bool {
        let rank = |role: Role| match role {
            Role::Admin => 3,
            Role::Editor => 2,
            Role::Viewer => 1,
            Role::Sdk | Role::Client | Role::Placement => 0,
        };
        rank(self) > 0 && rank(self) >= rank(required)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_rank() {
        assert!(Role::Admin.can_manage(Role::Editor));
        assert!(Role::Editor.can_manage(Role::Viewer));
        assert!(!Role::Viewer.can_manage(Role::Editor));
        assert!(!Role::Sdk.can_manage(Role::Viewer));
        assert!(!Role::Client.can_manage(Role::Viewer));
        assert!(!Role::Placement.can_manage(Role::Viewer));
    }

    #[test]
    fn parse_round_trip() {
        for role in [
            Role::Admin,
            Role::Editor,
            Role::Viewer,
            Role::Sdk,
            Role::Client,
            Role::Placement,
        ] {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert!(Role::parse("root").is_err());
    }
}
