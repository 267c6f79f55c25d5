/* tests/cases/shape.c - builders for cases/shape.def (in progress) */
#include "../case_table.h"
