#!/usr/bin/env bash
# Builds every ebpf/<name>.bpf.c into ebpf/obj/<name>.bpf.o.
#
#   ci/build-ebpf.sh           build into ebpf/obj/ (the objects are committed;
#                              the harness embeds them with include_bytes!)
#   ci/build-ebpf.sh --check   build into a temporary directory and fail if a
#                              committed object differs byte for byte, is
#                              missing, or has no source
#
# Exit codes: 0 ok; 1 --check found a difference or a build failed;
#             2 usage error or clang not installed.
#
# The objects are byte-identical whatever the checkout path: we compile
# relative file names from inside ebpf/, and tell clang that the compilation
# directory is "." so that no absolute path reaches DWARF or BTF. They do
# depend on the clang version (CI uses Debian bookworm's clang 14) and on the
# UAPI headers, so rebuild with the same toolchain as CI.
set -euo pipefail

usage() {
	echo "usage: $0 [--check]" >&2
	exit 2
}

check=0
case $# in
0) ;;
1) [[ $1 == --check ]] || usage; check=1 ;;
*) usage ;;
esac

clang=${CLANG:-clang}
if ! command -v "$clang" >/dev/null 2>&1; then
	echo "error: $clang not found; install it (apt-get install -y clang llvm libbpf-dev)" >&2
	exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src_dir=$root/ebpf
obj_dir=$src_dir/obj

cflags=(
	-O2 -g -target bpf -Wall -Werror
	"-I/usr/include/$(uname -m)-linux-gnu"
	# Keep the checkout path out of DWARF (DW_AT_comp_dir) and BTF.
	"-fdebug-prefix-map=$src_dir=."
	-fdebug-compilation-dir=.
)

cd "$src_dir"
shopt -s nullglob
sources=(*.bpf.c)
if ((${#sources[@]} == 0)); then
	echo "error: no ebpf/*.bpf.c sources found" >&2
	exit 1
fi

# build OUT_DIR: compiles every source into OUT_DIR/<name>.bpf.o
build() {
	local out=$1 src
	for src in "${sources[@]}"; do
		"$clang" "${cflags[@]}" -c "$src" -o "$out/${src%.c}.o"
	done
}

echo "building ${#sources[@]} BPF object(s) with $("$clang" --version | head -n 1)" >&2

if ((check == 0)); then
	mkdir -p "$obj_dir"
	build "$obj_dir"
	# An object whose source was removed would otherwise stay committed.
	for obj in "$obj_dir"/*.bpf.o; do
		name=$(basename "$obj" .o)
		if [[ ! -e $name.c ]]; then
			echo "removing ebpf/obj/$name.o: no source ebpf/$name.c" >&2
			rm -f -- "$obj"
		fi
	done
	for src in "${sources[@]}"; do
		echo "built ebpf/obj/${src%.c}.o" >&2
	done
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
build "$tmp"

problems=()
for src in "${sources[@]}"; do
	obj=${src%.c}.o
	if [[ ! -e $obj_dir/$obj ]]; then
		problems+=("ebpf/obj/$obj: missing (source ebpf/$src)")
	elif ! cmp -s "$tmp/$obj" "$obj_dir/$obj"; then
		problems+=("ebpf/obj/$obj: differs from a fresh build of ebpf/$src")
	fi
done
for obj in "$obj_dir"/*.bpf.o; do
	name=$(basename "$obj" .o)
	if [[ ! -e $name.c ]]; then
		problems+=("ebpf/obj/$name.o: no source ebpf/$name.c")
	fi
done

if ((${#problems[@]} > 0)); then
	echo "committed BPF objects are stale; run ci/build-ebpf.sh and commit ebpf/obj/:" >&2
	printf '  %s\n' "${problems[@]}" >&2
	exit 1
fi
echo "ebpf/obj/ matches a fresh build (${#sources[@]} object(s))" >&2
