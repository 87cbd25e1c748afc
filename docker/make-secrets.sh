#!/bin/sh
# Make the secrets docker/compose.yaml needs (run once, from anywhere):
#   docker/make-secrets.sh [DIR]          # DIR defaults to docker/secrets
#
#   DIR/mqtt-password     password of the broker user "demo" (the simulated station)
#   DIR/ca.key            a private CA for the broker's certificate (keep it; mode 0600)
#   DIR/tls/ca.crt        that CA (the daemon trusts it: [mqtt] ca_file)
#   DIR/tls/server.crt    the broker's certificate for the names "mosquitto" (the compose
#   DIR/tls/server.key    service) and "localhost"
#
# Existing files are kept, so running it again changes nothing. The password, certificate
# and key are readable by the container users (bind mounts keep the host modes); DIR itself
# is made private (0700) so that other users of this host cannot read them.
set -eu

dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir/tls"
chmod 0700 "$dir"
cd "$dir"

if [ ! -s mqtt-password ]; then
    umask 022
    openssl rand -hex 24 > mqtt-password
fi

ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
if [ ! -s tls/ca.crt ] || [ ! -s ca.key ]; then
    # shellcheck disable=SC2086  # $ec is several words on purpose
    openssl req -x509 $ec -keyout ca.key -out tls/ca.crt -days 3650 \
        -subj "/CN=groundlink compose CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 0600 ca.key
    rm -f tls/server.crt
fi
if [ ! -s tls/server.crt ] || [ ! -s tls/server.key ]; then
    # shellcheck disable=SC2086
    openssl req $ec -keyout tls/server.key -out server.csr -subj "/CN=mosquitto" 2>/dev/null
    printf 'subjectAltName=DNS:mosquitto,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
        > server.ext
    openssl x509 -req -in server.csr -CA tls/ca.crt -CAkey ca.key -CAcreateserial \
        -out tls/server.crt -days 825 -extfile server.ext 2>/dev/null
    rm -f server.csr server.ext tls/ca.srl ca.srl
    chmod 0644 tls/server.key
fi
echo "secrets in $(pwd): mqtt-password, ca.key, tls/ca.crt, tls/server.crt, tls/server.key"
