/* tests/cases/dropout.c - builders for cases/dropout.def (in progress) */
#include "../case_table.h"
