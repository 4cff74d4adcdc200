#!/bin/sh
# Prints what nvidia-smi prints after a driver upgrade without a reboot (NVML_ERROR_LIB_RM_VERSION_MISMATCH).
echo "Failed to initialize NVML: Driver/library version mismatch"
echo "NVML library version: 535.183"
exit 18
