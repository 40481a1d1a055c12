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
 * Maps:
 *   tx_port  BPF_MAP_TYPE_DEVMAP, 1 entry, __u32 key 0 -> target ifindex
 *            (resolved in the network namespace of the process that writes
 *            the entry; loaders that support devmap programs widen the value
 *            to the 8-byte struct bpf_devmap_val)
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

char _license[] SEC("license") = "GPL";
