// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_filter.bpf.c - a rule-driven dropper.
 *
 * Rule map filter_rules (ARRAY, 32 entries, __u32 index -> struct filter_rule,
 * 8 bytes, read as a little-endian __u64 by user space):
 *
 *   byte 0-1  ethertype  host order; compared if flags & RULE_MATCH_ETHERTYPE
 *   byte 2    ip_proto   compared if flags & RULE_MATCH_PROTO (IPv4/IPv6 only)
 *   byte 3    flags      bit0 ENABLED, bit1 MATCH_ETHERTYPE, bit2 MATCH_PROTO,
 *                        bit3 MATCH_PORT, bit4 ACTION_DROP (clear = pass)
 *   byte 4-5  dst_port   host order; compared if flags & RULE_MATCH_PORT
 *                        (only frames whose destination port was parsed)
 *   byte 6-7  reserved
 *
 * Rules are tried in index order 0..31; the first entry without ENABLED ends
 * the list. The first rule whose selected fields all match decides the
 * verdict and is counted in rule_hits; no match means XDP_PASS. An enabled
 * rule that selects no field matches every well-formed frame.
 *
 * "ethertype" is the one after at most two VLAN tags (0x8100/0x88a8 in any
 * order). A third tag stops parsing: the ethertype is that TPID and neither
 * protocol nor port is known.
 *
 * Verdicts before any rule is consulted:
 *
 *   frame                                                  verdict  counters
 *   shorter than the Ethernet header (14 bytes)            DROP     drop, malformed
 *   ends inside a VLAN tag (first or second)               DROP     drop, malformed
 *   IPv4: < 20 bytes, version != 4, IHL < 5, or ends
 *         inside the options                               DROP     drop, malformed
 *   IPv6: < 40 bytes or version != 6                       DROP     drop, malformed
 *   IPv6: ends inside an extension header (0/43/60/51/44)  DROP     drop, malformed
 *   IPv6: more than 8 extension headers                    DROP     drop, malformed
 *   TCP/UDP/SCTP/UDP-Lite, first or unfragmented, with
 *         fewer than 4 L4 bytes                            DROP     drop, malformed
 *   IPv4 fragment offset != 0, IPv6 fragment header with
 *         offset != 0                                      rules    proto known, no port
 *   third VLAN tag, unknown ethertype, other L4 protocol   rules    no port (no proto
 *                                                                   unless IPv4/IPv6)
 *
 * Malformed frames never reach the rules, so they never count in rule_hits.
 * Every frame increments exactly one of drop_cnt and pass_cnt.
 *
 * Drop events: when bit 0 (FILTER_CFG_DROP_EVENTS) of filter_config[0] is
 * set, every dropped frame also writes one struct drop_event (12 bytes,
 * below) to the drop_events ring buffer; when the ring is full the event is
 * lost and events_lost goes up instead. With the bit clear (the default),
 * the ring is never touched. Events do not change any verdict or counter.
 *
 * Maps:
 *   filter_rules   ARRAY, 32 entries, __u32 index -> struct filter_rule
 *   drop_cnt       ARRAY, 1 entry, __u32 0 -> __u64 frames dropped
 *   pass_cnt       ARRAY, 1 entry, __u32 0 -> __u64 frames passed
 *   malformed_cnt  ARRAY, 1 entry, __u32 0 -> __u64 dropped as malformed
 *   rule_hits      HASH, 64 entries, __u32 rule index -> __u64 frames decided
 *   filter_config  ARRAY, 1 entry, __u32 0 -> __u32 flags (bit 0: drop events)
 *   drop_events    RINGBUF, 256 KiB of struct drop_event records
 *   events_lost    ARRAY, 1 entry, __u32 0 -> __u64 events the full ring refused
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_RULES		32
#define MAX_VLAN_TAGS		2
#define MAX_IPV6_EXT_HDRS	8
#define RULE_HITS_ENTRIES	64

#define RULE_ENABLED		(1 << 0)
#define RULE_MATCH_ETHERTYPE	(1 << 1)
#define RULE_MATCH_PROTO	(1 << 2)
#define RULE_MATCH_PORT		(1 << 3)
#define RULE_ACTION_DROP	(1 << 4)

#define IPV4_FRAG_OFFSET_MASK	0x1fff	/* of iphdr.frag_off, host order */
#define IPV6_FRAG_OFFSET_MASK	0xfff8	/* of frag_hdr.frag_off, host order */
#define IPV6_EXT_HDR_MIN_LEN	8	/* every extension header we walk */
#define L4_PORT_BYTES		4	/* source port + destination port */

#define FILTER_CFG_DROP_EVENTS	(1 << 0)	/* filter_config[0]: emit drop events */
#define DROP_EVENTS_BYTES	(256 * 1024)	/* ring size: a power of 2, page multiple */
#define DROP_RULE_MALFORMED	0xffffffff	/* drop_event.rule of a malformed frame */
#define DROP_REASON_RULE	1
#define DROP_REASON_MALFORMED	2
#define FRAME_LEN_MAX		0xffff		/* drop_event.len saturates here */

struct filter_rule {
	__u16 ethertype;
	__u8 ip_proto;
	__u8 flags;
	__u16 dst_port;
	__u16 reserved;
};

_Static_assert(sizeof(struct filter_rule) == 8, "filter_rule is 8 bytes");

/*
 * One record of drop_events, in the CPU's byte order (little-endian on
 * x86-64 and arm64). No padding: 4 + 2 + 1 + 1 + 2 + 2 bytes.
 */
struct drop_event {
	__u32 rule;		/* index of the deciding rule; DROP_RULE_MALFORMED */
	__u16 ethertype;	/* host order, after VLAN tags; 0 if the frame ended before it */
	__u8 ip_proto;		/* 0 if unknown */
	__u8 reason;		/* DROP_REASON_RULE or DROP_REASON_MALFORMED */
	__u16 dst_port;		/* host order; 0 if unknown */
	__u16 len;		/* frame length, capped at FRAME_LEN_MAX */
};

_Static_assert(sizeof(struct drop_event) == 12, "drop_event is 12 bytes");

/* Not in the UAPI headers: the 4 bytes that follow a TPID. */
struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

/* What the rules can look at, filled in by parse_frame(). */
struct pkt_info {
	__u16 ethertype;
	__u16 dst_port;
	__u8 ip_proto;
	__u8 has_proto;
	__u8 has_port;
};

enum parse_status {
	PARSE_OK,
	PARSE_MALFORMED,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct filter_rule);
} filter_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drop_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pass_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} malformed_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RULE_HITS_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} filter_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DROP_EVENTS_BYTES);
} drop_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost SEC(".maps");

static __always_inline void count(void *counter_map)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(counter_map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline void count_rule_hit(__u32 index)
{
	__u64 zero = 0;
	__u64 *value = bpf_map_lookup_elem(&rule_hits, &index);

	if (!value) {
		/*
		 * BPF_NOEXIST so that two CPUs racing on a rule's first hit
		 * cannot reset each other's count: the loser gets -EEXIST and
		 * the lookup below finds the winner's entry.
		 */
		bpf_map_update_elem(&rule_hits, &index, &zero, BPF_NOEXIST);
		value = bpf_map_lookup_elem(&rule_hits, &index);
	}
	if (value)
		__sync_fetch_and_add(value, 1);
}

/*
 * Called for every dropped frame, after its counters. Without the config bit
 * it costs one array lookup and never touches the ring.
 */
static __always_inline void emit_drop_event(struct xdp_md *ctx, const struct pkt_info *pi,
					    __u32 rule, __u8 reason)
{
	struct drop_event *ev;
	__u32 key = 0;
	__u64 len;
	__u32 *config = bpf_map_lookup_elem(&filter_config, &key);

	if (!config || !(*config & FILTER_CFG_DROP_EVENTS))
		return;
	ev = bpf_ringbuf_reserve(&drop_events, sizeof(*ev), 0);
	if (!ev) {
		count(&events_lost);
		return;
	}
	ev->rule = rule;
	ev->ethertype = pi->ethertype;
	ev->ip_proto = pi->has_proto ? pi->ip_proto : 0;
	ev->reason = reason;
	ev->dst_port = pi->has_port ? pi->dst_port : 0;
	/*
	 * Subtracting packet pointers needs CAP_PERFMON (or CAP_SYS_ADMIN),
	 * which the variable-offset header parsing above needs anyway; the
	 * helper bpf_xdp_get_buff_len() would raise the kernel floor to 5.18.
	 */
	len = (void *)(long)ctx->data_end - (void *)(long)ctx->data;
	ev->len = len > FRAME_LEN_MAX ? FRAME_LEN_MAX : len;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline int is_vlan_tpid(__u16 ethertype)
{
	return ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD;
}

static __always_inline int ipv6_is_ext_hdr(__u8 nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return 1;
	default:
		return 0;
	}
}

/*
 * Reads the destination port of a first (or unfragmented) TCP, UDP, SCTP
 * or UDP-Lite packet. All four put it at L4 offset 2, big-endian.
 */
static __always_inline enum parse_status parse_l4_port(__u8 *l4, void *data_end,
							__u8 ip_proto, struct pkt_info *pi)
{
	switch (ip_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
	case IPPROTO_UDPLITE:
		break;
	default:
		return PARSE_OK;
	}
	if ((void *)(l4 + L4_PORT_BYTES) > data_end)
		return PARSE_MALFORMED;
	/* Byte by byte: no alignment assumption, no byte-order helper. */
	pi->dst_port = (__u16)l4[2] << 8 | l4[3];
	pi->has_port = 1;
	return PARSE_OK;
}

static __always_inline enum parse_status parse_ipv4(void *nh, void *data_end,
						     struct pkt_info *pi)
{
	struct iphdr *ip = nh;
	__u8 version_ihl;
	__u32 hdr_len;

	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	/* Read the byte rather than the iphdr bitfields: their order is endian-dependent. */
	version_ihl = *(__u8 *)ip;
	if (version_ihl >> 4 != 4)
		return PARSE_MALFORMED;
	hdr_len = (version_ihl & 0x0f) * 4;
	if (hdr_len < sizeof(*ip))
		return PARSE_MALFORMED;
	if (nh + hdr_len > data_end)
		return PARSE_MALFORMED;

	pi->ip_proto = ip->protocol;
	pi->has_proto = 1;

	/* A non-first fragment carries no L4 header: its port is unknown. */
	if (bpf_ntohs(ip->frag_off) & IPV4_FRAG_OFFSET_MASK)
		return PARSE_OK;
	return parse_l4_port(nh + hdr_len, data_end, ip->protocol, pi);
}

static __always_inline enum parse_status parse_ipv6(void *nh, void *data_end,
						     struct pkt_info *pi)
{
	struct ipv6hdr *ip6 = nh;
	__u8 *cur;
	__u8 next;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (*(__u8 *)ip6 >> 4 != 6)
		return PARSE_MALFORMED;

	next = ip6->nexthdr;
	cur = (__u8 *)(ip6 + 1);

	for (i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
		__u32 len;

		if (!ipv6_is_ext_hdr(next))
			break;
		/* Covers the fixed part we read (next header, length, fragment offset). */
		if ((void *)(cur + IPV6_EXT_HDR_MIN_LEN) > data_end)
			return PARSE_MALFORMED;

		switch (next) {
		case IPPROTO_FRAGMENT:
			if (((__u16)cur[2] << 8 | cur[3]) & IPV6_FRAG_OFFSET_MASK) {
				/*
				 * Non-first fragment: the header chain ends
				 * here and what follows is payload. Its next
				 * header names the fragmented protocol.
				 */
				pi->ip_proto = cur[0];
				pi->has_proto = 1;
				return PARSE_OK;
			}
			len = IPV6_EXT_HDR_MIN_LEN;
			break;
		case IPPROTO_AH:
			/* AH counts in 4-byte units minus 2 (RFC 4302). */
			len = ((__u32)cur[1] + 2) * 4;
			break;
		default:
			/* Hop-by-hop, routing, destination options: 8-byte units minus 1. */
			len = ((__u32)cur[1] + 1) * 8;
			break;
		}
		next = cur[0];
		cur += len;
		if ((void *)cur > data_end)
			return PARSE_MALFORMED;
	}
	if (ipv6_is_ext_hdr(next))
		return PARSE_MALFORMED; /* a ninth extension header */

	pi->ip_proto = next;
	pi->has_proto = 1;
	if (next == IPPROTO_NONE)
		return PARSE_OK;
	return parse_l4_port(cur, data_end, next, pi);
}

static __always_inline enum parse_status parse_frame(struct xdp_md *ctx,
						      struct pkt_info *pi)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	void *cur;
	__u16 ethertype;
	int i;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	ethertype = bpf_ntohs(eth->h_proto);
	cur = eth + 1;

#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_tag *tag = cur;

		if (!is_vlan_tpid(ethertype))
			break;
		if ((void *)(tag + 1) > data_end)
			return PARSE_MALFORMED;
		ethertype = bpf_ntohs(tag->encap_proto);
		cur = tag + 1;
	}

	pi->ethertype = ethertype;
	switch (ethertype) {
	case ETH_P_IP:
		return parse_ipv4(cur, data_end, pi);
	case ETH_P_IPV6:
		return parse_ipv6(cur, data_end, pi);
	default:
		/* Includes a third VLAN tag, which is deliberately not read. */
		return PARSE_OK;
	}
}

static __always_inline int rule_matches(const struct filter_rule *rule,
					const struct pkt_info *pi)
{
	if ((rule->flags & RULE_MATCH_ETHERTYPE) && rule->ethertype != pi->ethertype)
		return 0;
	if ((rule->flags & RULE_MATCH_PROTO) &&
	    (!pi->has_proto || rule->ip_proto != pi->ip_proto))
		return 0;
	if ((rule->flags & RULE_MATCH_PORT) &&
	    (!pi->has_port || rule->dst_port != pi->dst_port))
		return 0;
	return 1;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	struct pkt_info pi = {};
	__u32 i;

	if (parse_frame(ctx, &pi) != PARSE_OK) {
		/* Fail closed: what we cannot parse, we do not let through. */
		count(&malformed_cnt);
		count(&drop_cnt);
		emit_drop_event(ctx, &pi, DROP_RULE_MALFORMED, DROP_REASON_MALFORMED);
		return XDP_DROP;
	}

	for (i = 0; i < MAX_RULES; i++) {
		/*
		 * The lookup key is a copy so that i itself never has its
		 * address taken: clang then keeps it in a register, where the
		 * verifier tracks its exact value and sees the loop end. (A
		 * 4-byte stack slot at a non-8-aligned offset is not tracked.)
		 */
		__u32 key = i;
		struct filter_rule *slot = bpf_map_lookup_elem(&filter_rules, &key);
		struct filter_rule rule;
		__u64 raw;

		if (!slot)
			break;
		/*
		 * One 8-byte load (volatile, so clang cannot split it): user
		 * space rewriting the slot meanwhile cannot leave us with the
		 * flags of one rule and the fields of another.
		 */
		raw = *(volatile __u64 *)slot;
		__builtin_memcpy(&rule, &raw, sizeof(rule));
		if (!(rule.flags & RULE_ENABLED))
			break;
		if (!rule_matches(&rule, &pi))
			continue;

		count_rule_hit(i);
		if (rule.flags & RULE_ACTION_DROP) {
			count(&drop_cnt);
			emit_drop_event(ctx, &pi, i, DROP_REASON_RULE);
			return XDP_DROP;
		}
		count(&pass_cnt);
		return XDP_PASS;
	}

	count(&pass_cnt);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
