//! Reading the files a user names (scenarios, objects, captures, results) without letting a
//! wrong path cost the machine: each is checked for its type and read up to a cap that fits
//! its kind.
//!
//! `[program] object = "/dev/zero"` once made xdplab read until the OOM killer ended it. Now a
//! path must name a regular file, or a pipe (process substitution, `<(gunzip -c x.pcap.gz)`,
//! is a deliberate choice), and no kind of input is read past its cap: the error names the
//! file, the cap and the environment variable that raises it. Reading stops at SIGINT or
//! SIGTERM like every other phase (see [`crate::interrupt`]).
//!
//! The errors are [`io::Error`]s, so every caller's existing "failed to read ..." error carries
//! them with the file's name.

use std::{
    fmt,
    fs::File,
    io::{self, Read as _},
    os::unix::fs::FileTypeExt as _,
    path::Path,
};

/// What a file is read as, which sets its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A scenario file (TOML).
    Scenario,
    /// A BPF ELF object.
    Object,
    /// A pcap or pcapng capture to replay.
    Capture,
    /// A results file of `xdplab bench` (JSON).
    Results,
}

impl InputKind {
    /// The cap when its environment variable does not set another.
    pub const fn default_cap(self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self {
            // The largest bundled scenario is under 10 KiB.
            Self::Scenario => 4 * MIB,
            // Objects with BTF and several programs run to a few MiB.
            Self::Object => 256 * MIB,
            // A group may send at most 10 million frames; a replayed capture is held in
            // memory, so it is capped well below what the machine has.
            Self::Capture => 1024 * MIB,
            Self::Results => 64 * MIB,
        }
    }

    /// The environment variable that sets the cap, in bytes.
    pub const fn env(self) -> &'static str {
        match self {
            Self::Scenario => "XDPLAB_MAX_SCENARIO_BYTES",
            Self::Object => "XDPLAB_MAX_OBJECT_BYTES",
            Self::Capture => "XDPLAB_MAX_CAPTURE_BYTES",
            Self::Results => "XDPLAB_MAX_RESULTS_BYTES",
        }
    }

    /// The cap in force: the environment variable's value if it is a number of bytes, else
    /// [`Self::default_cap`].
    pub fn cap(self) -> u64 {
        std::env::var(self.env())
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| self.default_cap())
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scenario => "a scenario file",
            Self::Object => "an object file",
            Self::Capture => "a capture file",
            Self::Results => "a results file",
        })
    }
}

/// Bytes read between two looks at the interrupt flag.
const CHUNK: usize = 1 << 20;

/// Reads `path` as `kind`: a regular file or a pipe, at most [`InputKind::cap`] bytes.
///
/// A directory, a device, a socket or anything else is refused before it is opened for
/// reading, so `/dev/zero` or `/dev/stdin` of a terminal cannot be read forever. A file over
/// the cap is refused by its size before a byte is read; a pipe, whose size is unknown, is read
/// up to the cap and refused there.
pub fn read(path: &Path, kind: InputKind) -> io::Result<Vec<u8>> {
    // Follows symlinks: a link to a regular file is that file; a loop fails here (ELOOP).
    let metadata = std::fs::metadata(path)?;
    let file_type = metadata.file_type();
    let pipe = file_type.is_fifo();
    if !file_type.is_file() && !pipe {
        let what = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file or a pipe ({kind} must be one)"),
        ));
    }
    let cap = kind.cap();
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it is larger than the {} {kind} may have (set {}=BYTES to change the cap)",
                human_bytes(cap),
                kind.env()
            ),
        )
    };
    if !pipe && metadata.len() > cap {
        return Err(too_large());
    }
    let mut file = File::open(path)?;
    // Growth is bounded by the cap; a regular file's size is known, so one allocation.
    let mut data = Vec::with_capacity(if pipe { CHUNK } else { metadata.len() as usize });
    let mut chunk = vec![0u8; CHUNK];
    loop {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("reading was interrupted by {signal:?}"),
            ));
        }
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok(data),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if data.len() as u64 + n as u64 > cap {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `path` as `kind` and checks it is UTF-8 text.
pub fn read_text(path: &Path, kind: InputKind) -> io::Result<String> {
    String::from_utf8(read(path, kind)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (byte {} is not)",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &str, kind: InputKind) -> String {
        read(Path::new(path), kind).unwrap_err().to_string()
    }

    #[test]
    fn special_files_are_refused_before_reading() {
        assert_eq!(
            message("/dev/zero", InputKind::Object),
            "it is a character device, not a regular file or a pipe (an object file must be one)"
        );
        assert_eq!(
            message("/", InputKind::Scenario),
            "it is a directory, not a regular file or a pipe (a scenario file must be one)"
        );
    }

    #[test]
    fn a_file_over_its_cap_is_refused_by_its_size() {
        let dir = std::env::temp_dir().join(format!("xdplab-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.toml");
        // Sparse: nothing is written, the size alone is over the cap.
        File::create(&big)
            .unwrap()
            .set_len(InputKind::Scenario.default_cap() + 1)
            .unwrap();
        let small = dir.join("small.toml");
        std::fs::write(&small, "name = 1\n").unwrap();
        let big_error = read(&big, InputKind::Scenario).map(|_| ());
        let small_read = read_text(&small, InputKind::Scenario);
        let bad_utf8 = dir.join("bad.toml");
        std::fs::write(&bad_utf8, [b'a', 0xff]).unwrap();
        let bad = read_text(&bad_utf8, InputKind::Scenario).map(|_| ());
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            big_error.unwrap_err().to_string(),
            "it is larger than the 4 MiB a scenario file may have (set \
             XDPLAB_MAX_SCENARIO_BYTES=BYTES to change the cap)"
        );
        assert_eq!(small_read.unwrap(), "name = 1\n");
        assert_eq!(
            bad.unwrap_err().to_string(),
            "it is not UTF-8 text (byte 1 is not)"
        );
    }

    #[test]
    fn a_pipe_is_read_to_its_end_or_its_cap() {
        let dir = std::env::temp_dir().join(format!("xdplab-input-pipe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // A writer that sends more than a scenario may have: the reader stops at the cap.
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                let block = vec![b'#'; 1 << 16];
                for _ in 0..(InputKind::Scenario.default_cap() / block.len() as u64 + 2) {
                    if f.write_all(&block).is_err() {
                        break; // the reader gave up at the cap
                    }
                }
            })
        };
        let over = read(&fifo, InputKind::Scenario);
        writer.join().unwrap();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(&fifo, "x = 1\n").unwrap())
        };
        let ok = read_text(&fifo, InputKind::Scenario);
        writer.join().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            over.unwrap_err().kind(),
            io::ErrorKind::FileTooLarge,
            "a pipe is cut at the cap"
        );
        assert_eq!(ok.unwrap(), "x = 1\n");
    }
}
