#!/bin/sh
echo "No devices were found"
exit 6
