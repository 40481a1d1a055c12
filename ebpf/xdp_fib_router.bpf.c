// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_fib_router.bpf.c - a router that asks the kernel's FIB.
 *
 * For every IPv4 or IPv6 frame it calls bpf_fib_lookup() with the frame's
 * addresses and the interface it arrived on, which answers from the routing
 * table, the neighbour table and the forwarding sysctls of the network
 * namespace the interface lives in:
 *
 *   lookup result                     verdict                 frame
 *   SUCCESS                           REDIRECT to the egress  TTL/hop limit - 1
 *                                     (TX when it is the      (IPv4 checksum
 *                                     ingress interface)      updated), MACs of
 *                                                             the lookup
 *   BLACKHOLE, UNREACHABLE, PROHIBIT  DROP                    unchanged
 *   anything else (NOT_FWDED: local   PASS (the stack         unchanged
 *   or no route; FWD_DISABLED:        decides)
 *   forwarding off; NO_NEIGH: ...)
 *
 * Frames that are not IP, are cut short, or whose TTL/hop limit is 1 or less
 * are passed without a lookup (the stack answers those).
 *
 * Two entries share the code and the maps: xdp_fib_router (SEC("xdp")) and
 * xdp_fib_router_frags (SEC("xdp.frags"), for jumbo MTUs).
 *
 * Maps:
 *   fib_results  BPF_MAP_TYPE_ARRAY, 16 entries, __u32 key = the return code
 *                of bpf_fib_lookup (BPF_FIB_LKUP_RET_*; 15 for anything
 *                larger) -> __u64 lookups that returned it
 *   fwd_cnt      BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames
 *                forwarded (redirected or sent back)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* From <sys/socket.h>, which a BPF build does not include. */
#define AF_INET 2
#define AF_INET6 10

#define FIB_RESULTS 16

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FIB_RESULTS);
	__type(key, __u32);
	__type(value, __u64);
} fib_results SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fwd_cnt SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/*
 * TTL - 1 with the header checksum updated incrementally (RFC 1624, eqn. 3:
 * HC' = ~(~HC + ~m + m')), m being the 16-bit word that holds TTL and
 * protocol. The one's complement sum is the same in either byte order, so
 * the words are used as they sit in the header.
 */
static __always_inline void ipv4_ttl_down(struct iphdr *ip)
{
	__u16 *word = (__u16 *)&ip->ttl;
	__u16 before = *word;
	__u32 sum;

	ip->ttl--;
	sum = (__u16)~ip->check + (__u16)~before + *word;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = (__u16)~sum;
}

static __always_inline int route(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip4 = NULL;
	struct ipv6hdr *ip6 = NULL;
	struct bpf_fib_lookup fib = {};
	long rc;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip4 = (void *)(eth + 1);
		if ((void *)(ip4 + 1) > data_end || ip4->ttl <= 1)
			return XDP_PASS;
		fib.family = AF_INET;
		fib.tos = ip4->tos;
		fib.l4_protocol = ip4->protocol;
		fib.tot_len = bpf_ntohs(ip4->tot_len);
		fib.ipv4_src = ip4->saddr;
		fib.ipv4_dst = ip4->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end || ip6->hop_limit <= 1)
			return XDP_PASS;
		fib.family = AF_INET6;
		/* Traffic class and flow label: the first word without the version. */
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		fib.l4_protocol = ip6->nexthdr;
		fib.tot_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
	} else {
		return XDP_PASS;
	}
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	bump(&fib_results, rc >= 0 && rc < FIB_RESULTS ? (__u32)rc : FIB_RESULTS - 1);

	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		if (ip4)
			ipv4_ttl_down(ip4);
		else if (ip6)
			ip6->hop_limit--;
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		bump(&fwd_cnt, 0);
		if (fib.ifindex == ctx->ingress_ifindex)
			return XDP_TX;
		return bpf_redirect(fib.ifindex, 0);
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}

SEC("xdp")
int xdp_fib_router(struct xdp_md *ctx)
{
	return route(ctx);
}

/*
 * The same router for jumbo frames: loaded with BPF_F_XDP_HAS_FRAGS, it
 * takes frames larger than a page (the headers it reads and rewrites are in
 * the first buffer) and runs natively on a veth above MTU 3498.
 */
SEC("xdp.frags")
int xdp_fib_router_frags(struct xdp_md *ctx)
{
	return route(ctx);
}

char _license[] SEC("license") = "GPL";
