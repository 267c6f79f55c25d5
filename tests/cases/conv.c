/* tests/cases/conv.c - builders for cases/conv.def (in progress) */
#include "../case_table.h"
