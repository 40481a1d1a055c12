// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_port_guard.bpf.c - drops IPv4 UDP and TCP frames to one destination port, written the
 * way libbpf users write XDP programs (and loaded by xdplab without changing it):
 *
 * - a section name libbpf does not know, SEC("xdp_guard_ports") (load it as bpftool's
 *   `type xdp` does: `[program] type = "xdp"`);
 * - its maps pinned by name (LIBBPF_PIN_BY_NAME), which xdplab pins in the run's own bpffs;
 * - its configuration in .rodata (`const volatile`), set by the loader before load:
 *     blocked_port  __u16, destination port to drop (host order); 0, the default, drops none
 *     count_only    bool, count blocked frames in port_stats but pass them
 *   and in .data: blocked_action __u32, the verdict for a blocked frame (default XDP_DROP);
 * - a second program, xdp_port_guard_off in SEC("xdp/off"), that passes every frame
 *   (an object holds several programs; the scenario's `entry` picks one).
 *
 *   port_stats  BPF_MAP_TYPE_ARRAY, pinned by name, 2 entries, __u32 -> __u64:
 *               0 = frames passed, 1 = frames to the blocked port
 *   port_seen   BPF_MAP_TYPE_HASH, pinned by name, 64 entries, __u16 destination port
 *               (host order) -> __u64 UDP/TCP frames seen
 *
 * frames_seen (.bss, __u64) counts every frame the program sees.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u16 blocked_port = 0;
const volatile bool count_only = false;
__u32 blocked_action = XDP_DROP;
__u64 frames_seen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} port_seen SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&port_stats, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/* A function of its own (a BPF-to-BPF call), as libbpf programs often have. */
static __noinline int see(__u16 port)
{
	__u64 one = 1, *value = bpf_map_lookup_elem(&port_seen, &port);

	if (value)
		__sync_fetch_and_add(value, 1);
	else
		bpf_map_update_elem(&port_seen, &port, &one, BPF_NOEXIST);
	return 0;
}

SEC("xdp_guard_ports")
int xdp_port_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *l4;
	__u16 port;

	__sync_fetch_and_add(&frames_seen, 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto pass;
	if (ip->ihl != 5 || (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP))
		goto pass;
	/* UDP and TCP both start with the source and destination ports. */
	l4 = (void *)(ip + 1);
	if ((void *)(l4 + 1) > data_end)
		goto pass;
	port = bpf_ntohs(l4->dest);
	see(port);
	if (blocked_port == 0 || port != blocked_port)
		goto pass;
	count(1);
	if (count_only)
		return XDP_PASS;
	return blocked_action;
pass:
	count(0);
	return XDP_PASS;
}

SEC("xdp/off")
int xdp_port_guard_off(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
