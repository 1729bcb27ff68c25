# apt.sh - sourced by the deps scripts: apt_ensure NAME PACKAGE... installs the Debian packages
# that are missing, quietly; with APT_NO_START=1 no package may start a system service while it
# installs (policy-rc.d), for servers the benchmarks start themselves on 127.0.0.1.
# Idempotent: when everything is present it prints nothing.

apt_ensure() {
    local name=$1
    shift
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "$name: installing ${missing[*]}" >&2
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [ "${APT_NO_START:-0}" = 1 ] && [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        made_policy=1
    fi
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ "$made_policy" -eq 0 ] || $sudo rm -f "$policy"
    return "$rc"
}
