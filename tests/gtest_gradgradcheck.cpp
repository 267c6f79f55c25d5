// tests/gtest_gradgradcheck.cpp - every row of cases.def x {float64, float32}:
// second derivatives by double backward (tg_grad with create_graph) must match
// central differences of first-order gradients (tg_gradgradcheck). Every
// built-in op has a vjp_graph; an op listed below must fail naming itself
// (tests/check_grad.c checks that error on a user op too).
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "case_rows.h"

namespace {

// Ops known to have no vjp_graph (none today): their rows must fail with the
// error naming the op instead. A new op goes here until it gets one.
const std::vector<std::string> kNoDoubleBackward = {};

bool has_double_backward(const char *op) {
    for (const std::string &name : kNoDoubleBackward)
        if (name == op) return false;
    return true;
}

class SecondOrder : public ::testing::TestWithParam<CaseParam> {};

TEST_P(SecondOrder, GradientOfGradientMatchesFiniteDifferences) {
    const CaseParam p = GetParam();
    const tg_case &c = tg_cases[p.index];
    tg_tensor *in[TG_CASE_MAX_IN] = {};
    int n = tg_case_make_inputs(&c, p.dtype, 2000u + (uint64_t)p.index, in);
    for (int i = 0; i < n; i++) ASSERT_NE(in[i], nullptr) << tg_last_error();

    tg_gradcheck_report r;
    tg_status st = tg_gradgradcheck(c.build, nullptr, n, in, nullptr, &r);
    tg_case_free_inputs(n, in);

    if (!has_double_backward(c.op)) {
        EXPECT_EQ(st, TG_ERR_STATE) << r.message;
        EXPECT_NE(std::string(r.message).find(std::string(c.op) + ": no double backward"),
                  std::string::npos)
            << r.message;
        return;
    }
    ASSERT_EQ(st, TG_OK) << r.message;
    EXPECT_TRUE(r.passed) << c.op << "/" << c.name << " in " << tg_dtype_name(p.dtype) << ": "
                          << r.message << " max abs err " << r.max_abs_err << ", worst at input "
                          << r.worst_input << "[" << r.worst_index << "]: analytic "
                          << r.worst_analytic << " vs numeric " << r.worst_numeric;
}

INSTANTIATE_TEST_SUITE_P(EveryCase, SecondOrder, ::testing::ValuesIn(all_case_rows()),
                         case_row_name);

}  // namespace
