#!/bin/sh
# Prints the first 3,000 bytes of a real -q -x document, as when nvidia-smi is killed mid-write.
exec head -c 3000 "$(dirname "$0")/../fixtures/nvidia-smi/xml/v12-525.147-rtx3090.xml"
