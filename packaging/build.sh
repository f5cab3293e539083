#!/usr/bin/env bash
# Builds the .deb and the .rpm into target/packaging/: the release binary, then the man page
# and the bash/zsh/fish completions made by that binary from its clap definitions (so they
# cannot drift from --help), then cargo-deb and cargo-generate-rpm (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/packaging
mkdir -p "$out"

echo "==> release build"
cargo build --release --locked -p offboard --bin offboard
bin=target/release/offboard

echo "==> man page and completions from the clap definitions"
"$bin" man | gzip -9n > "$out/offboard.1.gz"
for sh in bash zsh fish; do "$bin" completions "$sh" > "$out/offboard.$sh"; done

for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null; then
    echo "==> installing $tool"
    cargo install --locked "$tool"
  fi
done

echo "==> .deb"
cargo deb --no-build -p offboard --output "$out/"
echo "==> .rpm"
cargo generate-rpm -p . --output "$out/"
ls -l "$out"/*.deb "$out"/*.rpm
