#!/usr/bin/env bash
# Installs what the testkit's Cyrus IMAP needs, beside Dovecot: cyrus-common (master,
# ctl_cyrusdb), cyrus-admin and sasl2-bin (saslpasswd2) from the distribution, and imapd
# unpacked from the cyrus-imapd package into a cache directory — Debian's cyrus-imapd and
# dovecot-imapd conflict (installing one removes the other), so imapd is never installed.
# Idempotent; needs root (or sudo) for apt-get. The cache: $OFFBOARD_CYRUS_DIR, else
# /var/cache/offboard-testkit/cyrus for root (Cyrus runs imapd as the `cyrus` user, who cannot
# enter /root), else ${XDG_CACHE_HOME:-$HOME/.cache}/offboard-testkit/cyrus
# (testkit/src/cyrus.rs looks there).
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: installing packages needs root (or sudo): $*" >&2; exit 1; fi
}

if [ "$(id -u)" -eq 0 ]; then base=/var/cache; else base="${XDG_CACHE_HOME:-$HOME/.cache}"; fi
cache="${OFFBOARD_CYRUS_DIR:-$base/offboard-testkit/cyrus}"
missing=()
for p in cyrus-common cyrus-admin sasl2-bin; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  # No system Cyrus (nor the mail transport agent cyrus-common pulls in) is started: the
  # tests run their own servers on free loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$cache/usr/lib/cyrus/bin/imapd" ]; then
  echo "==> unpacking imapd into $cache"
  version="$(dpkg-query -W -f='${Version}' cyrus-common)"
  tmp="$(mktemp -d)"
  chmod 0777 "$tmp" # apt-get download runs as _apt where it can
  (cd "$tmp" && apt-get download -q "cyrus-imapd=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb="$(ls "$tmp"/cyrus-imapd_*.deb)"
  mkdir -p "$cache"
  dpkg -x "$deb" "$cache"
  rm -rf "$tmp"
fi
echo "Cyrus for the tests: $cache/usr/lib/cyrus/bin/imapd"
