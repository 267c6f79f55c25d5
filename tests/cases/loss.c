/* tests/cases/loss.c - builders for cases/loss.def (in progress) */
#include "../case_table.h"
