/* ops/binary.c - (in progress) */
