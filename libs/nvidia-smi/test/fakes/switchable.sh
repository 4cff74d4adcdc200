#!/bin/sh
# Behaves as the fake named in the file FAKE_SMI_MODE_FILE (e.g. "ok", "nvml-mismatch", "hang"), re-read on every run.
mode=$(cat "$FAKE_SMI_MODE_FILE")
dir=$(dirname "$0")
if [ "$mode" = "ok" ]; then
  exec cat "$dir/../fixtures/nvidia-smi/xml/v12-535.54-a100-sxm4-80gb-mig.xml"
fi
exec "$dir/$mode.sh" "$@"
