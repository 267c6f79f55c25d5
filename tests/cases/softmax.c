/* tests/cases/softmax.c - builders for cases/softmax.def (in progress) */
#include "../case_table.h"
