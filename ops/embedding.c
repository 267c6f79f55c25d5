/* ops/embedding.c - (in progress) */
