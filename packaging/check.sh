#!/usr/bin/env bash
# Checks the packages packaging/build.sh made: the .deb unpacked in a scratch root (every file
# there, the binary runs and is this version, the man page and completions know the
# commands), then installed with dpkg -i where this runs as root (CI) and removed again; the
# .rpm's file list read with rpm -qlp.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/packaging
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$(ls "$out"/offboard_"$version"*.deb)
rpm=$(ls "$out"/offboard-"$version"*.rpm)
fail() { echo "package check: $*" >&2; exit 1; }

files=(
  usr/bin/offboard
  usr/share/man/man1/offboard.1.gz
  usr/share/bash-completion/completions/offboard
  usr/share/doc/offboard/README.md
  usr/share/doc/offboard/config.example.toml
  usr/share/doc/offboard/report.schema.json
  usr/share/fish/vendor_completions.d/offboard.fish
)

echo "==> $deb: contents"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -f "$deb" Package Version Architecture Depends
[ "$(dpkg-deb -f "$deb" Package)" = offboard ] || fail "package name"
dpkg-deb -f "$deb" Depends | grep -q libc6 || fail "no libc6 dependency computed"
dpkg -x "$deb" "$root"
for f in "${files[@]}" usr/share/zsh/vendor-completions/_offboard; do
  [ -s "$root/$f" ] || fail "$f missing or empty in the .deb"
done
"$root/usr/bin/offboard" --version | grep -qx "offboard $version" || fail "the binary is not offboard $version"
zcat "$root/usr/share/man/man1/offboard.1.gz" | grep -q '^\.TH offboard' || fail "the man page has no title"
for cmd in audit close undo runs doctor batch; do
  zcat "$root/usr/share/man/man1/offboard.1.gz" | grep -q "offboard\\\\-$cmd\|$cmd" || fail "the man page does not name $cmd"
  grep -q "$cmd" "$root/usr/share/bash-completion/completions/offboard" || fail "bash completion lacks $cmd"
  grep -q "$cmd" "$root/usr/share/zsh/vendor-completions/_offboard" || fail "zsh completion lacks $cmd"
  grep -q "$cmd" "$root/usr/share/fish/vendor_completions.d/offboard.fish" || fail "fish completion lacks $cmd"
done
cmp -s "$root/usr/share/doc/offboard/report.schema.json" schema/report.schema.json || fail "the schema differs"

if [ "$(id -u)" -eq 0 ] && [ "${CI:-}" = true ]; then
  echo "==> dpkg -i $deb"
  dpkg -i "$deb"
  [ "$(command -v offboard)" = /usr/bin/offboard ] || fail "not installed in /usr/bin"
  offboard --version | grep -qx "offboard $version" || fail "installed binary"
  [ -s /usr/share/man/man1/offboard.1.gz ] || fail "installed man page"
  dpkg -r offboard >/dev/null
  [ ! -e /usr/bin/offboard ] || fail "dpkg -r left the binary"
fi

echo "==> $rpm: contents"
if ! command -v rpm >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm >/dev/null
  else
    fail "rpm is not installed (apt-get install rpm) to list the .rpm"
  fi
fi
listed=$(rpm -qlp "$rpm" 2>/dev/null)
echo "$listed"
for f in "${files[@]}" usr/share/zsh/site-functions/_offboard; do
  grep -qx "/$f" <<<"$listed" || fail "/$f missing from the .rpm"
done
[ "$(rpm -qp --queryformat '%{NAME} %{VERSION}' "$rpm" 2>/dev/null)" = "offboard $version" ] || fail "rpm name/version"
echo "packages checked: $deb, $rpm"
