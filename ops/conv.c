/* ops/conv.c - (in progress) */
