// SPDX-License-Identifier: GPL-2.0
/*
 * A parameterised KUnit suite in C, beside the Rust ones: Rust's #[kunit_tests] has no
 * parameters, and rustkm's KTAP parser must read the nested results they print.
 */
#include <kunit/test.h>

struct square_case {
	int in;
	int out;
	const char *desc;
};

static const struct square_case square_cases[] = {
	{ .in = 2, .out = 4, .desc = "two" },
	{ .in = 3, .out = 9, .desc = "three" },
	{ .in = 4, .out = 15, .desc = "four, wrong on purpose" },
};

KUNIT_ARRAY_PARAM_DESC(square, square_cases, desc);

static void squares(struct kunit *test)
{
	const struct square_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, c->in * c->in, c->out);
}

static void skipped(struct kunit *test)
{
	kunit_skip(test, "nothing to test here");
}

static struct kunit_case params_cases[] = {
	KUNIT_CASE_PARAM(squares, square_gen_params),
	KUNIT_CASE(skipped),
	{}
};

static struct kunit_suite params_suite = {
	.name = "rustkm_selftest_params",
	.test_cases = params_cases,
};

kunit_test_suite(params_suite);
