//! What to raise when the kernel refuses a resource: the errno of a refused namespace, veth,
//! map, program or pin turned into the limit that was hit and the knob that moves it, appended
//! to the error that names the object. Such refusals are the machine's (exit 3, by the rule in
//! [`crate::exit`]); the hint is what makes them actionable on a CI runner.

use std::fmt;

/// A kernel resource xdplab asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A network namespace (`unshare(CLONE_NEWNET)`).
    NetNs,
    /// A veth pair or another link (`RTM_NEWLINK`).
    Link,
    /// A BPF map (`BPF_MAP_CREATE`, from loading an object).
    Map,
    /// A BPF program (`BPF_PROG_LOAD`).
    Program,
    /// A pin in bpffs, or the bpffs mount itself.
    Pin,
}

/// The hint for `errno` refused for `resource`: empty when the errno says nothing about a
/// limit, else `"; "` and what to raise. Formats with [`fmt::Display`], so that error messages
/// take it as one more argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint(Option<&'static str>);

impl Hint {
    /// What to raise, if the errno names a limit.
    pub fn text(self) -> Option<&'static str> {
        self.0
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(text) => write!(f, "; {text}"),
            None => Ok(()),
        }
    }
}

/// The hint for `resource` refused with `errno` (none without an errno).
pub fn hint(resource: Resource, errno: Option<i32>) -> Hint {
    use Resource::{Link, Map, NetNs, Pin, Program};
    let Some(errno) = errno else {
        return Hint(None);
    };
    Hint(match (resource, errno) {
        (NetNs, libc::ENOSPC) => Some(
            "the limit on network namespaces is reached: raise user.max_net_namespaces \
             (/proc/sys/user/max_net_namespaces) or remove namespaces other programs left",
        ),
        (Map, libc::ENOMEM) => Some(
            "the kernel refused the map's memory: raise the memory limit of xdplab's cgroup \
             (memory.max; memory.limit_in_bytes on cgroup v1), free memory, or lower the map's \
             max-entries",
        ),
        (Program, libc::ENOMEM) => Some(
            "the kernel refused the program's memory: raise the memory limit of xdplab's \
             cgroup (memory.max; memory.limit_in_bytes on cgroup v1) or free memory",
        ),
        (NetNs | Link | Pin, libc::ENOMEM) => Some(
            "the kernel is out of memory for it: raise the memory limit of xdplab's cgroup \
             (memory.max; memory.limit_in_bytes on cgroup v1) or free memory",
        ),
        (Map | Program, libc::EPERM) => Some(
            "run as root (CAP_BPF and CAP_NET_ADMIN); before Linux 5.11 the kernel also charges \
             BPF memory to the locked-memory limit: raise it (ulimit -l, RLIMIT_MEMLOCK)",
        ),
        (Pin, libc::ENOSPC) => Some(
            "the bpffs holds no more: remove pins left in it (xdplab clean removes its own) or \
             free memory",
        ),
        (_, libc::EMFILE) => Some(
            "the process's open-file limit is reached: raise it (ulimit -n, RLIMIT_NOFILE); \
             every lab holds a few descriptors per interface",
        ),
        (_, libc::ENFILE) => Some(
            "the system's open-file limit is reached: raise fs.file-max or close other programs' \
             files",
        ),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_knob_that_raises_them() {
        let text = |r, e| hint(r, Some(e)).to_string();
        assert!(text(Resource::NetNs, libc::ENOSPC).contains("user.max_net_namespaces"));
        assert!(text(Resource::Map, libc::ENOMEM).contains("memory.max"));
        assert!(text(Resource::Map, libc::ENOMEM).contains("max-entries"));
        assert!(text(Resource::Map, libc::EPERM).contains("RLIMIT_MEMLOCK"));
        assert!(text(Resource::Link, libc::EMFILE).contains("ulimit -n"));
        assert!(text(Resource::Pin, libc::ENOSPC).contains("bpffs"));
        assert!(text(Resource::NetNs, libc::ENOSPC).starts_with("; "));
    }

    #[test]
    fn other_errnos_add_nothing() {
        assert_eq!(hint(Resource::Map, Some(libc::EINVAL)).to_string(), "");
        assert_eq!(hint(Resource::NetNs, None).to_string(), "");
        assert_eq!(hint(Resource::Link, Some(libc::EEXIST)).text(), None);
    }
}
