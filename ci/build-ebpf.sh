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
# depend on the clang version and on the UAPI headers: ebpf/obj/COMPILER
# records the `clang --version` line of the compiler that built them (Debian
# bookworm's clang 14, as on CI). With another compiler, --check says so and,
# instead of comparing bytes, checks what can be checked: every source still
# builds, and the bundled scenarios pass on all three execution paths with the
# fresh objects standing in for the committed ones (XDPLAB_BUNDLED_OBJECTS;
# this needs root, like any lab).
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

compiler=$("$clang" --version | head -n 1)
expected=$(cat "$obj_dir/COMPILER" 2>/dev/null || echo "(unrecorded: ebpf/obj/COMPILER is missing)")

if ((check == 0)); then
	mkdir -p "$obj_dir"
	build "$obj_dir"
	echo "$compiler" >"$obj_dir/COMPILER"
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

if [[ $compiler != "$expected" ]]; then
	echo "ebpf/obj/ was built with: $expected" >&2
	echo "this machine's compiler:  $compiler" >&2
	echo "objects differ between compilers, so their bytes are not compared; instead the" >&2
	echo "bundled scenarios run on all three execution paths with the fresh objects" >&2
	missing=()
	for src in "${sources[@]}"; do
		[[ -e $obj_dir/${src%.c}.o ]] || missing+=("ebpf/obj/${src%.c}.o: missing (source ebpf/$src)")
	done
	if ((${#missing[@]} > 0)); then
		printf '  %s\n' "${missing[@]}" >&2
		exit 1
	fi
	cd "$root"
	if XDPLAB_BUNDLED_OBJECTS=$tmp cargo run --quiet --release -- run --paths native,generic,test-run >&2; then
		echo "fresh objects from $compiler pass the bundled scenarios on every path" >&2
		exit 0
	fi
	echo "fresh objects from $compiler fail the bundled scenarios (above)" >&2
	exit 1
fi

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
