// tests/case_rows.h - the rows of cases.def as GoogleTest parameters, one per
// row and dtype, shared by the first- and second-order checks
// (gtest_gradcheck.cpp, gtest_gradgradcheck.cpp).
#ifndef TG_TESTS_CASE_ROWS_H
#define TG_TESTS_CASE_ROWS_H

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "tg_shim.h"

struct CaseParam {
    int index;
    tg_dtype dtype;
};

// A failing row is named by GoogleTest through this ("sigmoid/wide_range in
// float32"), instead of the parameter's bytes.
inline void PrintTo(const CaseParam &p, std::ostream *os) {
    const tg_case &c = tg_cases[p.index];
    *os << c.op << "/" << c.name << " in " << tg_dtype_name(p.dtype);
}

// Every row in both dtypes.
inline std::vector<CaseParam> all_case_rows() {
    std::vector<CaseParam> v;
    for (int i = 0; i < tg_n_cases; i++) {
        v.push_back({i, TG_F64});
        v.push_back({i, TG_F32});
    }
    return v;
}

inline std::string case_row_name(const ::testing::TestParamInfo<CaseParam> &info) {
    const tg_case &c = tg_cases[info.param.index];
    return std::string(c.op) + "_" + c.name + "_in_" + tg_dtype_name(info.param.dtype);
}

#endif
