/* ops/shape.c - (in progress) */
