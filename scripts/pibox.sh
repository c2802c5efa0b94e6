#!/usr/bin/env bash
# pibox.sh: an emulated Raspberry Pi (Debian 12 "bookworm", arm64, Python 3.11) in a directory, to prove that the
# door installs from edgeface's wheel and decides exactly as on x86. Not part of CI: it needs root, about 20 minutes
# for the root file system (most of it debootstrap's second stage under emulation) and network access to Debian's
# mirror and PyPI. Results: docs/benchmarks.md, "Raspberry Pi, emulated".
#
#   sudo scripts/pibox.sh root                  # qemu-user-static + binfmt_misc, then debootstrap (once)
#   sudo scripts/pibox.sh install dist/edgeface-*.whl    # a venv in the root with the door's extras
#   sudo scripts/pibox.sh run edgeface validate-config /etc/edgeface/gate.toml     # any command in the root
#   sudo scripts/pibox.sh prove                 # the parity run: the same door on the same clip, x86 vs aarch64
#   sudo scripts/pibox.sh numpy-check           # the venv's numpy against a helper built on numpy 1.x (picamera2's)
#   sudo scripts/pibox.sh umount                # unmount what run/prove mounted
#
# Environment: PIBOX (the root, default /work/pibox/root), PIBOX_CPU (the emulated CPU, default cortex-a72: a Pi 4;
# cortex-a76 is a Pi 5), PIBOX_MIRROR (default http://deb.debian.org/debian), PIBOX_NICE (default 10),
# PIBOX_RUNS (where prove writes, default /work/runs/pi), PIBOX_PY (the x86 Python of prove, default .venv/bin/python),
# PIBOX_PIP_CERT (a CA bundle pip in the root must trust, e.g. behind a TLS-inspecting proxy; default: the host's
# PIP_CERT, if set).
#
# What emulation is not: a speed figure. qemu-user translates every instruction; its times say nothing about a Pi.
#
# Two things the emulated root needs that a real Pi does not:
#  - Under Debian 12's qemu-user (7.2) the emulated process reads the host's /proc/cpuinfo (x86). onnxruntime's
#    cpuinfo library and LiteRT's Interpreter() then crash (SIGSEGV) as soon as /proc is mounted in the root. We bind
#    an ARM cpuinfo (a Pi 4's, four Cortex-A72 cores) over the root's /proc/cpuinfo.
#  - qemu-user's default CPU ("max") has features no Pi has (SVE, i8mm...), which would send onnxruntime down
#    kernels a Pi never runs. QEMU_CPU pins the Pi's core.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIBOX="${PIBOX:-/work/pibox/root}"
PIBOX_CPU="${PIBOX_CPU:-cortex-a72}"
PIBOX_MIRROR="${PIBOX_MIRROR:-http://deb.debian.org/debian}"
PIBOX_NICE="${PIBOX_NICE:-10}"
PIBOX_RUNS="${PIBOX_RUNS:-/work/runs/pi}"
PIBOX_PY="${PIBOX_PY:-$HERE/.venv/bin/python}"
PIBOX_PIP_CERT="${PIBOX_PIP_CERT:-${PIP_CERT:-}}"
VENV=/opt/edgeface/venv          # the door's venv inside the root (the deployment guide's path on a Pi)
EXTRAS="device,tflite,admin,fleet"
# what debootstrap adds to the minimal base: Python as Raspberry Pi OS has it, and systemd for the unit's checks
PACKAGES="python3,python3-venv,python3-pip,python3-numpy,ca-certificates,systemd,systemd-sysv,passwd,procps"

say() { printf 'pibox: %s\n' "$*" >&2; }
die() { printf 'pibox: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts)"; }

host_tools() {
    local missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (apt)"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

binfmt() {
    # binfmt_misc: mounted, and qemu-aarch64 registered with the F flag (the interpreter is opened at registration,
    # so it works inside a chroot that has no qemu binary of its own)
    local bm=/proc/sys/fs/binfmt_misc
    if [ ! -e "$bm/register" ]; then
        say "mounting binfmt_misc on $bm"
        mount -t binfmt_misc binfmt_misc "$bm"
    fi
    if [ ! -e "$bm/qemu-aarch64" ]; then
        local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
        [ -r "$conf" ] || die "$conf missing: is qemu-user-static installed?"
        say "registering qemu-aarch64 from $conf"
        grep -v '^#' "$conf" | head -n1 > "$bm/register"
    fi
    grep -q '^enabled' "$bm/qemu-aarch64" || die "qemu-aarch64 is registered but disabled ($bm/qemu-aarch64)"
    grep -q 'flags: .*F' "$bm/qemu-aarch64" || die "qemu-aarch64 is registered without the F flag; unregister it (echo -1 > $bm/qemu-aarch64) and rerun"
}

make_root() {
    need_root
    host_tools
    binfmt
    if [ -x "$PIBOX/usr/bin/python3" ] && [ -e "$PIBOX/.pibox-done" ]; then
        say "root exists: $PIBOX"
        return
    fi
    mkdir -p "$(dirname "$PIBOX")"
    say "debootstrap --arch=arm64 bookworm into $PIBOX (about 20 minutes, mostly its second stage under emulation)"
    nice -n "$PIBOX_NICE" debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" \
        bookworm "$PIBOX" "$PIBOX_MIRROR"
    cpuinfo > "$PIBOX/etc/pibox-cpuinfo"
    cp /etc/resolv.conf "$PIBOX/etc/resolv.conf"
    touch "$PIBOX/.pibox-done"
    say "root ready: $PIBOX ($(chroot "$PIBOX" /usr/bin/python3 --version), $(chroot "$PIBOX" /usr/bin/uname -m))"
}

cpuinfo() {
    # a Raspberry Pi 4's /proc/cpuinfo (BCM2711, four Cortex-A72 r0p3 cores), what the emulated process must see
    local i
    for i in 0 1 2 3; do
        cat <<EOF
processor	: $i
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

EOF
    done
    printf 'Hardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 100000000pibox00\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n'
}

mounted() { mountpoint -q "$1"; }

mounts() {
    need_root
    binfmt
    [ -e "$PIBOX/.pibox-done" ] || die "no root at $PIBOX: run '$0 root' first"
    mounted "$PIBOX/proc" || mount -t proc proc "$PIBOX/proc"
    # the ARM cpuinfo over the host's (see the head of this file); a file bind, checked by its content
    grep -q 'CPU implementer' "$PIBOX/proc/cpuinfo" || mount --bind "$PIBOX/etc/pibox-cpuinfo" "$PIBOX/proc/cpuinfo"
    mounted "$PIBOX/sys" || mount -t sysfs sysfs "$PIBOX/sys"
    # rslave: on a host with shared mounts (systemd's default) unmounting the root's /dev must not unmount the host's
    mounted "$PIBOX/dev" || { mount --rbind /dev "$PIBOX/dev" && mount --make-rslave "$PIBOX/dev"; }
    if [ -n "$PIBOX_PIP_CERT" ]; then
        cp "$PIBOX_PIP_CERT" "$PIBOX/etc/pibox-pip-ca.pem"
    fi
    # the runs folder at the same path inside the root, so that paths written on x86 hold there too
    RUNS_ABS="$(mkdir -p "$PIBOX_RUNS" && cd "$PIBOX_RUNS" && pwd)"
    mkdir -p "$PIBOX$RUNS_ABS"
    mounted "$PIBOX$RUNS_ABS" || mount --bind "$RUNS_ABS" "$PIBOX$RUNS_ABS"
}

umounts() {
    # every mount inside the root, whichever PIBOX_RUNS made it (runs folders, /dev with its submounts, /sys, the
    # cpuinfo bind, /proc), deepest first; a path mounted twice is unmounted until nothing is left on it
    need_root
    local root m pass
    root="$(cd "$PIBOX" 2>/dev/null && pwd)" || return 0
    for pass in 1 2 3; do
        awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
            m="$(printf '%b' "$m")"  # /proc/mounts writes a space as \040
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
    done
    if awk -v r="$root/" 'index($2, r) == 1 {found=1} END {exit !found}' /proc/mounts; then
        die "still mounted under $root: $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | tr '\n' ' ')"
    fi
}

in_root() {
    # run a command in the root as the door would: the venv's bin first, the Pi's CPU, no host environment
    mounts
    env -i HOME=/root LANG=C.UTF-8 PATH="$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" QEMU_CPU="$PIBOX_CPU" \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
        ${PIBOX_PIP_CERT:+PIP_CERT=/etc/pibox-pip-ca.pem} ${PIBOX_ENV:-} \
        nice -n "$PIBOX_NICE" chroot "$PIBOX" "$@"
}

install_wheel() {
    local wheel="${1:-}"
    [ -n "$wheel" ] && [ -f "$wheel" ] || die "usage: $0 install path/to/edgeface-*.whl"
    mounts
    mkdir -p "$PIBOX/opt/edgeface/wheels"
    rm -f "$PIBOX"/opt/edgeface/wheels/edgeface-*.whl
    cp "$wheel" "$PIBOX/opt/edgeface/wheels/"
    cp "$HERE/scripts/pi-constraints.txt" "$PIBOX/opt/edgeface/constraints.txt"
    local name; name="$(basename "$wheel")"
    # the deployment guide's recipe: a venv that sees the OS's packages (picamera2 comes from apt on a Pi), with the
    # tested versions of numpy and opencv (scripts/pi-constraints.txt: numpy stays on the OS's 1.24 ABI)
    [ -x "$PIBOX$VENV/bin/python" ] || in_root /usr/bin/python3 -m venv --system-site-packages "$VENV"
    in_root "$VENV/bin/python" -m pip install -q --upgrade pip
    in_root "$VENV/bin/python" -m pip install -c /opt/edgeface/constraints.txt \
        "/opt/edgeface/wheels/$name[$EXTRAS]"
    # a rebuilt wheel keeps its version number: replace the package itself whatever pip thinks is installed
    in_root "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "/opt/edgeface/wheels/$name"
    in_root "$VENV/bin/python" -m pip list --format=freeze > "$PIBOX_RUNS/pip-freeze-aarch64.txt"
    say "installed $name[$EXTRAS] in $PIBOX$VENV (versions: $PIBOX_RUNS/pip-freeze-aarch64.txt)"
}

numpy_check() {
    # picamera2 comes from apt on a Pi, with compiled helpers built against the OS's numpy 1.24 (simplejpeg...).
    # Raspberry Pi OS's archive is not reachable from every build machine, so a stand-in for such a helper:
    # simplejpeg 1.6.6's wheel, built against numpy 1.x, in a folder of its own on PYTHONPATH (as the OS's
    # dist-packages would be). It must import in the door's venv (numpy kept at the OS's 1.24 by
    # pi-constraints.txt), and fails in a venv where pip put numpy 2 (what an unconstrained install does).
    mounts
    local out="$PIBOX_RUNS/numpy-check.txt" probe
    probe='import numpy, simplejpeg; img = numpy.zeros((16, 16, 3), numpy.uint8); simplejpeg.decode_jpeg(simplejpeg.encode_jpeg(img)); print("ok: numpy", numpy.__version__, "from", numpy.__file__, "with", simplejpeg.__file__)'
    [ -d "$PIBOX/opt/pibox/os-helpers/simplejpeg" ] || \
        in_root "$VENV/bin/python" -m pip install -q --no-deps --only-binary=:all: --target /opt/pibox/os-helpers "simplejpeg==1.6.6"
    [ -x "$PIBOX/opt/pibox/numpy2/bin/python" ] || {
        in_root /usr/bin/python3 -m venv --system-site-packages /opt/pibox/numpy2
        in_root /opt/pibox/numpy2/bin/python -m pip install -q "numpy>=2"
    }
    {
        echo "door venv ($VENV, pi-constraints.txt):"
        PIBOX_ENV="PYTHONPATH=/opt/pibox/os-helpers" in_root "$VENV/bin/python" -c "$probe" 2>&1 || echo "exit $?"
        echo "a venv where pip put numpy 2 (/opt/pibox/numpy2):"
        PIBOX_ENV="PYTHONPATH=/opt/pibox/os-helpers" in_root /opt/pibox/numpy2/bin/python -c "$probe" 2>&1 | tail -n 3 || true
    } | tee "$out"
}

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
    root) make_root ;;
    install) install_wheel "$@" ;;
    run) [ $# -gt 0 ] || die "usage: $0 run COMMAND..."; in_root "$@" ;;
    mount) mounts ;;
    numpy-check) numpy_check ;;
    umount) umounts ;;
    prove) exec "$HERE/scripts/pi-prove.sh" "$@" ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
