#!/usr/bin/env bash
# Runs every Koban test: installs what the tests need (Debian packages via apt
# when run as root, Python packages via pip), then formatting, lints and the
# whole cargo test suite. In CI (CI=true) a missing peer fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=(prometheus prometheus-node-exporter prometheus-alertmanager chromium chromium-driver nginx dnsmasq-base)
missing=()
for p in "${need_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  else
    echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
  fi
fi
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  python3 -m pip install -q prometheus_client || echo "could not install prometheus_client from PyPI" >&2
fi

# Peer tests look these up; in CI a missing one is a failure, not a skip.
export KOBAN_NODE_EXPORTER=${KOBAN_NODE_EXPORTER:-$(command -v prometheus-node-exporter || true)}
# dnsmasq-base installs the binary only (no system service on port 53).
export KOBAN_DNSMASQ=${KOBAN_DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}
export KOBAN_ALERTMANAGER=${KOBAN_ALERTMANAGER:-$(command -v prometheus-alertmanager || true)}
export KOBAN_AMTOOL=${KOBAN_AMTOOL:-$(command -v amtool || true)}
export KOBAN_SHARED_DIR=${KOBAN_SHARED_DIR:-$(cd .. && pwd)/shared}

# A target dir outside the clone lets CI reuse earlier builds on the same machine.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/koban-target}
export CARGO_TERM_COLOR=never
# That dir is shared between checkouts (CI's clone, a working copy). Cargo then
# reuses test binaries built in another checkout whenever this one's sources
# look older, and those binaries look for fixtures and ../shared where they
# were built (env!("CARGO_MANIFEST_DIR")). When the checkout changed, mark the
# workspace's sources new so its crates are rebuilt here.
stamp="$CARGO_TARGET_DIR/.koban-checkout"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$PWD" ]; then
  find crates -name '*.rs' -exec touch {} +
  mkdir -p "$CARGO_TARGET_DIR"
  echo "$PWD" > "$stamp"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked 2>&1 | tee /tmp/koban-test.log
