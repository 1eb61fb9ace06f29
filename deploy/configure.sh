#!/bin/sh
# Writes what must list every worker of deploy/layout.env, which supervisord and HAProxy
# cannot count for themselves, and makes var/'s folders:
#   var/haproxy.cfg     lb/haproxy.cfg with a server line per web worker (supervisord runs it)
#   var/prometheus.yml  conf/prometheus.yml with a target per web worker and per job worker
# Run it from anywhere, with the layout loaded, after every change of deploy/layout.env.
set -eu
: "${P2P_LAYOUT_WORKERS:?load the layout first: set -a; . deploy/layout.env; set +a}"
cd "$(dirname "$0")/.."

host=$P2P_SERVER_HOST
# "host:first host:first+1 ..." for `count` ports from `first`.
addresses() {
    count=$1 first=$2 n=0
    while [ "$n" -lt "$count" ]; do
        printf '%s:%d\n' "$host" $((first + n))
        n=$((n + 1))
    done
}
# ["a", "b"] for Prometheus' targets.
targets() {
    addresses "$1" "$2" | awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : "["), $0 } END { print "]" }'
}

mkdir -p var/log var/run var/prometheus var/prometheus-jobs

servers=$(addresses "$P2P_LAYOUT_WORKERS" "$P2P_LAYOUT_WORKER_FIRST_PORT" |
    awk -F: '{ printf "    server p2p-%s %s\\n", $NF, $0 }')
awk -v servers="$servers" '
    /^    server p2p-/ { if (!done) printf "%s", servers; done = 1; next }
    { print }
' lb/haproxy.cfg > var/haproxy.cfg.new
mv var/haproxy.cfg.new var/haproxy.cfg

web=$(targets "$P2P_LAYOUT_WORKERS" "$P2P_LAYOUT_WORKER_FIRST_PORT")
jobs=$(targets "$P2P_LAYOUT_JOB_WORKERS" "$P2P_LAYOUT_JOB_METRICS_FIRST_PORT")
awk -v web="$web" -v jobs="$jobs" '
    /^  - job_name: / { job = $3 }
    /^      - targets: / && job == "p2p" { sub(/\[.*\]/, web) }
    /^      - targets: / && job == "p2p-jobs" { sub(/\[.*\]/, jobs) }
    { print }
' conf/prometheus.yml > var/prometheus.yml.new
mv var/prometheus.yml.new var/prometheus.yml

echo "var/haproxy.cfg: $P2P_LAYOUT_WORKERS web workers from port $P2P_LAYOUT_WORKER_FIRST_PORT;" \
    "var/prometheus.yml: those and $P2P_LAYOUT_JOB_WORKERS job workers from port" \
    "$P2P_LAYOUT_JOB_METRICS_FIRST_PORT"
