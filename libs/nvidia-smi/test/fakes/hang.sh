#!/bin/sh
# Never exits, like nvidia-smi on a wedged GPU. `exec` makes sleep the process that gets killed.
exec sleep 3600
