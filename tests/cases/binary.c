/* tests/cases/binary.c - builders for cases/binary.def (in progress) */
#include "../case_table.h"
