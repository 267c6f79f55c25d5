/* ops/reduce.c - (in progress) */
