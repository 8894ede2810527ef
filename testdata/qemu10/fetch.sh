#!/bin/sh
# fetch.sh unpacks QEMU 10.0 (x86_64) from Debian bookworm-backports into a
# cache directory, next to the system QEMU (7.2), without installing it.
#
#   testdata/qemu10/fetch.sh [DIR]     (default ~/.cache/lockstep/qemu10)
#
# It uses a private apt sources list and state (Dir::Etc::sourcelist,
# Dir::State::Lists, Dir::Cache under DIR/apt): the system's apt state and
# its QEMU are never touched. `apt-get download` fetches the .debs and
# `dpkg-deb -x` unpacks them into DIR/root. Then DIR/qemu-system-x86_64-10
# is a wrapper that runs the unpacked binary with its own module directory
# (QEMU_MODULE_DIR: else it loads 7.2's modules and aborts, "Only modules
# from the same build can be loaded") and its own firmware (-L: backports'
# SeaBIOS and option ROMs). A scenario says `qemu: <DIR>/qemu-system-x86_64-10`.
# The shared libraries it links are those of bookworm's QEMU 7.2, which the
# system has. Re-running is cheap: a complete cache is left alone.
set -eu
DIR=${1:-${LOCKSTEP_QEMU10:-$HOME/.cache/lockstep/qemu10}}
SUITE=bookworm-backports
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# ipxe-qemu (NIC option ROMs) is not in backports: QEMU falls back to the
# system's /usr/share/qemu after -L for what the cache lacks.
PKGS="qemu-system-x86 qemu-system-common qemu-system-data seabios"
# QEMU looks a module up in QEMU_MODULE_DIR and then in its built-in
# directory, where the system's 7.2 modules are (from qemu-system-gui and
# qemu-block-extra when installed); loading one of those aborts 10.0. So
# the cache holds every module package backports has, where one exists.
OPTIONAL="qemu-system-gui qemu-block-extra qemu-system-modules-opengl qemu-system-modules-spice"
WRAP=$DIR/qemu-system-x86_64-10

if [ -x "$WRAP" ] && "$WRAP" --version >/dev/null 2>&1; then
	echo "qemu10: $("$WRAP" --version | head -1) in $DIR"
	exit 0
fi
for t in apt-get dpkg-deb; do
	command -v $t >/dev/null || { echo "qemu10: $t not found (Debian or Ubuntu needed)" >&2; exit 1; }
done
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/debs" "$DIR/root"
KEY=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEY" ] || { echo "qemu10: $KEY missing (package debian-archive-keyring)" >&2; exit 1; }
echo "deb [signed-by=$KEY] $MIRROR $SUITE main" > "$DIR/apt/sources.list"
APT="-o Dir::Etc::sourcelist=$DIR/apt/sources.list -o Dir::Etc::sourceparts=- \
 -o Dir::State::Lists=$DIR/apt/lists -o Dir::Cache=$DIR/apt/cache -o APT::Get::List-Cleanup=0 \
 -o Debug::NoLocking=1 -o APT::Sandbox::User=$(id -un)"
apt-get $APT -q update >/dev/null
cd "$DIR/debs"
for p in $PKGS; do
	# The backports version: the system lists are not read, so the
	# candidate from the private list can still lose to an installed
	# version; name the version explicitly.
	v=$(apt-cache $APT madison "$p" | awk -v s="$SUITE" '$0 ~ s {print $3; exit}')
	[ -n "$v" ] || { echo "qemu10: $p not in $SUITE" >&2; exit 1; }
	apt-get $APT -q download "$p=$v" >/dev/null
done
for p in $OPTIONAL; do
	v=$(apt-cache $APT madison "$p" | awk -v s="$SUITE" '$0 ~ s {print $3; exit}')
	[ -n "$v" ] && apt-get $APT -q download "$p=$v" >/dev/null
done
for d in *.deb; do dpkg-deb -x "$d" "$DIR/root"; done

R=$DIR/root
BIN=$R/usr/bin/qemu-system-x86_64
MOD=$R/usr/lib/x86_64-linux-gnu/qemu
[ -x "$BIN" ] || { echo "qemu10: $BIN missing after unpacking" >&2; exit 1; }
[ -d "$MOD" ] || { echo "qemu10: module directory $MOD missing" >&2; exit 1; }
# Firmware: Debian's QEMU searches /usr/share/qemu, then /usr/share/seabios
# and /usr/lib/ipxe/qemu (its --firmwarepath), which hold the system's
# (bookworm) SeaBIOS. -L is searched first: one directory with the
# unpacked QEMU data and backports' SeaBIOS.
FW=$DIR/firmware
rm -rf "$FW"; mkdir -p "$FW"
for f in "$R"/usr/share/seabios/* "$R"/usr/share/qemu/* ; do
	n=$(basename "$f")
	t=$f
	if [ -L "$f" ]; then
		l=$(readlink "$f")
		case $l in /*) t=$R$l ;; *) t=$(dirname "$f")/$l ;; esac
	fi
	[ -e "$t" ] && ln -sf "$t" "$FW/$n"
done
cat > "$WRAP" <<W
#!/bin/sh
# QEMU 10.0 from $SUITE, unpacked by testdata/qemu10/fetch.sh.
export QEMU_MODULE_DIR="$MOD"
exec "$BIN" -L "$FW" "\$@"
W
chmod +x "$WRAP"
"$WRAP" --version | head -1
echo "qemu10: $WRAP"
