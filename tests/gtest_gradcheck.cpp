// tests/gtest_gradcheck.cpp - every row of cases.def x {float64, float32}:
// tape gradients must match central differences (tg_gradcheck).
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "tg_shim.h"

namespace {

struct CaseParam {
    int index;
    tg_dtype dtype;
};

// A failing row is named by GoogleTest through this ("sigmoid/wide_range in
// float32"), instead of the parameter's bytes.
void PrintTo(const CaseParam &p, std::ostream *os) {
    const tg_case &c = tg_cases[p.index];
    *os << c.op << "/" << c.name << " in " << tg_dtype_name(p.dtype);
}

class Primitive : public ::testing::TestWithParam<CaseParam> {};

TEST_P(Primitive, GradientMatchesFiniteDifferences) {
    const CaseParam p = GetParam();
    const tg_case &c = tg_cases[p.index];
    tg_tensor *in[TG_CASE_MAX_IN] = {};
    int n = tg_case_make_inputs(&c, p.dtype, 1000u + (uint64_t)p.index, in);
    for (int i = 0; i < n; i++) ASSERT_NE(in[i], nullptr) << tg_last_error();

    tg_gradcheck_report r;
    tg_status st = tg_gradcheck(c.build, nullptr, n, in, nullptr, &r);
    tg_case_free_inputs(n, in);

    ASSERT_EQ(st, TG_OK) << r.message;
    EXPECT_GT(r.checked, 0);
    EXPECT_TRUE(r.passed) << c.op << "/" << c.name << " in " << tg_dtype_name(p.dtype)
                          << ": max abs err " << r.max_abs_err << ", worst at input "
                          << r.worst_input << "[" << r.worst_index << "]: analytic "
                          << r.worst_analytic << " vs numeric " << r.worst_numeric;
}

std::vector<CaseParam> all_cases() {
    std::vector<CaseParam> v;
    for (int i = 0; i < tg_n_cases; i++) {
        v.push_back({i, TG_F64});
        v.push_back({i, TG_F32});
    }
    return v;
}

std::string case_name(const ::testing::TestParamInfo<CaseParam> &info) {
    const tg_case &c = tg_cases[info.param.index];
    return std::string(c.op) + "_" + c.name + "_in_" + tg_dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(EveryCase, Primitive, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
