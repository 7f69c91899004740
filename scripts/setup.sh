#!/bin/sh
# Everything a fresh Debian 12 machine needs to build chand: packages (only
# if missing), autotools bootstrap, configure, build.  Usage:
#   scripts/setup.sh [BUILD_DIR [CONFIGURE_ARGS...]]
# Run as root on a bare machine (installs packages), or as a user once they
# are installed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
list_only=false
[ "${1:-}" = "--list-packages" ] && list_only=true
list_test=false
[ "${1:-}" = "--list-test-packages" ] && list_test=true
build=${1:-$top/build}
[ $# -gt 0 ] && shift

PKGS="build-essential autoconf automake libtool pkg-config libgnutls28-dev gnutls-bin \
libsqlite3-dev sqlite3 libconfig-dev libjansson-dev libmicrohttpd-dev libcriterion-dev openssl valgrind \
iproute2 procps"

# The packages the tests need beyond the build: libFuzzer for fuzz/run.sh;
# real MQTT clients for the telemetry channel tests (mosquitto_pub/sub,
# Paho Python and C; mosquitto for mosquitto_passwd).
TEST_PKGS="clang libclang-rt-14-dev mosquitto mosquitto-clients python3-paho-mqtt \
paho.mqtt.c-examples"
if $list_only; then
	echo $PKGS $TEST_PKGS
	exit 0
fi
if $list_test; then
	echo $TEST_PKGS
	exit 0
fi

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages:$missing (run as root, or apt-get install them)" >&2
		exit 1
	fi
	echo "setup: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	autoreconf -fi
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ] || [ $# -gt 0 ]; then
	"$top/configure" --enable-werror "$@"
fi
make -j"$(nproc)"
