use std::fmt;

/// Why a key was refused; the HTTP layer names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidKey(String);

fn check(kind: &str, text: &str, max_len: usize) -> Result<(), InvalidKey> {
    if text.is_empty() {
        return Err(InvalidKey(format!("{kind} must not be empty")));
    }
    if text.len() > max_len {
        return Err(InvalidKey(format!(
            "{kind} must be at most {max_len} characters"
        )));
    }
    let first = text.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err(InvalidKey(format!(
            "{kind} must start with a letter or a digit"
        )));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(InvalidKey(format!(
            "{kind} may contain only letters, digits, '-', '_' and '.', found {bad:?}"
        )));
    }
    Ok(())
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: impl Into<String>) -> Result<Self, InvalidKey> {
                let text = text.into();
                check($kind, &text, $max)?;
                Ok(Self(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Keys hash like the text they hold, so maps keyed by them can be read with a
        // plain `&str` without building a key.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

key_type!(
    /// A project's key, such as `default`.
    ProjectKey, "project key", 64
);
key_type!(
    /// An environment's key, such as `production`.
    EnvironmentKey, "environment key", 64
);
key_type!(
    /// A flag's key, such as `new-checkout`. Mixed case is allowed because flagd files use it.
    FlagKey, "flag key", 128
);
key_type!(
    /// A segment's key: the name its rule is referenced by with `$ref`.
    SegmentKey, "segment key", 128
);
key_type!(
    /// A placement surface's key: a place content appears, such as `home_hero`.
    SurfaceKey, "surface key", 128
);
key_type!(
    /// A token's name, shown in the audit trail as the actor.
    TokenName, "token name", 128
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        assert_eq!(
            FlagKey::parse("new-checkout").unwrap().as_str(),
            "new-checkout"
        );
        assert!(FlagKey::parse("myBoolFlag_2.v1").is_ok());
    }

    #[test]
    fn refuses_bad_keys_with_a_reason() {
        assert_eq!(
            FlagKey::parse("").unwrap_err().to_string(),
            "flag key must not be empty"
        );
        assert_eq!(
            EnvironmentKey::parse("-prod").unwrap_err().to_string(),
            "environment key must start with a letter or a digit"
        );
        assert!(
            ProjectKey::parse("a b")
                .unwrap_err()
                .to_string()
                .contains("' '")
        );
        assert!(FlagKey::parse("x".repeat(129)).is_err());
    }
}
