/* tests/tg_shim.h - the C API as GoogleTest sees it.
 * Including every public header from C++ here keeps them valid C++. */
#ifndef TG_SHIM_H
#define TG_SHIM_H

extern "C" {
#include "tapegrad.h"
#include "case_table.h"
}

#endif
