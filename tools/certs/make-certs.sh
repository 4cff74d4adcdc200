#!/usr/bin/env bash
# Makes the TLS material and tokens of a hwopt deployment with openssl:
# a private CA, the coordinator's server certificate, one client
# certificate per node (OU hwopt-agent, common name = node name, which
# the coordinator binds the agent's identity to), ops client certificates
# (OU hwopt-ops), and the tokens of the shared-token mode and of the ops
# roles.
#
# Files that already exist in OUT_DIR are kept, so running it again with
# more --node flags adds nodes signed by the same CA. Private keys and
# tokens are written with mode 0600. Never commit OUT_DIR.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: make-certs.sh OUT_DIR [--host NAME]... [--node NAME]... [--ops NAME]... [--days N]

  OUT_DIR       folder to write into (created with mode 0700)
  --host NAME   extra DNS name or IP address of the coordinator for the server
                certificate; localhost and 127.0.0.1 are always included
  --node NAME   make a client certificate for this agent node (OU = hwopt-agent, CN = NAME)
  --ops NAME    make an ops client certificate (OU = hwopt-ops, CN = NAME); default hwopt-ops
  --days N      validity of new certificates in days (default 365; CA 3650)

An existing file is kept: delete server.pem to make it again with new --host names.

Writes ca.pem, ca-key.pem, server.pem, server-key.pem,
node-NAME.pem, node-NAME-key.pem, ops-NAME.pem, ops-NAME-key.pem,
agent.token, ops-read.token, ops-admin.token and ops-tokens.json.
EOF
}

# Same rule as the coordinator's node-name check, so the name is also a safe file name.
NAME_PATTERN='^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'
HOST_PATTERN='^[A-Za-z0-9.:-]{1,253}$'

out=''
hosts=()
nodes=()
ops_names=()
days=365
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --host) hosts+=("${2:?--host needs a value}"); shift 2 ;;
    --node) nodes+=("${2:?--node needs a value}"); shift 2 ;;
    --ops) ops_names+=("${2:?--ops needs a value}"); shift 2 ;;
    --days) days="${2:?--days needs a value}"; shift 2 ;;
    -*) echo "make-certs.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "$out" ]]; then echo "make-certs.sh: only one OUT_DIR may be given (got $out and $1)" >&2; exit 2; fi
      out="$1"; shift ;;
  esac
done
if [[ -z "$out" ]]; then usage >&2; exit 2; fi
if ! [[ "$days" =~ ^[0-9]{1,5}$ ]] || [[ "$days" -lt 1 ]]; then echo "make-certs.sh: --days $days must be a whole number of days >= 1" >&2; exit 2; fi
for name in "${nodes[@]}" "${ops_names[@]}"; do
  if ! [[ "$name" =~ $NAME_PATTERN ]]; then echo "make-certs.sh: $name is not a valid name (letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit)" >&2; exit 2; fi
done
for host in "${hosts[@]}"; do
  if ! [[ "$host" =~ $HOST_PATTERN ]]; then echo "make-certs.sh: --host $host is not a DNS name or IP address" >&2; exit 2; fi
done
if [[ ${#ops_names[@]} -eq 0 ]]; then ops_names=(hwopt-ops); fi
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not installed" >&2; exit 1; }

umask 077
mkdir -p "$out"
chmod 700 "$out"
cd "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# EC P-256 keys: accepted by Node's TLS (grpc-js) and by gRPC's C core, and quick to make.
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# sign NAME SUBJECT EXTENSIONS: makes NAME.pem and NAME-key.pem signed by the CA.
sign() {
  local name="$1" subject="$2" extensions="$3"
  if [[ -f "$name.pem" && -f "$name-key.pem" ]]; then
    echo "kept    $name.pem"
    return
  fi
  new_key "$name-key.pem"
  openssl req -new -key "$name-key.pem" -subj "$subject" -out "$work/$name.csr"
  printf '%s\n' "$extensions" >"$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -CAserial "$work/ca.srl" \
    -days "$days" -sha256 -extfile "$work/$name.ext" -out "$name.pem" 2>/dev/null
  chmod 644 "$name.pem"
  echo "created $name.pem ($subject)"
}

if [[ -f ca.pem && -f ca-key.pem ]]; then
  echo "kept    ca.pem"
else
  new_key ca-key.pem
  openssl req -x509 -new -key ca-key.pem -subj "/CN=hwopt CA" -days 3650 -sha256 \
    -addext 'basicConstraints=critical,CA:TRUE,pathlen:0' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem
  chmod 644 ca.pem
  echo "created ca.pem"
fi

san='DNS:localhost,IP:127.0.0.1,IP:::1'
for host in "${hosts[@]}"; do
  if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then san+=",IP:$host"; else san+=",DNS:$host"; fi
done
sign server "/CN=${hosts[0]:-localhost}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san"

client_extensions='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'
# The organizational unit binds a client certificate to its role: the coordinator accepts
# OU=hwopt-agent only from agents and OU=hwopt-ops only on ops calls.
for node in "${nodes[@]}"; do sign "node-$node" "/OU=hwopt-agent/CN=$node" "$client_extensions"; done
for name in "${ops_names[@]}"; do sign "ops-$name" "/OU=hwopt-ops/CN=$name" "$client_extensions"; done

# 32 random bytes as hex: the coordinator requires at least 16 characters.
new_token() {
  if [[ -f "$1" ]]; then
    echo "kept    $1"
  else
    openssl rand -hex 32 >"$1"
    echo "created $1"
  fi
}
new_token agent.token
new_token ops-read.token
new_token ops-admin.token
if [[ ! -f ops-tokens.json ]]; then
  printf '[\n  {"token": "%s", "role": "read"},\n  {"token": "%s", "role": "admin"}\n]\n' "$(cat ops-read.token)" "$(cat ops-admin.token)" >ops-tokens.json
  echo "created ops-tokens.json"
fi
