// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_live_tx.bpf.c - the live traffic generator.
 *
 * Not a program under test: xdplab's live injector runs it through
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (what xdp-trafficgen
 * does). The kernel builds real xdp_frames from data_in, runs this program on
 * each, and carries out its verdict: here XDP_REDIRECT through tx_port[0],
 * so every frame is transmitted by the interface stored there (the lab's
 * sending veth) and arrives at its peer like any other frame.
 *
 * No counter: the test run's repeat count is the number of frames run, and
 * the receiver's own counters say how many arrived. Keeping the program to
 * one helper call keeps the generator as fast as the kernel allows.
 *
 *   tx_port[0]                     verdict
 *   holds an ifindex               REDIRECT (transmitted by that interface)
 *   empty (never written/deleted)  ABORTED (the frame is dropped)
 *
 * xdp_live_tx_flows does the same after making each frame one of N flows, as
 * traffic generators do: frame k of a CPU (k counted per CPU in flow_next)
 * belongs to flow i = k % N, whose IPv4 source and destination addresses and
 * UDP/TCP source and destination ports are the template's plus i (each field
 * wrapping on its own width). The IPv4 header checksum and the UDP/TCP
 * checksum are updated incrementally (RFC 1624) from the template's, so they
 * stay valid; a UDP checksum of 0 (none) stays 0. Every field is written from
 * the template's values in flow_config, never from what the frame holds: live
 * frames reuse their pages, and a page may still hold an earlier flow.
 *
 * Maps:
 *   tx_port      BPF_MAP_TYPE_DEVMAP, 1 entry, __u32 key 0 -> target ifindex
 *                (resolved in the network namespace of the process that
 *                writes the entry; loaders that support devmap programs widen
 *                the value to the 8-byte struct bpf_devmap_val)
 *   flow_config  BPF_MAP_TYPE_ARRAY, 1 entry: struct flow_config (below),
 *                written by the loader before the test run; flows < 2 sends
 *                frames as they are
 *   flow_next    BPF_MAP_TYPE_PERCPU_ARRAY, 1 entry: the next flow per CPU
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

SEC("xdp")
int xdp_live_tx(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_port, 0, 0);
}

/* The template's fields, as they are in the frame (network byte order). */
struct flow_config {
	__u32 flows;   /* N; below 2: frames unchanged */
	__u32 saddr;   /* IPv4 source address */
	__u32 daddr;   /* IPv4 destination address */
	__u16 sport;   /* UDP/TCP source port */
	__u16 dport;   /* UDP/TCP destination port */
	__u16 ip_csum; /* IPv4 header checksum */
	__u16 l4_csum; /* UDP/TCP checksum */
	__u16 l4_off;  /* offset of the UDP/TCP header (the IPv4 header is at 14) */
	__u8 l4_proto; /* IPPROTO_UDP or IPPROTO_TCP */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_config);
} flow_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} flow_next SEC(".maps");

#define IPV4_OFF 14
#define PROTO_TCP 6
#define PROTO_UDP 17

static __always_inline __u16 be16_add(__u16 be, __u32 i)
{
	return __builtin_bswap16((__u16)(__builtin_bswap16(be) + i));
}

static __always_inline __u32 be32_add(__u32 be, __u32 i)
{
	return __builtin_bswap32(__builtin_bswap32(be) + i);
}

/* One's complement sum of ~old and new over a 32-bit field, in 16-bit words. */
static __always_inline __u32 csum_replace32(__u32 acc, __u32 old, __u32 new)
{
	return acc + (__u16)~old + (__u16)~(old >> 16) + (new & 0xffff) + (new >> 16);
}

static __always_inline __u32 csum_replace16(__u32 acc, __u16 old, __u16 new)
{
	return acc + (__u16)~old + new;
}

static __always_inline __u16 csum_finish(__u16 base, __u32 acc)
{
	acc += (__u16)~base;
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)~acc;
}

static __always_inline void store16(void *at, __u16 v)
{
	__builtin_memcpy(at, &v, sizeof(v));
}

SEC("xdp")
int xdp_live_tx_flows(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	struct flow_config *cfg = bpf_map_lookup_elem(&flow_config, &key);
	__u32 *next = bpf_map_lookup_elem(&flow_next, &key);

	if (!cfg || !next || cfg->flows < 2)
		goto out;
	__u32 i = *next;
	*next = i + 1 >= cfg->flows ? 0 : i + 1;
	if (i >= cfg->flows)
		i = 0;

	__u32 off = cfg->l4_off & 0x7f;
	__u8 *ip = data + IPV4_OFF;
	__u8 *l4 = data + off;
	if ((void *)(ip + 20) > data_end || (void *)(l4 + 18) > data_end)
		goto out;

	__u32 saddr = be32_add(cfg->saddr, i), daddr = be32_add(cfg->daddr, i);
	__u16 sport = be16_add(cfg->sport, i), dport = be16_add(cfg->dport, i);

	__u32 acc = csum_replace32(0, cfg->saddr, saddr);
	acc = csum_replace32(acc, cfg->daddr, daddr);
	store16(ip + 10, csum_finish(cfg->ip_csum, acc));
	store16(ip + 12, saddr & 0xffff);
	store16(ip + 14, saddr >> 16);
	store16(ip + 16, daddr & 0xffff);
	store16(ip + 18, daddr >> 16);

	/* The pseudo-header's addresses and the ports. */
	acc = csum_replace16(acc, cfg->sport, sport);
	acc = csum_replace16(acc, cfg->dport, dport);
	store16(l4 + 0, sport);
	store16(l4 + 2, dport);
	if (cfg->l4_proto == PROTO_UDP && cfg->l4_csum != 0) {
		__u16 csum = csum_finish(cfg->l4_csum, acc);
		store16(l4 + 6, csum ? csum : 0xffff);
	} else if (cfg->l4_proto == PROTO_TCP) {
		store16(l4 + 16, csum_finish(cfg->l4_csum, acc));
	}
out:
	return bpf_redirect_map(&tx_port, 0, 0);
}

char _license[] SEC("license") = "GPL";
