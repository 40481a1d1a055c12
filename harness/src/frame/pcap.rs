//! Capture files: reading Ethernet captures to replay as send groups, and
//! writing what the harness saw for a human to open in Wireshark.
//!
//! Two formats, told apart by their first bytes: classic pcap (what
//! `tcpdump -w` writes; both byte orders, microsecond and nanosecond
//! timestamps) and pcapng (what Wireshark and dumpcap write by default; read
//! and written through the `pcap-file` crate). Only link type 1 (Ethernet)
//! without FCS, which is what xdplab sends.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};

/// Link type of Ethernet frames (`LINKTYPE_ETHERNET`, `DLT_EN10MB`).
#[doc(alias = "DLT_EN10MB")]
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snapshot length [`PcapWriter`] declares, libpcap's maximum.
pub const SNAPLEN: u32 = 262_144;
/// Longest record [`read`] accepts, whatever the file's snapshot length says
/// (libpcap's limit for Ethernet).
pub const MAX_RECORD_LEN: u32 = 262_144;

/// Magic number of a file with microsecond timestamps, as written.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic number of a file with nanosecond timestamps, as written.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Block type of a pcapng section header block, the first bytes of every pcapng file (the
/// same in both byte orders).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// Bits of the link-type field holding the link type (`LT_LINKTYPE`).
const LINKTYPE_MASK: u32 = 0x03ff_ffff;
/// Flag in the link-type field: records end with an FCS (`LT_FCS_DATAFLAG`).
const FCS_FLAG: u32 = 0x0400_0000;

/// Everything that can go wrong reading or writing a pcap file. Every
/// message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file cannot be opened or read.
    #[error("cannot read pcap file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file cannot be created or written.
    #[error("cannot write pcap file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file starts with neither a classic pcap header nor a pcapng section header.
    #[error("{} is not a pcap or pcapng file ({reason})", path.display())]
    NotPcap {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: String,
    },
    /// The capture is not of Ethernet frames.
    #[error("{}: link type {linktype} is not ethernet ({LINKTYPE_ETHERNET})", path.display())]
    LinkType {
        /// The file.
        path: PathBuf,
        /// The file's link type.
        linktype: u32,
    },
    /// The records carry the frame check sequence, which xdplab never sends.
    #[error("{}: records end with an fcs; xdplab sends frames without one", path.display())]
    Fcs {
        /// The file.
        path: PathBuf,
    },
    /// The file ends inside a record.
    #[error("{}: record {record} is truncated (the file ends inside it)", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// 1-based number of the record, as Wireshark numbers frames.
        record: usize,
    },
    /// A record claims more bytes than any capture holds.
    #[error("{}: record {record} claims {len} bytes, more than {MAX_RECORD_LEN}", path.display())]
    RecordTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based number of the record.
        record: usize,
        /// The captured length it claims.
        len: u32,
    },
    /// A pcapng file the `pcap-file` crate cannot read past a block.
    #[error("{}: pcapng block after packet {packets}: {reason}", path.display())]
    PcapNg {
        /// The file.
        path: PathBuf,
        /// Packets read before the bad block.
        packets: usize,
        /// What the parser said.
        reason: String,
    },
    /// A pcapng packet names an interface no interface description block declared.
    #[error("{}: packet {record} names interface {interface}, which the file does not describe", path.display())]
    NoInterface {
        /// The file.
        path: PathBuf,
        /// 1-based number of the packet.
        record: usize,
        /// The interface id it names.
        interface: u32,
    },
    /// A timestamp that a pcap record cannot hold.
    #[error(
        "cannot write pcap file {}: timestamp is outside 1970..2106, which pcap cannot hold",
        path.display()
    )]
    Timestamp {
        /// The file.
        path: PathBuf,
    },
}

/// Reads every frame of a pcap or pcapng capture of Ethernet frames, in file
/// order.
///
/// Classic pcap: both byte orders and both microsecond and nanosecond magic
/// numbers. pcapng: every section, enhanced, simple and (obsolete) packet
/// blocks, each interface's link type, snapshot length and FCS length checked.
/// A record longer than its snapshot length is cut to it (libpcap does the
/// same); frames the capture cut are returned as captured.
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>, PcapError> {
    let data = crate::input::read(path, crate::input::InputKind::Capture).map_err(|source| {
        PcapError::Read {
            path: path.to_owned(),
            source,
        }
    })?;
    parse(&data, path)
}

/// Reads the frames in `data`, the contents of `path`.
fn parse(data: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, PcapError> {
    if data.starts_with(&PCAPNG_MAGIC) {
        return parse_pcapng(data, path);
    }
    let not_pcap = |reason: String| PcapError::NotPcap {
        path: path.to_owned(),
        reason,
    };
    let Some(header) = data.get(..GLOBAL_HEADER_LEN) else {
        return Err(not_pcap(format!(
            "{} bytes, shorter than a pcap header",
            data.len()
        )));
    };
    let magic = [header[0], header[1], header[2], header[3]];
    let big_endian = if [MAGIC_MICROS, MAGIC_NANOS].contains(&u32::from_be_bytes(magic)) {
        true
    } else if [MAGIC_MICROS, MAGIC_NANOS].contains(&u32::from_le_bytes(magic)) {
        false
    } else {
        return Err(not_pcap(format!(
            "unknown magic number {:#010x}",
            u32::from_be_bytes(magic)
        )));
    };
    let u16_at = |bytes: &[u8], at: usize| {
        let b = [bytes[at], bytes[at + 1]];
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |bytes: &[u8], at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let major = u16_at(header, 4);
    if major != 2 {
        return Err(not_pcap(format!("format version {major}, not 2")));
    }
    // A snapshot length of 0 (some writers) means no limit.
    let snaplen = match u32_at(header, 16) {
        0 => MAX_RECORD_LEN,
        n => n,
    };
    let network = u32_at(header, 20);
    let linktype = network & LINKTYPE_MASK;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError::LinkType {
            path: path.to_owned(),
            linktype,
        });
    }
    if network & FCS_FLAG != 0 {
        return Err(PcapError::Fcs {
            path: path.to_owned(),
        });
    }

    let mut frames = Vec::new();
    let mut rest = &data[GLOBAL_HEADER_LEN..];
    while !rest.is_empty() {
        let record = frames.len() + 1;
        let truncated = || PcapError::Truncated {
            path: path.to_owned(),
            record,
        };
        let record_header = rest.get(..RECORD_HEADER_LEN).ok_or_else(truncated)?;
        let incl_len = u32_at(record_header, 8);
        if incl_len > MAX_RECORD_LEN {
            return Err(PcapError::RecordTooLong {
                path: path.to_owned(),
                record,
                len: incl_len,
            });
        }
        // At most 256 KiB, checked above: fits usize.
        let len = incl_len as usize;
        let body = rest
            .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)
            .ok_or_else(truncated)?;
        let kept = len.min(snaplen as usize);
        frames.push(body[..kept].to_vec());
        rest = &rest[RECORD_HEADER_LEN + len..];
    }
    Ok(frames)
}

/// Reads the frames of a pcapng file.
fn parse_pcapng(data: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, PcapError> {
    let mut reader = PcapNgReader::new(data).map_err(|e| PcapError::NotPcap {
        path: path.to_owned(),
        reason: format!("bad pcapng section header: {e}"),
    })?;
    let mut frames = Vec::new();
    while let Some(block) = reader.next_block() {
        let record = frames.len() + 1;
        let block = block.map_err(|e| PcapError::PcapNg {
            path: path.to_owned(),
            packets: frames.len(),
            reason: e.to_string(),
        })?;
        // (interface id, captured bytes, original length)
        let (interface, bytes, original) = match block {
            Block::InterfaceDescription(idb) => {
                check_interface(&idb, path)?;
                continue;
            }
            Block::EnhancedPacket(p) => (p.interface_id, p.data.into_owned(), p.original_len),
            Block::Packet(p) => (
                u32::from(p.interface_id),
                p.data.into_owned(),
                p.original_len,
            ),
            // A simple packet block belongs to the section's first interface.
            Block::SimplePacket(p) => (0, p.data.into_owned(), p.original_len),
            _ => continue,
        };
        let idb =
            reader
                .interfaces()
                .get(interface as usize)
                .ok_or_else(|| PcapError::NoInterface {
                    path: path.to_owned(),
                    record,
                    interface,
                })?;
        let snaplen = match idb.snaplen {
            0 => MAX_RECORD_LEN,
            n => n.min(MAX_RECORD_LEN),
        };
        if bytes.len() > MAX_RECORD_LEN as usize {
            return Err(PcapError::RecordTooLong {
                path: path.to_owned(),
                record,
                len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            });
        }
        // A simple packet block's data runs to the block's end, padding included; its
        // captured length is the original length cut at the snapshot length.
        let mut bytes = bytes;
        bytes.truncate(bytes.len().min(snaplen as usize).min(original as usize));
        frames.push(bytes);
    }
    Ok(frames)
}

/// An interface of a pcapng file must carry Ethernet frames without FCS.
fn check_interface(idb: &InterfaceDescriptionBlock<'_>, path: &Path) -> Result<(), PcapError> {
    if idb.linktype != DataLink::ETHERNET {
        return Err(PcapError::LinkType {
            path: path.to_owned(),
            linktype: u32::from(idb.linktype),
        });
    }
    let fcs = idb
        .options
        .iter()
        .any(|o| matches!(o, InterfaceDescriptionOption::IfFcsLen(n) if *n > 0));
    if fcs {
        return Err(PcapError::Fcs {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The format [`PcapWriter`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic pcap (`tcpdump -w`), files named `*.pcap`.
    #[default]
    Pcap,
    /// pcapng (Wireshark's and dumpcap's default), files named `*.pcapng`, with the
    /// interface's name recorded.
    PcapNg,
}

impl CaptureFormat {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pcap => "pcap",
            Self::PcapNg => "pcapng",
        }
    }
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for CaptureFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pcap" => Ok(Self::Pcap),
            "pcapng" => Ok(Self::PcapNg),
            other => Err(format!(
                "unknown capture format {other:?} (expected pcap or pcapng)"
            )),
        }
    }
}

/// Writes a capture file of Ethernet frames: classic pcap (little-endian,
/// microsecond timestamps, snapshot length [`SNAPLEN`]) or pcapng (one
/// interface, nanosecond timestamps, the same snapshot length).
///
/// Call [`PcapWriter::finish`] to learn whether the last bytes reached the
/// file; dropping the writer flushes too, but cannot report a failure.
pub struct PcapWriter {
    path: PathBuf,
    out: Out,
}

enum Out {
    Pcap(BufWriter<File>),
    PcapNg(PcapNgWriter<BufWriter<File>>),
}

impl fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PcapWriter {
    /// Creates (or truncates) `path` and writes a classic pcap file header.
    pub fn create(path: &Path) -> Result<Self, PcapError> {
        Self::create_as(path, CaptureFormat::Pcap, "")
    }

    /// Creates (or truncates) `path` and writes the header of `format`; a pcapng file records
    /// `interface` as the name of its one interface (when not empty).
    pub fn create_as(
        path: &Path,
        format: CaptureFormat,
        interface: &str,
    ) -> Result<Self, PcapError> {
        let write_error = |source| PcapError::Write {
            path: path.to_owned(),
            source,
        };
        let file = BufWriter::new(File::create(path).map_err(write_error)?);
        if format == CaptureFormat::PcapNg {
            let ng_error = |e: pcap_file::PcapError| PcapError::Write {
                path: path.to_owned(),
                source: io::Error::other(e.to_string()),
            };
            let mut ng = PcapNgWriter::new(file).map_err(ng_error)?;
            let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, SNAPLEN);
            if !interface.is_empty() {
                idb.options.push(InterfaceDescriptionOption::IfName(
                    interface.to_owned().into(),
                ));
            }
            // Timestamps in nanoseconds (if_tsresol 9).
            idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
            ng.write_block(&Block::InterfaceDescription(idb))
                .map_err(ng_error)?;
            return Ok(PcapWriter {
                path: path.to_owned(),
                out: Out::PcapNg(ng),
            });
        }
        let mut out = file;
        let mut header = Vec::with_capacity(GLOBAL_HEADER_LEN);
        header.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
        header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header).map_err(write_error)?;
        Ok(PcapWriter {
            path: path.to_owned(),
            out: Out::Pcap(out),
        })
    }

    /// Appends one frame seen at `timestamp`. A frame longer than
    /// [`SNAPLEN`] is cut to it, its original length kept in the record.
    pub fn write(&mut self, frame: &[u8], timestamp: SystemTime) -> Result<(), PcapError> {
        let since_epoch =
            timestamp
                .duration_since(UNIX_EPOCH)
                .map_err(|_| PcapError::Timestamp {
                    path: self.path.clone(),
                })?;
        let seconds = u32::try_from(since_epoch.as_secs()).map_err(|_| PcapError::Timestamp {
            path: self.path.clone(),
        })?;
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let out = match &mut self.out {
            Out::Pcap(out) => out,
            Out::PcapNg(ng) => {
                let packet = EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: since_epoch,
                    original_len: orig_len,
                    // incl_len is at most SNAPLEN, which fits usize.
                    data: frame[..incl_len as usize].into(),
                    options: Vec::new(),
                };
                return ng
                    .write_block(&Block::EnhancedPacket(packet))
                    .map(drop)
                    .map_err(|e| PcapError::Write {
                        path: self.path.clone(),
                        source: io::Error::other(e.to_string()),
                    });
            }
        };
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&seconds.to_le_bytes());
        header[4..8].copy_from_slice(&since_epoch.subsec_micros().to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        let write_error = |source| PcapError::Write {
            path: self.path.clone(),
            source,
        };
        out.write_all(&header).map_err(write_error)?;
        // incl_len is at most SNAPLEN, which fits usize.
        out.write_all(&frame[..incl_len as usize])
            .map_err(write_error)
    }

    /// Flushes everything to the file.
    pub fn finish(self) -> Result<(), PcapError> {
        let flushed = match self.out {
            Out::Pcap(mut out) => out.flush(),
            Out::PcapNg(ng) => ng.into_inner().flush(),
        };
        flushed.map_err(|source| PcapError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::frame::{Endpoints, FrameSpec, FrameTemplate, MacAddr};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("xdplab-pcap-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fixture_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pcap/mixed.pcap")
    }

    /// The frames of `tests/fixtures/pcap/mixed.pcap`: an IPv4 UDP DNS query
    /// to port 53, an IPv6 TCP SYN to port 80 and an ARP request, between the
    /// default lab's two ends, untagged.
    pub(crate) fn mixed_frames() -> Vec<Vec<u8>> {
        let endpoints = Endpoints {
            src_mac: MacAddr::new(0x02, 0x78, 0x6c, 0, 0, 1),
            dst_mac: MacAddr::new(0x02, 0x78, 0x6c, 0, 0, 2),
            src_ipv4: "10.78.0.1".parse().unwrap(),
            dst_ipv4: "10.78.0.2".parse().unwrap(),
            src_ipv6: "fd78:6c::1".parse().unwrap(),
            dst_ipv6: "fd78:6c::2".parse().unwrap(),
        };
        // A query for example.com, type A: 12 bytes of header, 13 of name,
        // 4 of type and class.
        let dns = "12 34 01 00 00 01 00 00 00 00 00 00 \
                   07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01";
        let specs = [
            format!(
                "ipv4 = {{}}\nudp = {{ src-port = 40053, dst-port = 53 }}\n\
                 payload = \"{dns}\"\nsize = 71\n"
            ),
            "ipv6 = {}\ntcp = { dst-port = 80, flags = \"S\" }\nsize = 74\n".to_owned(),
            "arp = {}\neth = { dst = \"ff:ff:ff:ff:ff:ff\" }\nsize = 60\n".to_owned(),
        ];
        specs
            .iter()
            .map(|text| {
                let spec: FrameSpec = toml::from_str(text).unwrap();
                let template = FrameTemplate::build(&spec, &endpoints, 1514).unwrap();
                template.bytes().to_vec()
            })
            .collect()
    }

    fn write_file(path: &Path, frames: &[Vec<u8>], start: SystemTime) {
        let mut writer = PcapWriter::create(path).unwrap();
        for (i, frame) in frames.iter().enumerate() {
            let at = start + Duration::from_micros(1_000 * i as u64 + 7);
            writer.write(frame, at).unwrap();
        }
        writer.finish().unwrap();
    }

    /// 2024-01-01T00:00:00Z.
    fn fixture_start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_704_067_200)
    }

    /// The committed fixture is what the writer makes of [`mixed_frames`].
    /// Regenerate it with `XDPLAB_BLESS=1 cargo test --lib pcap`.
    #[test]
    fn fixture_is_up_to_date() {
        let tmp = TempDir::new("fixture");
        let fresh = tmp.0.join("mixed.pcap");
        write_file(&fresh, &mixed_frames(), fixture_start());
        let fresh = std::fs::read(&fresh).unwrap();
        if std::env::var_os("XDPLAB_BLESS").is_some() {
            std::fs::write(fixture_path(), &fresh).unwrap();
        }
        let committed = std::fs::read(fixture_path()).unwrap();
        assert!(
            committed == fresh,
            "tests/fixtures/pcap/mixed.pcap is stale: rerun with XDPLAB_BLESS=1"
        );
        assert_eq!(read(&fixture_path()).unwrap(), mixed_frames());
    }

    #[test]
    fn mixed_frames_are_what_they_claim() {
        let frames = mixed_frames();
        assert_eq!(
            frames.iter().map(Vec::len).collect::<Vec<_>>(),
            [71, 74, 60]
        );
        assert_eq!(frames[0][12..14], [0x08, 0x00]);
        assert_eq!(frames[0][23], 17);
        assert_eq!(frames[0][36..38], 53u16.to_be_bytes());
        assert_eq!(frames[1][12..14], [0x86, 0xdd]);
        assert_eq!(frames[1][20], 6);
        assert_eq!(frames[1][56..58], 80u16.to_be_bytes());
        assert_eq!(frames[2][12..14], [0x08, 0x06]);
    }

    #[test]
    fn round_trip() {
        let tmp = TempDir::new("round-trip");
        let path = tmp.0.join("x.pcap");
        let frames = vec![vec![0xaa; 14], vec![1; 1514], (0..=255).collect()];
        write_file(&path, &frames, fixture_start());
        assert_eq!(read(&path).unwrap(), frames);

        // An empty capture is a valid file with no frames.
        write_file(&path, &[], fixture_start());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        assert_eq!(read(&path).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn writer_layout() {
        let tmp = TempDir::new("layout");
        let path = tmp.0.join("x.pcap");
        let at = UNIX_EPOCH + Duration::new(0x0102_0304, 5_006_007);
        write_file(&path, &[vec![9; 20]], at);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes[..24],
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0
            ]
        );
        // Seconds, microseconds (5006 + the 7 µs write_file adds), lengths.
        assert_eq!(bytes[24..28], 0x0102_0304u32.to_le_bytes());
        assert_eq!(bytes[28..32], 5_013u32.to_le_bytes());
        assert_eq!(bytes[32..36], 20u32.to_le_bytes());
        assert_eq!(bytes[36..40], 20u32.to_le_bytes());
        assert_eq!(bytes[40..], [9; 20]);
    }

    #[test]
    fn writer_cuts_at_snaplen_and_rejects_odd_times() {
        let tmp = TempDir::new("snaplen");
        let path = tmp.0.join("x.pcap");
        let mut writer = PcapWriter::create(&path).unwrap();
        writer
            .write(&vec![7; SNAPLEN as usize + 10], fixture_start())
            .unwrap();
        let before = UNIX_EPOCH - Duration::from_secs(1);
        let e = writer.write(&[0; 14], before).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot write pcap file {}: timestamp is outside 1970..2106, which pcap cannot hold",
                path.display()
            )
        );
        let late = UNIX_EPOCH + Duration::from_secs(1 << 32);
        assert!(matches!(
            writer.write(&[0; 14], late),
            Err(PcapError::Timestamp { .. })
        ));
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[32..36], SNAPLEN.to_le_bytes());
        assert_eq!(bytes[36..40], (SNAPLEN + 10).to_le_bytes());
        assert_eq!(read(&path).unwrap(), vec![vec![7; SNAPLEN as usize]]);
    }

    /// A capture written by hand: `magic` as given, everything else in the
    /// byte order `be` says.
    fn handmade(
        magic: [u8; 4],
        be: bool,
        snaplen: u32,
        linktype: u32,
        records: &[&[u8]],
    ) -> Vec<u8> {
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = magic.to_vec();
        out.extend_from_slice(&u16b(2));
        out.extend_from_slice(&u16b(4));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(snaplen));
        out.extend_from_slice(&u32b(linktype));
        for (i, record) in records.iter().enumerate() {
            let len = record.len() as u32;
            out.extend_from_slice(&u32b(1_000 + i as u32));
            out.extend_from_slice(&u32b(999_999_999));
            out.extend_from_slice(&u32b(len));
            out.extend_from_slice(&u32b(len + 4));
            out.extend_from_slice(record);
        }
        out
    }

    fn parse_bytes(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        parse(data, Path::new("c.pcap")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_both_byte_orders_and_nanosecond_files() {
        let records: [&[u8]; 2] = [&[1; 20], &[2; 60]];
        let want = vec![vec![1; 20], vec![2; 60]];
        for (magic, be) in [
            ([0xa1, 0xb2, 0xc3, 0xd4], true),
            ([0xd4, 0xc3, 0xb2, 0xa1], false),
            ([0xa1, 0xb2, 0x3c, 0x4d], true),
            ([0x4d, 0x3c, 0xb2, 0xa1], false),
        ] {
            let data = handmade(magic, be, 65535, 1, &records);
            assert_eq!(parse_bytes(&data).unwrap(), want, "{magic:x?}");
        }
    }

    #[test]
    fn snaplen_is_honoured() {
        let data = handmade(
            [0xd4, 0xc3, 0xb2, 0xa1],
            false,
            16,
            1,
            &[&[1; 20], &[2; 10]],
        );
        assert_eq!(parse_bytes(&data).unwrap(), vec![vec![1; 16], vec![2; 10]]);
        // Snapshot length 0 means no limit.
        let data = handmade([0xd4, 0xc3, 0xb2, 0xa1], false, 0, 1, &[&[1; 20]]);
        assert_eq!(parse_bytes(&data).unwrap(), vec![vec![1; 20]]);
    }

    #[test]
    fn bad_files_are_named() {
        let le = [0xd4, 0xc3, 0xb2, 0xa1];
        assert_eq!(
            parse_bytes(&[0; 10]).unwrap_err(),
            "c.pcap is not a pcap or pcapng file (10 bytes, shorter than a pcap header)"
        );
        let mut pcapng = handmade(le, false, 65535, 1, &[]);
        pcapng[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        assert!(
            parse_bytes(&pcapng)
                .unwrap_err()
                .starts_with("c.pcap is not a pcap or pcapng file (bad pcapng section header: "),
        );
        let mut v1 = handmade(le, false, 65535, 1, &[]);
        v1[4] = 1;
        assert!(
            parse_bytes(&v1)
                .unwrap_err()
                .contains("(format version 1, not 2)"),
        );
        assert_eq!(
            parse_bytes(&handmade(le, false, 65535, 113, &[])).unwrap_err(),
            "c.pcap: link type 113 is not ethernet (1)"
        );
        assert_eq!(
            parse_bytes(&handmade(le, false, 65535, 1 | FCS_FLAG, &[])).unwrap_err(),
            "c.pcap: records end with an fcs; xdplab sends frames without one"
        );
        let whole = handmade(le, false, 65535, 1, &[&[1; 20], &[2; 30]]);
        // Cut inside the second record's data, then inside its header.
        for cut in [whole.len() - 1, 24 + 16 + 20 + 5] {
            assert_eq!(
                parse_bytes(&whole[..cut]).unwrap_err(),
                "c.pcap: record 2 is truncated (the file ends inside it)"
            );
        }
        let mut huge = handmade(le, false, 65535, 1, &[&[1; 20]]);
        huge[24 + 8..24 + 12].copy_from_slice(&(MAX_RECORD_LEN + 1).to_le_bytes());
        assert_eq!(
            parse_bytes(&huge).unwrap_err(),
            "c.pcap: record 1 claims 262145 bytes, more than 262144"
        );
        let e = read(Path::new("/nonexistent/x.pcap")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read pcap file /nonexistent/x.pcap: "),
            "{e}"
        );
    }

    fn ng_fixture_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pcap/mixed.pcapng")
    }

    #[test]
    fn reads_pcapng_written_by_editcap() {
        // `editcap -F pcapng mixed.pcap mixed.pcapng` (Wireshark 4.0): a section header, one
        // interface description and three enhanced packet blocks, as Wireshark writes them.
        let data = std::fs::read(ng_fixture_path()).unwrap();
        assert_eq!(data[..4], PCAPNG_MAGIC, "the fixture is pcapng");
        assert_eq!(read(&ng_fixture_path()).unwrap(), mixed_frames());
    }

    #[test]
    fn pcapng_round_trip_names_the_interface() {
        let tmp = TempDir::new("ng-round-trip");
        let file = tmp.0.join("sender.pcapng");
        let mut writer = PcapWriter::create_as(&file, CaptureFormat::PcapNg, "xl-1-2a").unwrap();
        let mut frames = mixed_frames();
        frames.push(vec![0xab; 9014]);
        for (i, frame) in frames.iter().enumerate() {
            let at = fixture_start() + Duration::from_nanos(1_000_001 * i as u64);
            writer.write(frame, at).unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(read(&file).unwrap(), frames);
        let data = std::fs::read(&file).unwrap();
        assert_eq!(data[..4], PCAPNG_MAGIC);
        let name = b"xl-1-2a";
        assert!(
            data.windows(name.len()).any(|w| w == name),
            "the interface name is recorded"
        );
    }

    #[test]
    fn bad_pcapng_interfaces_are_named() {
        let tmp = TempDir::new("ng-bad");
        let write = |name: &str, linktype: DataLink, fcs: Option<u8>, interface: u32| {
            let file = tmp.0.join(name);
            let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
            let mut idb = InterfaceDescriptionBlock::new(linktype, 65535);
            if let Some(n) = fcs {
                idb.options.push(InterfaceDescriptionOption::IfFcsLen(n));
            }
            ng.write_block(&Block::InterfaceDescription(idb)).unwrap();
            let packet = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_secs(1),
                original_len: 60,
                data: vec![7u8; 60].into(),
                options: Vec::new(),
            };
            ng.write_block(&Block::EnhancedPacket(packet)).unwrap();
            let mut bytes = ng.into_inner();
            // The writer refuses an undescribed interface: name it in the bytes instead.
            // Blocks are (type, length, body...): skip the section header and the interface
            // description to reach the packet block's interface id.
            let len_at = |at: usize| u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
            let epb = len_at(0) as usize;
            let epb = epb + len_at(epb) as usize;
            bytes[epb + 8..epb + 12].copy_from_slice(&interface.to_le_bytes());
            std::fs::write(&file, bytes).unwrap();
            read(&file).map_err(|e| e.to_string().replace(&*tmp.0.to_string_lossy(), "D"))
        };
        assert_eq!(
            write("ok.pcapng", DataLink::ETHERNET, None, 0).unwrap(),
            vec![vec![7u8; 60]]
        );
        assert_eq!(
            write("raw.pcapng", DataLink::RAW, None, 0).unwrap_err(),
            "D/raw.pcapng: link type 101 is not ethernet (1)"
        );
        assert_eq!(
            write("fcs.pcapng", DataLink::ETHERNET, Some(4), 0).unwrap_err(),
            "D/fcs.pcapng: records end with an fcs; xdplab sends frames without one"
        );
        assert_eq!(
            write("if.pcapng", DataLink::ETHERNET, None, 3).unwrap_err(),
            "D/if.pcapng: packet 1 names interface 3, which the file does not describe"
        );
        // Cut inside the packet block: the parser's complaint, after the frames before it.
        let whole = std::fs::read(tmp.0.join("ok.pcapng")).unwrap();
        let cut = tmp.0.join("cut.pcapng");
        std::fs::write(&cut, &whole[..whole.len() - 8]).unwrap();
        let e = read(&cut).unwrap_err().to_string();
        assert!(
            e.contains("cut.pcapng: pcapng block after packet 0: "),
            "{e}"
        );
    }
}
