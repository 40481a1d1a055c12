// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_aborted.bpf.c - the exception maker.
 *
 * Returns XDP_ABORTED for UDP datagrams to port 7 (echo) and XDP_PASS for
 * everything else, so that a lab can provoke the xdp:xdp_exception
 * tracepoint with chosen traffic while the rest of the link keeps working.
 *
 *   frame                                                  verdict  counters
 *   IPv4 or IPv6 UDP, destination port 7, untagged or
 *         with one 802.1Q (0x8100) tag                     ABORTED  aborted_cnt
 *   anything else                                          PASS     pass_cnt
 *
 * "UDP to port 7" means all of:
 *   - ethertype 0x0800 or 0x86DD, directly or after one 0x8100 tag (an
 *     0x88a8 tag or a second tag is "anything else");
 *   - IPv4: version 4, IHL >= 5, the whole header with options present,
 *     protocol 17, fragment offset 0 (a later fragment has no UDP header);
 *   - IPv6: version 6, 40-byte header present, next header 17 (extension
 *     headers are not walked: a frame with any is "anything else");
 *   - the whole 8-byte UDP header present, destination port 7.
 * Truncated or malformed frames are "anything else" and pass: this program
 * is a test tool, not a filter.
 *
 * Every frame increments exactly one of aborted_cnt and pass_cnt.
 *
 * Maps:
 *   aborted_cnt  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames
 *                returned with XDP_ABORTED (atomic add)
 *   pass_cnt     BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames
 *                returned with XDP_PASS (atomic add)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ABORT_UDP_PORT		7
#define IPV4_FRAG_OFFSET_MASK	0x1fff	/* of iphdr.frag_off, host order */

/* Not in the UAPI headers: the 4 bytes that follow a TPID. */
struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} aborted_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pass_cnt SEC(".maps");

static __always_inline void count(void *counter_map)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(counter_map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/*
 * Each helper below compares the port right after its own bounds check and
 * returns a verdict, not a pointer: handing the UDP header pointer back to
 * the caller lets clang rebuild it from a base the verifier has not checked.
 */

/* Is the whole UDP header at l4 present, with destination port 7? */
static __always_inline int udp_to_abort_port(void *l4, void *data_end)
{
	struct udphdr *udp = l4;

	if ((void *)(udp + 1) > data_end)
		return 0;
	return udp->dest == bpf_htons(ABORT_UDP_PORT);
}

/* An unfragmented or first-fragment IPv4 UDP packet to port 7? */
static __always_inline int ipv4_udp_to_abort_port(void *nh, void *data_end)
{
	struct iphdr *ip = nh;
	__u8 version_ihl;
	__u32 hdr_len;

	if ((void *)(ip + 1) > data_end)
		return 0;
	/* Read the byte rather than the iphdr bitfields: their order is endian-dependent. */
	version_ihl = *(__u8 *)ip;
	if (version_ihl >> 4 != 4)
		return 0;
	hdr_len = (version_ihl & 0x0f) * 4;
	if (hdr_len < sizeof(*ip))
		return 0;
	if (ip->protocol != IPPROTO_UDP)
		return 0;
	/* A later fragment carries no UDP header. */
	if (bpf_ntohs(ip->frag_off) & IPV4_FRAG_OFFSET_MASK)
		return 0;
	return udp_to_abort_port(nh + hdr_len, data_end);
}

/* An IPv6 UDP packet without extension headers, to port 7? */
static __always_inline int ipv6_udp_to_abort_port(void *nh, void *data_end)
{
	struct ipv6hdr *ip6 = nh;

	if ((void *)(ip6 + 1) > data_end)
		return 0;
	if (*(__u8 *)ip6 >> 4 != 6)
		return 0;
	if (ip6->nexthdr != IPPROTO_UDP)
		return 0;
	return udp_to_abort_port(ip6 + 1, data_end);
}

static __always_inline int is_udp_to_abort_port(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	void *nh;
	__u16 ethertype;

	if ((void *)(eth + 1) > data_end)
		return 0;
	ethertype = bpf_ntohs(eth->h_proto);
	nh = eth + 1;

	if (ethertype == ETH_P_8021Q) {
		struct vlan_tag *tag = nh;

		if ((void *)(tag + 1) > data_end)
			return 0;
		ethertype = bpf_ntohs(tag->encap_proto);
		nh = tag + 1;
	}

	switch (ethertype) {
	case ETH_P_IP:
		return ipv4_udp_to_abort_port(nh, data_end);
	case ETH_P_IPV6:
		return ipv6_udp_to_abort_port(nh, data_end);
	default:
		return 0;
	}
}

SEC("xdp")
int xdp_aborted(struct xdp_md *ctx)
{
	if (is_udp_to_abort_port(ctx)) {
		count(&aborted_cnt);
		return XDP_ABORTED;
	}
	count(&pass_cnt);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
