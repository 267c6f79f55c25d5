/* ops/softmax.c - (in progress) */
