#!/bin/sh
# Creates the platform's MariaDB database and user (deploy/layout.env's P2P_LAYOUT_DATABASE_*)
# with a new random password, as the server's administrator (P2P_LAYOUT_DATABASE_ADMIN), and
# writes the database URL into P2P_CONFIG's file, readable by its folder's owner only. Run it
# as root on the database's machine (docs/deployment.md). When P2P_CONFIG's file names a
# database already, it changes nothing.
set -eu
: "${P2P_CONFIG:?load the layout first: set -a; . deploy/layout.env; set +a}"

name=$P2P_LAYOUT_DATABASE_NAME
user=$P2P_LAYOUT_DATABASE_USER
case "$name$user" in
*[!A-Za-z0-9_]*) echo "P2P_LAYOUT_DATABASE_NAME and _USER: letters, digits and _ only" >&2; exit 2 ;;
esac
if [ -f "$P2P_CONFIG" ] && grep -q '^\[database\]' "$P2P_CONFIG"; then
    echo "$P2P_CONFIG names a database already: nothing changed"
    exit 0
fi

password=$(openssl rand -hex 24)
# The workers connect over TCP from this machine: as user@127.0.0.1, or user@localhost when
# the server resolves names; the user exists under both, with the one password.
# shellcheck disable=SC2086  # the administrator's command and its options
$P2P_LAYOUT_DATABASE_ADMIN <<SQL
CREATE DATABASE IF NOT EXISTS \`$name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE OR REPLACE USER '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE OR REPLACE USER '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$name\`.* TO '$user'@'127.0.0.1', '$user'@'localhost';
SQL

folder=$(dirname "$P2P_CONFIG")
(
    umask 077
    printf '\n[database]\nurl = "mysql+mysqldb://%s:%s@%s/%s"\n' \
        "$user" "$password" "$P2P_LAYOUT_DATABASE_SERVER" "$name" >>"$P2P_CONFIG"
)
chown "$(stat -c %u:%g "$folder")" "$P2P_CONFIG"
echo "database $name and user $user created on $P2P_LAYOUT_DATABASE_SERVER; URL in $P2P_CONFIG"
