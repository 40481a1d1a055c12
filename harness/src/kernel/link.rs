//! XDP bpf_links as kernel objects of their own: pinned, reopened, updated in place, detached.
//!
//! A bpf_link is what keeps an XDP program on an interface. Operators replace a program
//! without a traffic gap by updating the link (`BPF_LINK_UPDATE`): the kernel swaps the
//! program pointer atomically, so every frame meets either the old program or the new one.
//! Pinning the link in a bpffs lets it outlive the process that made it, and lets a
//! restarted control plane find it again (`BPF_OBJ_GET`).
//!
//! aya 0.14 keeps a link's descriptor private and closes it (detaching the program) when an
//! update fails, so the link commands here are the plain `bpf(2)` ones on a descriptor of our
//! own, obtained from the pin. An [`XdpLink`] is therefore always pinned: dropping it closes
//! our descriptor and leaves the program attached while the pin exists; [`XdpLink::unpin`]
//! and [`XdpLink::detach`] end it.

use std::{
    ffi::CString,
    fmt,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use thiserror::Error;

use crate::kernel::program::{Attachment, XdpMode};

/// An error from a link command.
#[derive(Debug, Error)]
pub enum LinkError {
    /// A `bpf(2)` link command failed.
    #[error("failed to {op} xdp link {}: {source}", path.display())]
    Syscall {
        /// What was being done (`"pin"`, `"open pinned"`, `"update"`, ...).
        op: &'static str,
        /// The link's pin.
        path: PathBuf,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// The pin holds something other than an XDP link.
    #[error("failed to open xdp link {}: it is a link of type {kind}, not XDP", path.display())]
    NotXdp {
        /// The pin.
        path: PathBuf,
        /// `enum bpf_link_type`.
        kind: u32,
    },
    /// The program on the link was not the one the update expected (`BPF_F_REPLACE`).
    #[error(
        "failed to update xdp link {}: it runs program id {actual}, not the expected id {expected}",
        path.display()
    )]
    Replaced {
        /// The pin.
        path: PathBuf,
        /// The program id the caller expected.
        expected: u32,
        /// The program id the link runs.
        actual: u32,
    },
}

impl LinkError {
    /// The errno, for classification.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Syscall { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// What the kernel says about a link (`bpftool link show`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpLinkInfo {
    /// The link's id.
    pub id: u32,
    /// The program it runs.
    pub prog_id: u32,
    /// The interface, in the namespace it was made in; 0 once detached.
    pub ifindex: u32,
}

impl XdpLinkInfo {
    /// Whether the link still holds an interface.
    pub fn is_attached(&self) -> bool {
        self.ifindex != 0
    }
}

/// A pinned XDP bpf_link, held through a descriptor of our own.
pub struct XdpLink {
    fd: OwnedFd,
    path: PathBuf,
}

impl fmt::Debug for XdpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpLink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `enum bpf_link_type`: `BPF_LINK_TYPE_XDP`.
const BPF_LINK_TYPE_XDP: u32 = 6;

impl XdpLink {
    /// Pins an attachment's link at `path` in a bpffs (`bpftool link pin`) and holds it from
    /// there. The program stays attached until the pin is removed or the link detached.
    pub fn pin(attachment: Attachment, path: &Path) -> Result<Self, LinkError> {
        let mode: XdpMode = attachment.mode();
        let link = attachment.into_link();
        let pinned = link.pin(path).map_err(|e| LinkError::Syscall {
            op: "pin",
            path: path.to_owned(),
            source: std::io::Error::other(format!("{e} ({mode} mode)")),
        })?;
        // Our own descriptor from the pin; aya's closes when `pinned` drops, the pin keeps the
        // link alive in between.
        let link = Self::open(path)?;
        drop(pinned);
        Ok(link)
    }

    /// Opens the link pinned at `path` (`BPF_OBJ_GET`), as a restarted process does.
    pub fn open(path: &Path) -> Result<Self, LinkError> {
        let fd = sys::obj_get(path).map_err(|source| LinkError::Syscall {
            op: "open pinned",
            path: path.to_owned(),
            source,
        })?;
        let link = Self {
            fd,
            path: path.to_owned(),
        };
        let kind = link.kind()?;
        if kind != BPF_LINK_TYPE_XDP {
            return Err(LinkError::NotXdp {
                path: path.to_owned(),
                kind,
            });
        }
        Ok(link)
    }

    /// The pin.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The link's id, program and interface (`BPF_OBJ_GET_INFO_BY_FD`).
    pub fn info(&self) -> Result<XdpLinkInfo, LinkError> {
        let raw = sys::link_info(self.fd.as_fd()).map_err(|source| LinkError::Syscall {
            op: "read info of",
            path: self.path.clone(),
            source,
        })?;
        Ok(XdpLinkInfo {
            id: raw.id,
            prog_id: raw.prog_id,
            ifindex: raw.ifindex,
        })
    }

    fn kind(&self) -> Result<u32, LinkError> {
        sys::link_info(self.fd.as_fd())
            .map(|raw| raw.kind)
            .map_err(|source| LinkError::Syscall {
                op: "read info of",
                path: self.path.clone(),
                source,
            })
    }

    /// Swaps the link's program for `new` atomically (`bpftool link update`, in the kernel
    /// `BPF_LINK_UPDATE`): every frame meets either the old program or the new one. With
    /// `expected`, the swap happens only if the link still runs that program
    /// (`BPF_F_REPLACE`), so two control planes cannot overwrite each other unseen.
    pub fn update(
        &self,
        new: BorrowedFd<'_>,
        expected: Option<(BorrowedFd<'_>, u32)>,
    ) -> Result<(), LinkError> {
        match sys::link_update(self.fd.as_fd(), new, expected.map(|(fd, _)| fd)) {
            Ok(()) => Ok(()),
            // The kernel answers EPERM when the expected program is not the current one.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && expected.is_some() => {
                let actual = self.info()?.prog_id;
                let expected_id = expected.map_or(0, |(_, id)| id);
                if actual == expected_id {
                    Err(LinkError::Syscall {
                        op: "update",
                        path: self.path.clone(),
                        source: e,
                    })
                } else {
                    Err(LinkError::Replaced {
                        path: self.path.clone(),
                        expected: expected_id,
                        actual,
                    })
                }
            }
            Err(source) => Err(LinkError::Syscall {
                op: "update",
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Detaches the program from the interface now, even while the link is pinned
    /// (`BPF_LINK_DETACH`). The link object stays, defunct, until its pin and descriptors go.
    pub fn detach(&self) -> Result<(), LinkError> {
        sys::link_detach(self.fd.as_fd()).map_err(|source| LinkError::Syscall {
            op: "detach",
            path: self.path.clone(),
            source,
        })
    }

    /// Removes the pin (`rm PIN`) and closes our descriptor: the link, and with it the
    /// attachment, is gone once no other process holds it.
    pub fn unpin(self) -> Result<(), LinkError> {
        std::fs::remove_file(&self.path).map_err(|source| LinkError::Syscall {
            op: "unpin",
            path: self.path.clone(),
            source,
        })
    }
}

/// The `bpf(2)` object and link commands, on raw descriptors.
mod sys {
    use super::*;

    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const BPF_LINK_UPDATE: libc::c_long = 29;
    const BPF_LINK_DETACH: libc::c_long = 34;
    const BPF_F_REPLACE: u32 = 1 << 2;

    /// Large enough for any `union bpf_attr` member used here; the kernel checks that bytes
    /// past the member it reads are zero.
    #[repr(C, align(8))]
    struct Attr([u8; 64]);

    impl Attr {
        fn new() -> Self {
            Self([0; 64])
        }
        fn u32_at(&mut self, offset: usize, value: u32) -> &mut Self {
            self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
            self
        }
        fn u64_at(&mut self, offset: usize, value: u64) -> &mut Self {
            self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
            self
        }
    }

    fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<libc::c_long> {
        // SAFETY: attr is a zeroed, fully initialised bpf_attr prefix of the size given; the
        // pointers in it (path, info buffer) outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr.0.as_mut_ptr(),
                std::mem::size_of::<Attr>(),
            )
        };
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    fn raw(fd: BorrowedFd<'_>) -> u32 {
        fd.as_raw_fd() as u32
    }

    pub(super) fn obj_get(path: &Path) -> std::io::Result<OwnedFd> {
        use std::os::unix::ffi::OsStrExt as _;
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // struct { __aligned_u64 pathname; __u32 bpf_fd; __u32 file_flags; }
        let fd = bpf(BPF_OBJ_GET, Attr::new().u64_at(0, path.as_ptr() as u64))?;
        // SAFETY: BPF_OBJ_GET returned a fresh descriptor that nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// The start of `struct bpf_link_info`: type, id, prog_id, then (8-aligned) the
    /// per-type union, whose `xdp` member is the ifindex.
    pub(super) struct RawLinkInfo {
        pub(super) kind: u32,
        pub(super) id: u32,
        pub(super) prog_id: u32,
        pub(super) ifindex: u32,
    }

    pub(super) fn link_info(fd: BorrowedFd<'_>) -> std::io::Result<RawLinkInfo> {
        let mut info = [0u8; 64];
        // struct { __u32 bpf_fd; __u32 info_len; __aligned_u64 info; }
        bpf(
            BPF_OBJ_GET_INFO_BY_FD,
            Attr::new()
                .u32_at(0, raw(fd))
                .u32_at(4, info.len() as u32)
                .u64_at(8, info.as_mut_ptr() as u64),
        )?;
        let word = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().expect("4 bytes"));
        Ok(RawLinkInfo {
            kind: word(0),
            id: word(4),
            prog_id: word(8),
            ifindex: word(16),
        })
    }

    pub(super) fn link_update(
        link: BorrowedFd<'_>,
        new: BorrowedFd<'_>,
        old: Option<BorrowedFd<'_>>,
    ) -> std::io::Result<()> {
        // struct { __u32 link_fd; __u32 new_prog_fd; __u32 flags; __u32 old_prog_fd; }
        let mut attr = Attr::new();
        attr.u32_at(0, raw(link)).u32_at(4, raw(new));
        if let Some(old) = old {
            attr.u32_at(8, BPF_F_REPLACE).u32_at(12, raw(old));
        }
        bpf(BPF_LINK_UPDATE, &mut attr).map(drop)
    }

    pub(super) fn link_detach(link: BorrowedFd<'_>) -> std::io::Result<()> {
        // struct { __u32 link_fd; }
        bpf(BPF_LINK_DETACH, Attr::new().u32_at(0, raw(link))).map(drop)
    }
}
