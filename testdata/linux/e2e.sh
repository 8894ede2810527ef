#!/usr/bin/env bash
# e2e.sh runs lockstep against two real Debian cloud kernels: it fetches
# them (testdata/linux/fetch.sh, cached), builds bin/lockstep and runs
# testdata/linux/linux.yaml, writing reports to $LOCKSTEP_LINUX_OUT
# (default out/linux). The exit status is lockstep's: 0 when the run found
# the divergences linux.yaml expects.
#
#   LOCKSTEP_LINUX_CACHE  cache dir (default $HOME/.cache/lockstep/linux)
#   LOCKSTEP_LINUX_OUT    report dir (default out/linux)
#   LINUX_INITCALL_HIT    which do_one_initcall is the second sync point (default 20)
#   LINUX_TIMEOUT         whole-run timeout (default 900s)
#   E2E_GO_TEST=1         also run the Go test (go test -tags e2e_linux -run TestLinuxE2E ./lockstep)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CACHE=${LOCKSTEP_LINUX_CACHE:-$HOME/.cache/lockstep/linux}
OUT=${LOCKSTEP_LINUX_OUT:-out/linux}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

t0=$(now)
testdata/linux/fetch.sh
t1=$(now)
echo "e2e: fetch $(secs "$t0" "$t1")s" >&2

# shellcheck disable=SC1091
source "$CACHE/env.sh"
${GO:-go} build -o bin/lockstep ./cmd/lockstep

mkdir -p "$OUT"
t2=$(now)
status=0
bin/lockstep run testdata/linux/linux.yaml -o "$OUT" --format text,json,html,md "$@" || status=$?
t3=$(now)
echo "e2e: lockstep run $(secs "$t2" "$t3")s, exit status $status; reports in $OUT" >&2

if [[ ${E2E_GO_TEST:-0} == 1 ]]; then
	LOCKSTEP_LINUX_CACHE=$CACHE ${GO:-go} test -tags e2e_linux -count=1 -timeout 30m -run TestLinuxE2E -v ./lockstep
fi
exit "$status"
