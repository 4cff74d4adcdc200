#!/bin/sh
# Prints what nvidia-smi prints when the user may not open /dev/nvidia*.
echo "Failed to initialize NVML: Insufficient Permissions"
exit 4
