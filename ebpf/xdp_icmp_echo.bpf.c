// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_icmp_echo.bpf.c - an ICMP and ICMPv6 echo reflector, and its broken
 * twin.
 *
 * xdp_icmp_echo answers every echo request itself: the Ethernet addresses
 * and the IP addresses are swapped, the type becomes the reply's (ICMP 8 ->
 * 0, ICMPv6 128 -> 129), the checksum is updated incrementally for the
 * changed type (RFC 1624; swapping the addresses leaves both the IPv4
 * header checksum and the ICMPv6 pseudo-header sum as they were), and the
 * frame goes back out of the interface it came in by (XDP_TX). Identifier,
 * sequence number, TTL and payload are kept.
 *
 * xdp_icmp_echo_bad_csum does the same but forgets the checksum: its replies
 * carry the request's checksum, which is wrong by the type change. A test
 * harness must FAIL it.
 *
 *   frame                                       verdict   counters
 *   IPv4 ICMP echo request (type 8), first      TX        echo_cnt[0]
 *     fragment, no VLAN tag
 *   IPv6 ICMPv6 echo request (type 128), next   TX        echo_cnt[1]
 *     header 58 right after the IPv6 header
 *   anything else                               PASS      none
 *
 * Maps:
 *   echo_cnt  BPF_MAP_TYPE_ARRAY, 2 entries, __u32 key -> __u64 replies
 *             sent (0: ICMP, 1: ICMPv6; atomic add)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/*
 * The first 4 bytes of an ICMP or ICMPv6 header, the part this program
 * reads and writes (<linux/icmp.h> pulls in libc headers).
 */
struct icmp_head {
	__u8 type;
	__u8 code;
	__sum16 checksum;
};

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} echo_cnt SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *value = bpf_map_lookup_elem(&echo_cnt, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/*
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit word m changed to
 * m', all in network order (the ones' complement sum is byte-order free).
 */
static __always_inline __u16 csum_replace(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~old;
	sum += new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 mac[ETH_ALEN];

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
}

static __always_inline int echo(struct xdp_md *ctx, int fix_checksum)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	__u16 old_word, new_word;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		struct icmp_head *icmp;
		__be32 addr;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5 || ip->protocol != IPPROTO_ICMP)
			return XDP_PASS;
		/* Not a later fragment: those carry no ICMP header. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return XDP_PASS;
		icmp = (void *)ip + ip->ihl * 4;
		if ((void *)(icmp + 1) > data_end || icmp->type != ICMP_ECHO)
			return XDP_PASS;

		swap_macs(eth);
		addr = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = addr;
		old_word = *(__u16 *)icmp;
		icmp->type = ICMP_ECHOREPLY;
		new_word = *(__u16 *)icmp;
		if (fix_checksum)
			icmp->checksum = csum_replace(icmp->checksum, old_word, new_word);
		count(0);
		return XDP_TX;
	}

	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct icmp_head *icmp6;
		struct in6_addr addr;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6)
			return XDP_PASS;
		icmp6 = (void *)(ip6 + 1);
		if ((void *)(icmp6 + 1) > data_end || icmp6->type != ICMPV6_ECHO_REQUEST)
			return XDP_PASS;

		swap_macs(eth);
		addr = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = addr;
		old_word = *(__u16 *)icmp6;
		icmp6->type = ICMPV6_ECHO_REPLY;
		new_word = *(__u16 *)icmp6;
		if (fix_checksum)
			icmp6->checksum = csum_replace(icmp6->checksum, old_word, new_word);
		count(1);
		return XDP_TX;
	}
	return XDP_PASS;
}

SEC("xdp")
int xdp_icmp_echo(struct xdp_md *ctx)
{
	return echo(ctx, 1);
}

SEC("xdp")
int xdp_icmp_echo_bad_csum(struct xdp_md *ctx)
{
	return echo(ctx, 0);
}

char _license[] SEC("license") = "GPL";
