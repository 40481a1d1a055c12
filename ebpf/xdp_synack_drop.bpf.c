// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_synack_drop.bpf.c - a broken firewall: the bug of the example.
 *
 * Meant to let connections through, it drops every TCP segment with both SYN
 * and ACK set: the second step of every handshake. A frame-by-frame scenario
 * of SYNs, data segments and pings passes it; a TCP connection through it
 * never establishes (the client's SYN is answered, the answer is dropped,
 * the client retransmits its SYN until it gives up), while ping, UDP and the
 * segments of connections established before it was attached go through.
 *
 *   frame                                                 verdict  counter
 *   IPv4 TCP, first or unfragmented, SYN and ACK set      DROP     drop_cnt
 *   IPv6 TCP (next header 6 right after the IPv6 header),
 *        SYN and ACK set                                  DROP     drop_cnt
 *   anything else (incl. too short to tell)               PASS     pass_cnt
 *
 * Maps:
 *   drop_cnt  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 0 -> __u64 frames dropped
 *   pass_cnt  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 0 -> __u64 frames passed
 *             (both atomic add; every frame counts in exactly one)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Byte 13 of the TCP header: CWR ECE URG ACK PSH RST SYN FIN. */
#define TCP_FLAGS_OFFSET	13
#define TCP_FLAG_SYN		0x02
#define TCP_FLAG_ACK		0x10

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

static __always_inline int verdict(void *counter, int action)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(counter, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
	return action;
}

/* The TCP header of the frame, or NULL if it carries none we can read. */
static __always_inline __u8 *tcp_header(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return NULL;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
			return NULL;
		/* A later fragment carries no TCP header. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return NULL;
		return (__u8 *)ip + ip->ihl * 4;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return NULL;
		return (__u8 *)(ip6 + 1);
	}
	return NULL;
}

SEC("xdp")
int xdp_synack_drop(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *tcp = tcp_header((void *)(long)ctx->data, data_end);
	__u8 flags;

	if (!tcp || (void *)(tcp + TCP_FLAGS_OFFSET + 1) > data_end)
		return verdict(&pass_cnt, XDP_PASS);
	flags = tcp[TCP_FLAGS_OFFSET];
	if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK))
		return verdict(&drop_cnt, XDP_DROP);
	return verdict(&pass_cnt, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
