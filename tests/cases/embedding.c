/* tests/cases/embedding.c - builders for cases/embedding.def (in progress) */
#include "../case_table.h"
