#!/bin/sh
# Not an ELF binary: a shell script. heapspec should refuse to debug it.
echo "not an ELF file"
