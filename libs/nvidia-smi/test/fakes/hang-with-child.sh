#!/bin/sh
# Never exits and leaves a child behind (no exec): only killing the process group stops both.
# Writes its pid (the process group id) to FAKE_SMI_PID_FILE when set.
if [ -n "$FAKE_SMI_PID_FILE" ]; then echo $$ > "$FAKE_SMI_PID_FILE"; fi
sleep 3600
echo "unreachable"
