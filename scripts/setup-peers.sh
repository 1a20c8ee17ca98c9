#!/usr/bin/env bash
# Node.js peers the collector tests run side by side with meshfed: the reference StatsD
# daemon and fluent-logger for Node. Installed into $MESHFED_CACHE/node at pinned versions
# (tests find them through collectors' test helpers / $MESHFED_NODE_PEERS).
set -euo pipefail
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
dir="$CACHE/node"
STATSD_VERSION="${STATSD_VERSION:-0.9.0}"
FLUENT_LOGGER_VERSION="${FLUENT_LOGGER_VERSION:-3.4.1}"
stamp="$dir/.statsd-$STATSD_VERSION-fluent-logger-$FLUENT_LOGGER_VERSION"
if [[ -f "$stamp" ]]; then
  echo "node peers already in $dir"
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20 (apt-get install -y nodejs npm)" >&2; exit 1; }
mkdir -p "$dir"
[[ -f "$dir/package.json" ]] || echo '{"name": "meshfed-peers", "private": true}' > "$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --silent \
  "statsd@$STATSD_VERSION" "fluent-logger@$FLUENT_LOGGER_VERSION"
touch "$stamp"
echo "node peers in $dir: statsd $STATSD_VERSION, fluent-logger $FLUENT_LOGGER_VERSION"
