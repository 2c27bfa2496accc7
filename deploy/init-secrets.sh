#!/bin/sh
# docker-compose.yml's one-shot service `init`: runs before any instance, every
# `docker compose up`, and exits. It makes what a fleet must share and must
# never generate on its own (with NODE_ENV=production an instance refuses to):
#
#   $SECRETS_DIR/session_secret  TETHER_SESSION_SECRET from .env when set, else kept, else generated once
#   $SECRETS_DIR/api_key         TETHER_API_KEY likewise
#   $TLS_PEM                     a self-signed certificate for HAProxy, unless one is there (tls-cert.sh)
#
# The instances mount $SECRETS_DIR read-only and read TETHER_*_FILE. A value set
# in .env overwrites its file at the next `up`: that is how secrets are rotated
# (README: Runbook).
set -eu
dir="${SECRETS_DIR:-/run/secrets/tether}"
here="$(dirname "$0")"
mkdir -p "$dir"
umask 077

# name, value from the environment (may be empty)
secret() {
  if [ -n "$2" ]; then
    printf '%s\n' "$2" >"$dir/$1.new"
    mv "$dir/$1.new" "$dir/$1"
    echo "init: $1 set from the environment"
  elif [ -s "$dir/$1" ]; then
    echo "init: $1 kept"
  else
    # 48 characters from [A-Za-z0-9]: about 285 bits.
    value="$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 48)"
    printf '%s\n' "$value" >"$dir/$1.new"
    mv "$dir/$1.new" "$dir/$1"
    echo "init: $1 generated"
  fi
  # Readable by the instances' user only (node, 1000:1000 in the image).
  if [ -n "${SECRETS_OWNER:-}" ]; then chown "$SECRETS_OWNER" "$dir/$1"; fi
  chmod 0400 "$dir/$1"
}

secret session_secret "${TETHER_SESSION_SECRET:-}"
secret api_key "${TETHER_API_KEY:-}"

if [ -n "${TLS_PEM:-}" ] && [ ! -s "$TLS_PEM" ]; then
  # The alpine image has no openssl until asked (only when a certificate is made).
  command -v openssl >/dev/null || apk add --no-cache --quiet openssl
  sh "$here/tls-cert.sh" "$TLS_PEM"
  # Readable by HAProxy's user only (haproxy, 99:99 in the official image).
  if [ -n "${TLS_OWNER:-}" ]; then chown "$TLS_OWNER" "$TLS_PEM"; fi
elif [ -n "${TLS_PEM:-}" ]; then
  echo "init: keeping the certificate in $TLS_PEM"
fi
