#!/usr/bin/env bash
# fetch.sh downloads two Debian bookworm cloud kernels, their -dbg vmlinux and
# busybox-static, and builds a busybox initramfs, into a cache directory.
#
#   LOCKSTEP_LINUX_CACHE  cache dir (default $HOME/.cache/lockstep/linux)
#   LINUX_A_VERSION       ABI of side a, e.g. 6.1.0-47 (default: the oldest available)
#   LINUX_B_VERSION       ABI of side b, e.g. 6.1.0-56 (default: the newest available)
#
# The defaults are far apart on purpose: adjacent ABIs are often rebuilds of
# the same upstream release (6.1.0-55 and -56 are both 6.1.192) and differ
# in little more than the banner.
#
# It is idempotent: whatever is already in the cache is kept. On success it
# writes $CACHE/env.sh, which exports the LINUX_* variables linux.yaml uses.
set -euo pipefail

CACHE=${LOCKSTEP_LINUX_CACHE:-$HOME/.cache/lockstep/linux}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
log() { printf 'fetch: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v apt-get >/dev/null || die "apt-get not found: a Debian (bookworm) host is needed"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

# available lists the ABIs (6.1.0-N) that have both -unsigned and -dbg cloud packages.
available() {
	apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-dbg$' |
		sed -n 's/^linux-image-\(6\.1\.0-[0-9]*\)-cloud-amd64-dbg .*/\1/p' |
		while read -r v; do
			apt-cache show "linux-image-$v-cloud-amd64-unsigned" >/dev/null 2>&1 && echo "$v"
		done | sort -t- -k2,2n
}

A=${LINUX_A_VERSION:-}
B=${LINUX_B_VERSION:-}
if [[ -z $A || -z $B ]]; then
	if [[ -f $CACHE/env.sh ]]; then
		# Reuse the pair fetched before, so a re-run does not move to newer kernels.
		A=${A:-$(sed -n 's/^export LINUX_A_VERSION=//p' "$CACHE/env.sh")}
		B=${B:-$(sed -n 's/^export LINUX_B_VERSION=//p' "$CACHE/env.sh")}
	fi
fi
if [[ -z $A || -z $B ]]; then
	mapfile -t vers < <(available)
	((${#vers[@]} >= 2)) || die "fewer than two linux-image-6.1.0-*-cloud-amd64 versions in apt; run apt-get update"
	A=${A:-${vers[0]}}
	B=${B:-${vers[-1]}}
fi
[[ $A != "$B" ]] || die "LINUX_A_VERSION and LINUX_B_VERSION are both $A"
log "kernels: a=$A b=$B cache=$CACHE"

DL=$CACHE/deb
mkdir -p "$DL"

# download NAME fetches the newest candidate .deb of NAME into $DL unless one is there.
download() {
	local name=$1
	if compgen -G "$DL/${name}_*.deb" >/dev/null; then
		return
	fi
	log "apt-get download $name"
	local opts=()
	# As root, apt's _apt sandbox user cannot write to a cache under /root.
	((EUID == 0)) && opts=(-o APT::Sandbox::User=root)
	(cd "$DL" && apt-get "${opts[@]}" download "$name") || die "apt-get download $name failed"
}

# kernel VERSION extracts vmlinuz and vmlinux of VERSION into $CACHE/VERSION.
kernel() {
	local v=$1 dir=$CACHE/$1 rel=$1-cloud-amd64
	mkdir -p "$dir"
	if [[ ! -s $dir/vmlinuz ]]; then
		download "linux-image-$rel-unsigned"
		log "extract vmlinuz-$rel"
		dpkg-deb --fsys-tarfile "$DL"/linux-image-"$rel"-unsigned_*.deb |
			tar -xO "./boot/vmlinuz-$rel" >"$dir/vmlinuz.tmp"
		mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
		rm -f "$DL"/linux-image-"$rel"-unsigned_*.deb
	fi
	if [[ ! -s $dir/vmlinux ]]; then
		download "linux-image-$rel-dbg"
		log "extract vmlinux-$rel (decompresses ~1.7 GB of package, keeps ~600 MB)"
		dpkg-deb --fsys-tarfile "$DL"/linux-image-"$rel"-dbg_*.deb |
			tar -xO "./usr/lib/debug/boot/vmlinux-$rel" >"$dir/vmlinux.tmp"
		mv "$dir/vmlinux.tmp" "$dir/vmlinux"
		rm -f "$DL"/linux-image-"$rel"-dbg_*.deb
	fi
}

# newc writes a gzip'd newc cpio of the current directory to $1, with cpio or python3.
newc() {
	if command -v cpio >/dev/null; then
		find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 >"$1"
		return
	fi
	command -v python3 >/dev/null || die "neither cpio nor python3 is available to build the initramfs"
	python3 - "$1" <<'PY'
import gzip, os, stat, sys
out = gzip.open(sys.argv[1], "wb", 9)
def entry(name, mode, data=b"", ino=[0]):
    ino[0] += 1
    nb = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % x for x in (ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
    out.write(hdr.encode() + nb + b"\0" * ((-(110 + len(nb))) % 4))
    out.write(data + b"\0" * ((-len(data)) % 4))
for root, dirs, files in os.walk("."):
    dirs.sort()
    for n in sorted(dirs + files):
        p = os.path.join(root, n)
        st = os.lstat(p)
        name = p[2:]
        if stat.S_ISLNK(st.st_mode):
            entry(name, st.st_mode, os.readlink(p).encode())
        elif stat.S_ISDIR(st.st_mode):
            entry(name, st.st_mode)
        else:
            entry(name, st.st_mode, open(p, "rb").read())
entry("TRAILER!!!", 0)
out.close()
PY
}

initramfs() {
	local out=$CACHE/initramfs.cpio.gz
	[[ -s $out ]] && return
	download busybox-static
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	dpkg-deb -x "$DL"/busybox-static_*.deb "$tmp/pkg"
	mkdir -p "$tmp/root/bin" "$tmp/root/proc" "$tmp/root/sys" "$tmp/root/dev"
	cp "$tmp/pkg/bin/busybox" "$tmp/root/bin/busybox"
	for a in sh mount echo poweroff; do ln -s busybox "$tmp/root/bin/$a"; done
	cat >"$tmp/root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
echo "lockstep: init done on $(cat /proc/version)"
poweroff -f
INIT
	chmod 0755 "$tmp/root/init"
	(cd "$tmp/root" && newc "$out.tmp")
	mv "$out.tmp" "$out"
	log "built $out"
}

kernel "$A"
kernel "$B"
initramfs

cat >"$CACHE/env.sh.tmp" <<ENV
# Written by testdata/linux/fetch.sh; source it before running linux.yaml.
export LINUX_A_VERSION=$A
export LINUX_B_VERSION=$B
export LINUX_A_KERNEL=$CACHE/$A/vmlinuz
export LINUX_A_VMLINUX=$CACHE/$A/vmlinux
export LINUX_B_KERNEL=$CACHE/$B/vmlinuz
export LINUX_B_VMLINUX=$CACHE/$B/vmlinux
export LINUX_INITRD=$CACHE/initramfs.cpio.gz
export LINUX_TIMEOUT=\${LINUX_TIMEOUT:-900s}
export LINUX_INITCALL_HIT=\${LINUX_INITCALL_HIT:-20}
ENV
mv "$CACHE/env.sh.tmp" "$CACHE/env.sh"
log "ready: source $CACHE/env.sh"
