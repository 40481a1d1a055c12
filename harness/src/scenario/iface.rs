//! References to the lab's interfaces as scenario files write them: `"ns:if"`, or `"ns"` for
//! a namespace's only interface. Resolving one against a topology is
//! [`crate::topology::TopologySpec::resolve`]'s job.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, de};

/// A reference to an interface: `"ns:if"`, or `"ns"` for the only
/// interface of namespace `ns`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfaceRef {
    /// Namespace name.
    pub netns: String,
    /// Interface name; `None` means the namespace's only interface.
    pub interface: Option<String>,
}

impl IfaceRef {
    /// The only interface of `netns`.
    pub fn netns(netns: &str) -> IfaceRef {
        IfaceRef {
            netns: netns.to_owned(),
            interface: None,
        }
    }
}

impl fmt::Display for IfaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.interface {
            Some(interface) => write!(f, "{}:{interface}", self.netns),
            None => f.write_str(&self.netns),
        }
    }
}

impl FromStr for IfaceRef {
    type Err = IfaceRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (netns, interface) = match text.split_once(':') {
            Some((netns, interface)) => (netns, Some(interface)),
            None => (text, None),
        };
        if !valid_netns(netns) {
            return Err(IfaceRefError::Netns {
                text: text.to_owned(),
                name: netns.to_owned(),
            });
        }
        if let Some(interface) = interface
            && !valid_interface(interface)
        {
            return Err(IfaceRefError::Interface {
                text: text.to_owned(),
                name: interface.to_owned(),
            });
        }
        Ok(IfaceRef {
            netns: netns.to_owned(),
            interface: interface.map(str::to_owned),
        })
    }
}

impl<'de> Deserialize<'de> for IfaceRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Longest namespace or interface name (`IFNAMSIZ` - 1).
#[doc(alias = "IFNAMSIZ")]
pub const MAX_NAME_LEN: usize = 15;

fn valid_netns(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What the kernel's `dev_valid_name` accepts, minus `:` (the separator).
fn valid_interface(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// An interface reference that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IfaceRefError {
    /// A namespace name with a bad character or length.
    #[error(
        "invalid namespace name {name:?} in {text:?}: use 1..=15 characters from a-z, 0-9, \"_\" and \"-\""
    )]
    Netns {
        /// The whole reference.
        text: String,
        /// The namespace part.
        name: String,
    },
    /// An interface name the kernel would refuse.
    #[error(
        "invalid interface name {name:?} in {text:?}: use 1..=15 bytes without \"/\", \":\" or \
         whitespace, not \".\" or \"..\""
    )]
    Interface {
        /// The whole reference.
        text: String,
        /// The interface part.
        name: String,
    },
    /// A link end given as a bare namespace.
    #[error("{text:?} names no interface: a link end is \"namespace:interface\"")]
    NoInterface {
        /// The whole reference.
        text: String,
    },
}
