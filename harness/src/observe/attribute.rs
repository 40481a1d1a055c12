//! Attribution by content: whether a frame that came out of the program under test, and
//! carries no tag of this run, is one of the frames a send group sent, changed the way XDP
//! programs change frames.
//!
//! Tagged frames are attributed by their [`Tag`](crate::frame::Tag) wherever it sits in the
//! frame that came out, so headers pushed or popped in front of it do not matter. This module
//! is for the others: frames too small to carry a tag, and frames whose tag the program cut
//! off. Each rule is a specific relation between the sent bytes and the received ones (the
//! bytes that differ per copy, the tag and the checksum that covers it, are never compared),
//! tried in order, and the report says which rule claimed how many frames:
//!
//! | rule           | the received frame is ...                                                      |
//! |----------------|--------------------------------------------------------------------------------|
//! | `exact`        | the sent bytes.                                                                |
//! | `vlan`         | the sent bytes once every VLAN tag after the MAC addresses is set aside in both (a tag pushed, popped or rewritten). |
//! | `cut`          | a start of the sent bytes (VLAN tags set aside), at least an Ethernet header: the tail was cut (`bpf_xdp_adjust_tail` with a negative delta). |
//! | `extended`     | the sent bytes (VLAN tags set aside) with bytes added at the end (`bpf_xdp_adjust_tail` growing the frame). |
//! | `decapsulated` | an Ethernet header (and tags) followed by an end of the sent frame of at least [`MIN_INNER`] bytes: outer headers were removed. |
//! | `encapsulated` | some bytes followed by the sent frame from its L3 header on, at least [`MIN_INNER`] bytes of it: headers were added in front. |

use std::ops::Range;

use crate::frame::{ETH_HEADER_LEN, VLAN_TAG_LEN};

/// The fewest bytes of the sent frame that `decapsulated` and `encapsulated` must find in the
/// received one: an IPv4 header's worth, so that a few common bytes never make a match.
pub const MIN_INNER: usize = 20;

/// Most VLAN tags set aside.
const MAX_TAGS: usize = 8;

/// How a received frame was found to be a sent one; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContentRule {
    /// The same bytes.
    Exact,
    /// The same bytes without VLAN tags.
    Vlan,
    /// A start of the sent frame.
    Cut,
    /// The sent frame with bytes added at its end.
    Extended,
    /// An end of the sent frame behind a new Ethernet header.
    Decapsulated,
    /// The sent frame's L3 onward behind new headers.
    Encapsulated,
}

impl ContentRule {
    /// Every rule, in the order they are tried.
    pub const ALL: [ContentRule; 6] = [
        Self::Exact,
        Self::Vlan,
        Self::Cut,
        Self::Extended,
        Self::Decapsulated,
        Self::Encapsulated,
    ];

    /// The rule's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Vlan => "vlan",
            Self::Cut => "cut",
            Self::Extended => "extended",
            Self::Decapsulated => "decapsulated",
            Self::Encapsulated => "encapsulated",
        }
    }

    /// What the rule means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Exact => "the sent bytes",
            Self::Vlan => {
                "the sent bytes once VLAN tags are set aside (a tag pushed, popped or rewritten)"
            }
            Self::Cut => "a start of the sent bytes (the tail cut off)",
            Self::Extended => "the sent bytes with bytes added at the end",
            Self::Decapsulated => {
                "an end of the sent frame behind a new Ethernet header (outer headers removed)"
            }
            Self::Encapsulated => "the sent frame from its L3 header on, behind added headers",
        }
    }
}

/// `frame` without its VLAN tags, and the tags' length (they sit at offset 12).
fn untag(frame: &[u8]) -> (Vec<u8>, usize) {
    let mut at = 12;
    for _ in 0..MAX_TAGS {
        match frame.get(at..at + 2) {
            Some([0x81, 0x00] | [0x88, 0xa8]) if frame.len() >= at + VLAN_TAG_LEN + 2 => {
                at += VLAN_TAG_LEN;
            }
            _ => break,
        }
    }
    let removed = at - 12;
    if removed == 0 {
        return (frame.to_vec(), 0);
    }
    let mut out = frame[..12.min(frame.len())].to_vec();
    out.extend_from_slice(&frame[at..]);
    (out, removed)
}

/// Where the L3 header starts: after the Ethernet header and its VLAN tags.
fn l3_offset(frame: &[u8]) -> usize {
    let (_, tags) = untag(frame);
    ETH_HEADER_LEN + tags
}

/// Whether `sent[s..s + len]` equals `got[g..g + len]`, ignoring the bytes of `sent` in
/// `mask`.
fn same(sent: &[u8], s: usize, got: &[u8], g: usize, len: usize, mask: &[Range<usize>]) -> bool {
    let (Some(a), Some(b)) = (sent.get(s..s + len), got.get(g..g + len)) else {
        return false;
    };
    a.iter()
        .zip(b)
        .enumerate()
        .all(|(i, (x, y))| x == y || mask.iter().any(|m| m.contains(&(s + i))))
}

/// Which rule, if any, makes `got` one of the frames `sent` describes; `per_copy` are the
/// byte ranges of `sent` that differ from copy to copy (the tag and the checksum patched for
/// it, [`FrameTemplate::per_copy`](crate::frame::FrameTemplate::per_copy)), never compared.
pub fn derived(sent: &[u8], per_copy: &[Range<usize>], got: &[u8]) -> Option<ContentRule> {
    let mask = per_copy;
    if got.len() == sent.len() && same(sent, 0, got, 0, sent.len(), mask) {
        return Some(ContentRule::Exact);
    }
    let (sent_plain, sent_tags) = untag(sent);
    let (got_plain, _) = untag(got);
    // The masked bytes move with the bytes after the VLAN tags.
    let plain_mask: Vec<Range<usize>> = mask
        .iter()
        .map(|m| {
            if m.start >= 12 + sent_tags {
                m.start - sent_tags..m.end - sent_tags
            } else {
                m.clone()
            }
        })
        .collect();
    let plain_mask = &plain_mask[..];
    let (s, g) = (&sent_plain, &got_plain);
    if g.len() == s.len() && same(s, 0, g, 0, s.len(), plain_mask) {
        return Some(ContentRule::Vlan);
    }
    if g.len() >= ETH_HEADER_LEN && g.len() < s.len() && same(s, 0, g, 0, g.len(), plain_mask) {
        return Some(ContentRule::Cut);
    }
    if s.len() >= ETH_HEADER_LEN && g.len() > s.len() && same(s, 0, g, 0, s.len(), plain_mask) {
        return Some(ContentRule::Extended);
    }
    let got_l3 = l3_offset(got);
    let inner = got.len().saturating_sub(got_l3);
    if inner >= MIN_INNER && sent.len() > inner {
        let from = sent.len() - inner;
        if from >= l3_offset(sent) && same(sent, from, got, got_l3, inner, mask) {
            return Some(ContentRule::Decapsulated);
        }
    }
    let sent_l3 = l3_offset(sent);
    let inner = sent.len().saturating_sub(sent_l3);
    if inner >= MIN_INNER && got.len() > sent.len() {
        let from = got.len() - inner;
        if from > got_l3 && same(sent, sent_l3, got, from, inner, mask) {
            return Some(ContentRule::Encapsulated);
        }
    }
    None
}

/// One frame [`claim`] found to be a sent one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Index of the frame in the `arrivals` given to [`claim`].
    pub arrival: usize,
    /// Index of the sent frame (template) it derives from.
    pub template: usize,
    /// How.
    pub rule: ContentRule,
}

/// The frames among `arrivals` (arrival number, bytes) that arrived in `window` and derive
/// from one of `sent` (bytes, per-copy ranges), in arrival order, at most `limit` of them.
pub fn claim(
    arrivals: &[(u64, Vec<u8>)],
    window: Range<u64>,
    sent: &[(&[u8], Vec<Range<usize>>)],
    limit: usize,
) -> Vec<Claim> {
    let mut claims = Vec::new();
    for (arrival, (at, frame)) in arrivals.iter().enumerate() {
        if claims.len() >= limit {
            break;
        }
        if !window.contains(at) {
            continue;
        }
        let found = sent
            .iter()
            .enumerate()
            .find_map(|(template, (bytes, tag))| {
                derived(bytes, tag, frame).map(|rule| Claim {
                    arrival,
                    template,
                    rule,
                })
            });
        claims.extend(found);
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet (ethertype 0x0800), a 20-byte "IP header" and 20 bytes of "payload".
    fn sent() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend((0..40u8).map(|b| b.wrapping_mul(7).wrapping_add(1)));
        f
    }

    fn tagged(frame: &[u8], tpid: [u8; 2], id: u8) -> Vec<u8> {
        let mut f = frame[..12].to_vec();
        f.extend_from_slice(&[tpid[0], tpid[1], 0, id]);
        f.extend_from_slice(&frame[12..]);
        f
    }

    #[test]
    fn each_rule() {
        let s = sent();
        assert_eq!(derived(&s, &[], &s), Some(ContentRule::Exact));
        // Pop, push, rewrite, QinQ.
        let one = tagged(&s, [0x81, 0x00], 100);
        assert_eq!(derived(&one, &[], &s), Some(ContentRule::Vlan));
        assert_eq!(derived(&s, &[], &one), Some(ContentRule::Vlan));
        assert_eq!(
            derived(&one, &[], &tagged(&s, [0x81, 0x00], 7)),
            Some(ContentRule::Vlan)
        );
        let two = tagged(&one, [0x88, 0xa8], 5);
        assert_eq!(derived(&two, &[], &s), Some(ContentRule::Vlan));
        // Cut and extended, also with a tag popped.
        assert_eq!(derived(&s, &[], &s[..30]), Some(ContentRule::Cut));
        assert_eq!(derived(&one, &[], &s[..30]), Some(ContentRule::Cut));
        let longer = [&s[..], &[9, 9, 9]].concat();
        assert_eq!(derived(&s, &[], &longer), Some(ContentRule::Extended));
        // Decapsulation: a new Ethernet header on the sent frame's last 24 bytes.
        let mut inner = vec![1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 0x86, 0xdd];
        inner.extend_from_slice(&s[s.len() - 24..]);
        assert_eq!(derived(&s, &[], &inner), Some(ContentRule::Decapsulated));
        // Encapsulation: 30 new bytes in front of the sent L3 onward.
        let mut outer = vec![4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 0x08, 0x00];
        outer.extend_from_slice(&[0xee; 16]);
        outer.extend_from_slice(&s[14..]);
        assert_eq!(derived(&s, &[], &outer), Some(ContentRule::Encapsulated));
        // And a whole sent frame (its Ethernet header too) inside a tunnel.
        let mut tunnel = outer[..30].to_vec();
        tunnel.extend_from_slice(&s);
        assert_eq!(derived(&s, &[], &tunnel), Some(ContentRule::Encapsulated));
    }

    #[test]
    fn other_frames_are_not_claimed() {
        let s = sent();
        let mut changed = s.clone();
        changed[30] ^= 1;
        assert_eq!(derived(&s, &[], &changed), None);
        // Too short to be a cut frame; too little in common to be an inner frame.
        assert_eq!(derived(&s, &[], &s[..10]), None);
        let mut small = s[..14].to_vec();
        small.extend_from_slice(&s[s.len() - 19..]);
        assert_eq!(derived(&s, &[], &small), None);
        // The sent frame's Ethernet header alone is not an inner frame.
        let mut head = vec![0u8; 40];
        head.extend_from_slice(&s[..14]);
        assert_eq!(derived(&s, &[], &head), None);
        assert_eq!(derived(&s, &[], &[]), None);
    }

    #[test]
    fn claims_in_the_window_and_in_order() {
        let s = sent();
        let one = tagged(&s, [0x81, 0x00], 100);
        let other = vec![0u8; 60];
        let unrelated = [0xab; 30];
        let arrivals = vec![
            (0, s.clone()),
            (1, other.clone()),
            (2, s[..30].to_vec()),
            (3, one.clone()),
            (4, s.clone()),
        ];
        let claims = claim(
            &arrivals,
            1..4,
            &[(&unrelated[..], vec![]), (&one[..], vec![])],
            10,
        );
        assert_eq!(
            claims,
            vec![
                Claim {
                    arrival: 2,
                    template: 1,
                    rule: ContentRule::Cut
                },
                Claim {
                    arrival: 3,
                    template: 1,
                    rule: ContentRule::Exact
                },
            ]
        );
        assert_eq!(claim(&arrivals, 0..5, &[(&s[..], vec![])], 2).len(), 2);
        assert_eq!(claim(&arrivals, 5..9, &[(&s[..], vec![])], 9), vec![]);
    }

    #[test]
    #[expect(
        clippy::single_range_in_vec_init,
        reason = "per-copy ranges: one range (the tag) is the usual case"
    )]
    fn the_tag_area_is_never_compared() {
        let s = sent();
        let mut got = s.clone();
        got[40..44].copy_from_slice(b"XLAB");
        assert_eq!(derived(&s, &[], &got), None);
        assert_eq!(derived(&s, &[40..56], &got), Some(ContentRule::Exact));
        // After a pop, the area moved 4 bytes towards the front with the rest.
        let one = tagged(&s, [0x81, 0x00], 100);
        assert_eq!(derived(&one, &[44..60], &got), Some(ContentRule::Vlan));
        // Several ranges: the tag and the checksum patched for it.
        let mut both = got.clone();
        both[20] ^= 0xff;
        assert_eq!(derived(&s, &[40..56], &both), None);
        assert_eq!(
            derived(&s, &[40..56, 20..22], &both[..42]),
            Some(ContentRule::Cut)
        );
        // A tag cut in half.
        assert_eq!(derived(&s, &[40..56], &got[..46]), Some(ContentRule::Cut));
    }
}
