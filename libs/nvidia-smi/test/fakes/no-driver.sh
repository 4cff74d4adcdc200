#!/bin/sh
# Prints what nvidia-smi prints when the kernel module is not loaded, with its exit code.
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
echo
exit 9
