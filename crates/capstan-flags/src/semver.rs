//! Semantic versions as flagd's `sem_ver` operator reads them.
//!
//! flagd compares with Go's `golang.org/x/mod/semver` after putting a `v` in front, so it
//! accepts an optional `v` (here also `V`), the shorthands `1` and `1.2` for `1.0.0` and
//! `1.2.0`, rejects leading zeros, and ignores build metadata. `^` and `~` ask for the same
//! major, or the same major and minor, version.

use std::cmp::Ordering;

/// A parsed version borrowing its pre-release part from the text it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version<'s> {
    major: u64,
    minor: u64,
    patch: u64,
    /// Dot-separated pre-release identifiers, empty for a release.
    pre_release: &'s str,
}

/// A version kept inside the compiled rules when the operand is a constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre_release: Box<str>,
}

impl OwnedVersion {
    pub(crate) fn parse(text: &str) -> Option<OwnedVersion> {
        let version = Version::parse(text)?;
        Some(OwnedVersion {
            major: version.major,
            minor: version.minor,
            patch: version.patch,
            pre_release: version.pre_release.into(),
        })
    }

    pub(crate) fn as_version(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre_release: &self.pre_release,
        }
    }
}

impl<'s> Version<'s> {
    pub(crate) fn parse(text: &'s str) -> Option<Version<'s>> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let (core, build) = match text.split_once('+') {
            Some((core, build)) => (core, Some(build)),
            None => (text, None),
        };
        let (numbers, pre_release) = match core.split_once('-') {
            Some((numbers, pre_release)) => (numbers, Some(pre_release)),
            None => (core, None),
        };
        let mut parts = numbers.split('.');
        let major = parse_number(parts.next()?)?;
        let minor = parts.next().map(parse_number);
        let patch = parts.next().map(parse_number);
        if parts.next().is_some() {
            return None;
        }
        let full = patch.is_some();
        // Go's semver allows pre-release and build only on a full major.minor.patch.
        if !full && (pre_release.is_some() || build.is_some()) {
            return None;
        }
        let valid_pre_release = pre_release
            .is_none_or(|pre_release| pre_release.split('.').all(valid_pre_release_identifier));
        let valid_build = build.is_none_or(|build| build.split('.').all(valid_build_identifier));
        if !valid_pre_release || !valid_build {
            return None;
        }
        Some(Version {
            major,
            minor: minor.unwrap_or(Some(0))?,
            patch: patch.unwrap_or(Some(0))?,
            pre_release: pre_release.unwrap_or(""),
        })
    }

    pub(crate) fn compare(&self, other: &Version<'_>) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre_release(self.pre_release, other.pre_release))
    }
}

fn parse_number(text: &str) -> Option<u64> {
    let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

fn valid_pre_release_identifier(identifier: &str) -> bool {
    valid_build_identifier(identifier)
        && !(identifier.len() > 1 && identifier.starts_with('0') && is_numeric(identifier))
}

fn valid_build_identifier(identifier: &str) -> bool {
    !identifier.is_empty()
        && identifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn is_numeric(identifier: &str) -> bool {
    identifier.bytes().all(|byte| byte.is_ascii_digit())
}

/// Semantic Versioning 2.0 precedence: a release ranks above its pre-releases, numeric
/// identifiers compare as numbers and below alphanumeric ones, and a longer list of
/// otherwise equal identifiers ranks higher.
fn compare_pre_release(left: &str, right: &str) -> Ordering {
    match (left.is_empty(), right.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left_identifiers = left.split('.');
    let mut right_identifiers = right.split('.');
    loop {
        match (left_identifiers.next(), right_identifiers.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(left), Some(right)) => {
                let order = match (is_numeric(left), is_numeric(right)) {
                    // Without leading zeros, a longer number is a larger one.
                    (true, true) => left.len().cmp(&right.len()).then_with(|| left.cmp(right)),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => left.cmp(right),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// The comparisons `sem_ver` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SemVerOperator {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    SameMajor,
    SameMinor,
}

impl SemVerOperator {
    pub(crate) fn parse(text: &str) -> Option<SemVerOperator> {
        Some(match text {
            "=" => SemVerOperator::Equal,
            "!=" => SemVerOperator::NotEqual,
            "<" => SemVerOperator::Less,
            "<=" => SemVerOperator::LessOrEqual,
            ">" => SemVerOperator::Greater,
            ">=" => SemVerOperator::GreaterOrEqual,
            "^" => SemVerOperator::SameMajor,
            "~" => SemVerOperator::SameMinor,
            _ => return None,
        })
    }

    pub(crate) fn holds(self, left: &Version<'_>, right: &Version<'_>) -> bool {
        let order = left.compare(right);
        match self {
            SemVerOperator::Equal => order == Ordering::Equal,
            SemVerOperator::NotEqual => order != Ordering::Equal,
            SemVerOperator::Less => order == Ordering::Less,
            SemVerOperator::LessOrEqual => order != Ordering::Greater,
            SemVerOperator::Greater => order == Ordering::Greater,
            SemVerOperator::GreaterOrEqual => order != Ordering::Less,
            SemVerOperator::SameMajor => left.major == right.major,
            SemVerOperator::SameMinor => left.major == right.major && left.minor == right.minor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(left: &str, operator: &str, right: &str) -> bool {
        let operator = SemVerOperator::parse(operator).unwrap();
        operator.holds(
            &Version::parse(left).unwrap(),
            &Version::parse(right).unwrap(),
        )
    }

    #[test]
    fn accepts_what_flagd_accepts() {
        for text in [
            "1.2.3",
            "v1.2.3",
            "V1.2.3",
            "1",
            "1.2",
            "1.0.0-alpha.1",
            "1.0.0+build.5",
            "0.0.0",
        ] {
            assert!(Version::parse(text).is_some(), "{text}");
        }
        for text in [
            "",
            "v",
            "1.2.3.4",
            "01.2.3",
            "1.02",
            "1.2-pre",
            "1.0.0-",
            "1.0.0-01",
            "not-a-version",
            "1..2",
        ] {
            assert!(Version::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn orders_by_semantic_version_precedence() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1",
            "2",
        ];
        for pair in ordered.windows(2) {
            assert!(holds(pair[0], "<", pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(holds(pair[1], ">", pair[0]), "{} > {}", pair[1], pair[0]);
        }
        assert!(holds("1.0.0+a", "=", "1.0.0+b"));
        assert!(holds("1", "=", "1.0.0"));
    }

    #[test]
    fn caret_and_tilde_compare_major_and_minor() {
        assert!(holds("3.1.0", "^", "3.0.0"));
        assert!(!holds("4.0.0", "^", "3.0.0"));
        assert!(holds("3.0.1", "~", "3.0.0"));
        assert!(!holds("3.1.0", "~", "3.0.0"));
    }
}
