/* ops/loss.c - (in progress) */
