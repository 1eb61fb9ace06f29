#!/bin/sh
# The machine's prerequisites for the production layout on Debian 12 (docs/deployment.md):
# the packages, and MariaDB and Redis answering where deploy/layout.env says. Checks them and
# says what is missing; with --install (as root) installs the missing packages first.
# Exit status 0 when everything is there.
set -eu
: "${P2P_LAYOUT_DATABASE_SERVER:?load the layout first: set -a; . deploy/layout.env; set +a}"

# python3.11-dev, gcc, pkg-config and libmariadb-dev build the MySQL driver (mysqlclient);
# openssl makes the master key and the bank key pair; curl checks the balancer.
PACKAGES="python3.11 python3.11-venv python3.11-dev gcc pkg-config libmariadb-dev
mariadb-server mariadb-client redis-server redis-tools haproxy openssl curl"

missing_packages() {
    for package in $PACKAGES; do
        dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q " installed$" ||
            printf '%s ' "$package"
    done
}

missing=$(missing_packages)
if [ -n "$missing" ] && [ "${1:-}" = --install ]; then
    echo "installing: $missing"
    apt-get update -q
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    missing=$(missing_packages)
fi

status=0
if [ -n "$missing" ]; then
    echo "missing packages: $missing(deploy/prerequisites.sh --install, as root)"
    status=1
fi

# The services: MariaDB (mariadb-admin ping answers even when it refuses the user) and the
# Redis of P2P_CACHE_URL and P2P_JOBS_BROKER_URL.
db_host=${P2P_LAYOUT_DATABASE_SERVER%:*}
db_port=${P2P_LAYOUT_DATABASE_SERVER##*:}
if ! mariadb-admin --connect-timeout=3 -h "$db_host" -P "$db_port" ping >/dev/null 2>&1; then
    echo "MariaDB does not answer at $P2P_LAYOUT_DATABASE_SERVER (systemctl start mariadb)"
    status=1
fi
for url in "$P2P_CACHE_URL" "$P2P_JOBS_BROKER_URL"; do
    if ! redis-cli -u "$url" ping 2>/dev/null | grep -q PONG; then
        echo "Redis does not answer at $url (systemctl start redis-server)"
        status=1
    fi
done

[ "$status" -eq 0 ] && echo "prerequisites: all present; MariaDB and Redis answer"
exit "$status"
