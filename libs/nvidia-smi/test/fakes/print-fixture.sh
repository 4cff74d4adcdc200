#!/bin/sh
# Prints the capture named by FAKE_SMI_FIXTURE (a path under test/fixtures/nvidia-smi), whatever the arguments.
exec cat "$(dirname "$0")/../fixtures/nvidia-smi/$FAKE_SMI_FIXTURE"
