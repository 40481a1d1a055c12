//! Seeded mutations of scenario text: byte flips, token insertions, splices from other files,
//! truncation and duplication. Shared by the `fuzz_scenario` example and the parser's property
//! tests (`tests/prop_scenario.rs`), so a mutation either finds is one the other can replay.

/// A small, seedable PRNG (SplitMix64): the same seed gives the same mutations everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        // The modulo bias is irrelevant for choosing mutations.
        (self.next_u64() % n as u64) as usize
    }
}

/// Longest mutated input: splices and duplications cannot grow it without bound.
pub const MAX_LEN: usize = 64 * 1024;

/// Fragments that steer mutations towards the places where the parser makes decisions:
/// TOML punctuation, numbers at and past the schema's limits, and keys of every table.
const TOKENS: &[&str] = &[
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "\n",
    "#",
    ".",
    ":",
    "0",
    "-1",
    "1",
    "13",
    "14",
    "60",
    "4095",
    "4096",
    "65535",
    "65536",
    "3498",
    "10000000",
    "10000001",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999",
    "1e309",
    "-0.0",
    "nan",
    "inf",
    "true",
    "\"\"",
    "[]",
    "{}",
    "0x",
    "\\u0000",
    "\u{e9}",
    "\u{1f600}",
    "schema-version = 1\n",
    "[program]\n",
    "[[send]]\n",
    "[[link]]\n",
    "[[attach]]\n",
    "[[rule]]\n",
    "[lab]\n",
    "[[setup.map]]\n",
    "[[expect.map]]\n",
    "[[expect.events]]\n",
    "[throughput]\n",
    "name = \"g\"\n",
    "count = ",
    "expect = \"redirect\"\n",
    "redirect-to = \"",
    "from = \"",
    "attach = \"",
    "vlan = [{ id = 4095, pcp = 7, tpid = 0x88a8 }, {}]",
    "size = 14\ntruncate = true\n",
    "raw = \"00 11 22 33 44 55 66 77 88 99 aa bb cc dd\"",
    "payload = \"ff\"",
    "ipv4 = { options = \"01 01 01 01\", ihl = 15 }",
    "ipv6 = { ext = [{ kind = \"fragment\", offset = 8191 }] }",
    "udp = {}",
    "tcp = { flags = \"SAFRPUEC\" }",
    "icmp = {}",
    "icmpv6 = {}",
    "arp = {}",
    "output = { swapped-macs = true }",
    "output = { vlan = [4096], checksums = \"valid\", icmp-seq = 65535 }",
    "icmp = { id = 65535, seq = 0, checksum = 0 }",
    "pcap = \"",
    "key = [{ ifindex = \"receiver\" }]",
    "value = [{ u32 = 1 }, { pad = 18446744073709551615 }]",
    "per-cpu = []",
    "delta = -9223372036854775808",
    "layout = [\"a:u8\", \"_:pad4096\"]",
    "where = { a = 256 }",
    "duration = \"0.0000000001ms\"",
    "min-ratio = 1e308",
    "mtu = 3499",
];

/// Applies one to eight random mutations to `input`; `others` are spliced from.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = b"=[]{},\"'#\n 0-.:\\"[rng.below(16)];
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at..end);
            }
            3 | 4 => {
                let at = rng.below(len + 1);
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            6 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(256)).min(len);
                let copy = out[start..end].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, copy);
            }
            7 if !others.is_empty() => {
                let other = &others[rng.below(others.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(512)).min(other.len());
                    let at = rng.below(len + 1);
                    let replace = (at + rng.below(64)).min(len);
                    out.splice(at..replace, other[start..end].iter().copied());
                }
            }
            _ => {}
        }
        out.truncate(MAX_LEN);
    }
    out
}
