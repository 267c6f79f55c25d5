// tests/gtest_gradcheck.cpp - every row of cases.def x {float64, float32}:
// tape gradients must match central differences (tg_gradcheck).
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "case_rows.h"

namespace {

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

INSTANTIATE_TEST_SUITE_P(EveryCase, Primitive, ::testing::ValuesIn(all_case_rows()),
                         case_row_name);

}  // namespace
