/* tests/cases/reduce.c - builders for cases/reduce.def (in progress) */
#include "../case_table.h"
