#!/bin/sh
# A self-signed certificate for HAProxy, made once: `sh deploy/tls-cert.sh <pem>`
# writes certificate and key into one PEM file (what `bind … ssl crt` reads)
# unless that file already holds one. Used by the compose service `init` and by
# `npm run cluster`. To serve a real certificate, mount or point to your own PEM
# instead (compose: LB_TLS_CERT; npm run cluster: TETHER_TLS_CERT).
#
#   TLS_SUBJECT_ALT_NAMES  default "DNS:localhost,IP:127.0.0.1"
#   TLS_DAYS               default 825
set -eu
pem="${1:?usage: tls-cert.sh <pem file>}"
if [ -s "$pem" ]; then
  echo "tls: keeping $pem"
  exit 0
fi
names="${TLS_SUBJECT_ALT_NAMES:-DNS:localhost,IP:127.0.0.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days "${TLS_DAYS:-825}" -subj "/CN=tether self-signed" -addext "subjectAltName=$names" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.log" || {
  cat "$work/openssl.log" >&2
  exit 1
}
mkdir -p "$(dirname "$pem")"
cat "$work/cert.pem" "$work/key.pem" >"$work/tls.pem"
mv "$work/tls.pem" "$pem"
echo "tls: generated a self-signed certificate for $names in $pem"
