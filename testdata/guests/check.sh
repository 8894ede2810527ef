#!/bin/sh
# check.sh: boot every demo guest under TCG and check its QEMU exit status,
# its serial output and its symbols. Run by `make check`. Needs
# qemu-system-x86_64 and binutils' readelf; the aarch64, riscv64 and s390x guests
# are booted too where built and where their QEMU is installed.
set -u
cd "$(dirname "$0")"
B=build
QEMU=${QEMU:-qemu-system-x86_64}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Extra QEMU arguments for the next run (e.g. "-smp 2"); run_tag names its
# output files apart from a run of the same guest and CPU without them.
extra=
run_tag=

# run NAME CPU TIMEOUT: boot build/NAME.elf, leave serial in
# $tmp/NAME.CPU$run_tag.out and the exit status in $status.
run() {
	# shellcheck disable=SC2086 # $extra is a list of arguments
	timeout "$3" "$QEMU" -machine pc -cpu "$2" -accel tcg -m 64M -nodefaults \
		-display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4 \
		$extra -kernel "$B/$1.elf" >"$tmp/$1.$2$run_tag.out" 2>"$tmp/$1.$2$run_tag.err"
	status=$?
}

# expect NAME CPU STATUS LAST-SERIAL-LINE-PATTERN [TIMEOUT]
expect() {
	run "$1" "$2" "${5:-10}"
	last=$(tail -n 1 "$tmp/$1.$2$run_tag.out")
	case $last in
	$4) matched=1 ;;
	*) matched=0 ;;
	esac
	if [ "$status" -ne "$3" ] || [ "$matched" -ne 1 ]; then
		echo "FAIL $1 (-cpu $2${extra:+ $extra}): status $status (want $3), last line '$last' (want '$4')"
		cat "$tmp/$1.$2$run_tag.err"
		fail=1
	else
		echo "ok   $1 (-cpu $2${extra:+ $extra}): status $status, '$last'"
	fi
}

# differ NAME PATTERN: the serial line matching PATTERN differs between
# -cpu qemu64 and -cpu max (both must have run).
differ() {
	a=$(grep -e "$2" "$tmp/$1.qemu64.out")
	b=$(grep -e "$2" "$tmp/$1.max.out")
	if [ -z "$a" ] || [ "$a" = "$b" ]; then
		echo "FAIL $1: '$2' does not differ between qemu64 and max: '$a' / '$b'"
		fail=1
	else
		echo "ok   $1: qemu64 and max differ at '$2'"
	fi
}

# syms NAME SYMBOL...: each SYMBOL must be a GLOBAL FUNC or OBJECT with a size.
syms() {
	elf=$B/$1.elf
	shift
	for s in "$@"; do
		if ! readelf -sW "$elf" | awk -v s="$s" '$8 == s && $5 == "GLOBAL" && ($4 == "FUNC" || $4 == "OBJECT") && $3 != "0" { f = 1 } END { exit !f }'; then
			echo "FAIL $elf: $s is not a sized GLOBAL FUNC/OBJECT"
			fail=1
		fi
	done
}

demo="kmain checksum path_a path_b path_c leaf marker report results demo_input"
syms demo-good $demo
syms demo-bad $demo regression_pad regression_scratch
syms demo-hang $demo hang_here
syms demo-exit $demo early_exit
syms demo-spin-good $demo spin tick spin_ticks
syms demo-spin-bad $demo spin tick spin_ticks regression_scratch
syms alloc kmain alloc make_item fill report results pool pool_used failures
syms cpu-probe kmain cpuid_result probe_cpuid probe_flags probe_values probe_done
for g in deep-1e3 deep-1e5 deep-1e6 deep-1e7 deep-1e8 deep-1e9 deep-good deep-bad; do
	syms $g kmain deep_start deep_mix deep_tail deep_verify deep_state
done
syms deep-stash kmain deep_start deep_mix deep_verify deep_state deep_stash
for g in tsc tsc-bad; do
	syms $g kmain tsc_compute tsc_done tsc_sample tsc_value
done
syms stepexit kmain window_start late_point stepexit_count
syms stepexit-pad kmain window_start late_point stepexit_count stepexit_pad
syms stores-good kmain stores_start store_word stores_total stores_done stores_out
syms stores-bad kmain stores_start store_word stores_total stores_done stores_out
for g in rm16-good rm16-bad; do
	syms $g pvh_start rm16_enter rm16_real rm_main rm_checksum rm_fill rm_done \
		rm_exit rm_table rm_input rm16_delta rm16_stack
done
syms smp kmain ap_trampoline ap_pm32 ap_long ap_main ap_work ap_fold lapic_map \
	icr_send smp_start_ap smp_done ap_result ap_id ap_done ap_stack

expect demo-good qemu64 1 "demo: done"
expect demo-bad qemu64 1 "demo: done"
expect demo-exit qemu64 7 "demo: early exit"
expect demo-hang qemu64 124 "demo: hang" 2
expect demo-spin-good qemu64 124 "demo: spin" 2
expect demo-spin-bad qemu64 124 "demo: spin" 2
expect alloc qemu64 1 "alloc: done"
expect cpu-probe qemu64 1 "probe: done"
expect cpu-probe max 1 "probe: done"
differ cpu-probe "leaf=0x0000000000000001 "
for g in deep-1e3 deep-1e5 deep-1e6 deep-1e7 deep-stash; do
	expect $g qemu64 1 "deep: state=0x*"
	expect $g max 1 "deep: state=0x*"
	differ $g "deep: state="
done
expect deep-good qemu64 1 "deep: verify ok"
expect deep-bad qemu64 3 "deep: verify failed"
expect tsc qemu64 1 "tsc: done"
expect tsc-bad qemu64 1 "tsc: done"
expect stepexit qemu64 1 "stepexit: start"
expect stepexit-pad qemu64 1 "stepexit: start"
expect stores-good qemu64 1 "stores: done"
expect stores-bad qemu64 1 "stores: done"
expect rm16-good qemu64 1 "rm16: done"
grep -q "table\[5\]=0x1111$" "$tmp/rm16-good.qemu64.out" || { echo "FAIL rm16-good: table[5] is not 0x1111"; fail=1; }
expect rm16-bad qemu64 1 "rm16: done"
grep -q "table\[5\]=0x1112$" "$tmp/rm16-bad.qemu64.out" || { echo "FAIL rm16-bad: table[5] is not 0x1112"; fail=1; }
extra="-device loader,addr=0x200000,data=1,data-len=2" run_tag=.input1
expect rm16-good qemu64 1 "rm16: done"
grep -q "table\[5\]=0x1112$" "$tmp/rm16-good.qemu64.input1.out" || { echo "FAIL rm16-good with input 1: table[5] is not 0x1112"; fail=1; }
extra="-smp 2" run_tag=.smp2
expect smp qemu64 1 "smp: done"
extra= run_tag=
if [ "$(cmp -l "$B/rm16-good.elf" "$B/rm16-bad.elf" | wc -l)" -ne 1 ]; then
	echo "FAIL rm16-bad: does not differ from rm16-good in exactly one byte"
	fail=1
fi
run tsc qemu64 10
run tsc-bad qemu64 10
if cmp -s "$tmp/tsc.qemu64.out" "$tmp/tsc-bad.qemu64.out"; then
	echo "FAIL tsc-bad: value does not differ from tsc"
	fail=1
fi

# The aarch64, riscv64 and s390x guests (cross.mk), where built and where
# their QEMU is installed. xexpect ARCH NAME CPU STATUS LAST-LINE-PATTERN
xexpect() {
	case $1 in
	aarch64) q="qemu-system-aarch64 -machine virt" ;;
	riscv64) q="qemu-system-riscv64 -machine virt -bios none" ;;
	s390x) q="qemu-system-s390x -machine s390-ccw-virtio" ;;
	esac
	out=$tmp/$1.$2.$(echo "$3" | tr -c 'a-z0-9\n' _).out
	# shellcheck disable=SC2086 # $q is a command and its arguments
	timeout 10 $q -cpu "$3" -accel tcg -m 128M -nodefaults -display none -serial stdio \
		-no-reboot -kernel "$B/$1/$2.elf" >"$out" 2>"$out.err"
	status=$?
	last=$(tail -n 1 "$out")
	case $last in
	$5) matched=1 ;;
	*) matched=0 ;;
	esac
	if [ "$status" -ne "$4" ] || [ "$matched" -ne 1 ]; then
		echo "FAIL $1/$2 (-cpu $3): status $status (want $4), last line '$last' (want '$5')"
		cat "$out.err"
		fail=1
	else
		echo "ok   $1/$2 (-cpu $3): status $status, '$last'"
	fi
}
for a in aarch64 riscv64 s390x; do
	if [ ! -f "$B/$a/demo-good.elf" ] || ! command -v "qemu-system-$a" >/dev/null 2>&1; then
		echo "skip $a guests: not built or qemu-system-$a missing"
		continue
	fi
	case $a in
	aarch64) cpus="cortex-a57 max" bad=0 ;;
	riscv64) cpus="rv64 rv64,c=false" bad=1 ;;
	s390x) cpus="qemu z900" bad=0 ;;
	esac
	first=${cpus%% *}
	for g in demo-good demo-bad; do xexpect $a $g "$first" 0 "demo: done"; done
	for g in stores-good stores-bad; do xexpect $a $g "$first" 0 "stores: done"; done
	xexpect $a deep-good "$first" 0 "deep: verify ok"
	if [ "$bad" = 1 ]; then
		xexpect $a demo-exit "$first" 3 "demo: early exit"
	else
		xexpect $a demo-exit "$first" 0 "exit: value=0x0000000000000003"
	fi
	if [ "$bad" = 1 ]; then
		xexpect $a deep-bad "$first" 1 "deep: verify failed"
	else
		xexpect $a deep-bad "$first" 0 "exit: value=0x0000000000000001"
	fi
	for c in $cpus; do
		xexpect $a cpu-probe "$c" 0 "probe: done"
		xexpect $a deep-1e3 "$c" 0 "deep: state=0x*"
	done
done

[ "$fail" -eq 0 ] && echo "all guests ok"
exit "$fail"
