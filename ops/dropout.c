/* ops/dropout.c - (in progress) */
