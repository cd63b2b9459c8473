/*
 * test_parse.c: unit tests for parse.c (parse_u64, parse_uint, parse_size,
 * parse_duration).  Prints TAP; exits 1 when any test fails.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jq.h"
#include "tap.h"

#define SENTINEL	0xdeadbeefULL

/* parse_u64 accepts s in [min, max] and yields want. */
static void
u64_ok(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	uint64_t v = SENTINEL;
	int	 r = parse_u64(s, min, max, &v);

	OK(r == 0 && v == want, "parse_u64(\"%s\", %ju, %ju) = %ju (got r=%d v=%ju)",
	    t_esc(s), (uintmax_t)min, (uintmax_t)max, (uintmax_t)want, r, (uintmax_t)v);
}

/* parse_u64 rejects s with -1 and errno err, and leaves *out alone. */
static void
u64_bad(const char *s, uint64_t min, uint64_t max, int err)
{
	uint64_t v = SENTINEL;
	int	 r;

	errno = 0;
	r = parse_u64(s, min, max, &v);
	OK(r == -1 && v == SENTINEL && (err == 0 || errno == err),
	    "parse_u64(\"%s\", %ju, %ju) rejected (got r=%d v=%ju errno=%d)",
	    t_esc(s), (uintmax_t)min, (uintmax_t)max, r, (uintmax_t)v, errno);
}

static void
size_ok(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;
	int	 r = parse_size(s, &v);

	OK(r == 0 && v == want, "parse_size(\"%s\") = %ju (got r=%d v=%ju)",
	    t_esc(s), (uintmax_t)want, r, (uintmax_t)v);
}

static void
size_bad(const char *s)
{
	uint64_t v = SENTINEL;
	int	 r = parse_size(s, &v);

	OK(r == -1 && v == SENTINEL, "parse_size(\"%s\") rejected (got r=%d v=%ju)",
	    t_esc(s), r, (uintmax_t)v);
}

static void
dur_ok(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;
	int	 r = parse_duration(s, &v);

	OK(r == 0 && v == want, "parse_duration(\"%s\") = %ju ms (got r=%d v=%ju)",
	    t_esc(s), (uintmax_t)want, r, (uintmax_t)v);
}

static void
dur_bad(const char *s)
{
	uint64_t v = SENTINEL;
	int	 r = parse_duration(s, &v);

	OK(r == -1 && v == SENTINEL, "parse_duration(\"%s\") rejected (got r=%d v=%ju)",
	    t_esc(s), r, (uintmax_t)v);
}

static void
test_u64(void)
{
	unsigned u = 12345;
	int	 r;

	u64_ok("0", 0, UINT64_MAX, 0);
	u64_ok("1", 0, UINT64_MAX, 1);
	u64_ok("007", 0, UINT64_MAX, 7);
	u64_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
	u64_ok("5", 5, 5, 5);
	u64_bad("18446744073709551616", 0, UINT64_MAX, 0);
	u64_bad("99999999999999999999", 0, UINT64_MAX, 0);
	u64_bad("184467440737095516150", 0, UINT64_MAX, 0);
	u64_bad("4", 5, 10, ERANGE);
	u64_bad("11", 5, 10, ERANGE);
	u64_bad("0", 1, UINT64_MAX, ERANGE);
	u64_bad("", 0, UINT64_MAX, EINVAL);
	u64_bad("-1", 0, UINT64_MAX, EINVAL);
	u64_bad("-0", 0, UINT64_MAX, EINVAL);
	u64_bad("+1", 0, UINT64_MAX, EINVAL);
	u64_bad(" 1", 0, UINT64_MAX, EINVAL);
	u64_bad("1 ", 0, UINT64_MAX, EINVAL);
	u64_bad("1x", 0, UINT64_MAX, EINVAL);
	u64_bad("0x10", 0, UINT64_MAX, EINVAL);
	u64_bad("1e3", 0, UINT64_MAX, EINVAL);
	u64_bad("1.0", 0, UINT64_MAX, EINVAL);
	u64_bad("1\n", 0, UINT64_MAX, EINVAL);
	u64_bad("\t1", 0, UINT64_MAX, EINVAL);
	u64_bad("x", 0, UINT64_MAX, EINVAL);

	r = parse_uint("4294967295", 0, UINT_MAX, &u);
	OK(r == 0 && u == UINT_MAX, "parse_uint(\"4294967295\") = UINT_MAX");
	u = 12345;
	r = parse_uint("4294967296", 0, UINT_MAX, &u);
	OK(r == -1 && u == 12345, "parse_uint(\"4294967296\") rejected, *out untouched");
	r = parse_uint("-1", 0, UINT_MAX, &u);
	OK(r == -1 && u == 12345, "parse_uint(\"-1\") rejected");
	r = parse_uint("3", 1, 2, &u);
	OK(r == -1 && u == 12345, "parse_uint(\"3\", 1, 2) rejected");
	r = parse_uint("2", 1, 2, &u);
	OK(r == 0 && u == 2, "parse_uint(\"2\", 1, 2) = 2");
}

/* parse_int: priorities, a sign allowed, the range checked. */
static void
test_int(void)
{
	int	 v = 7;

	OK(parse_int("-1000", -1000, 1000, &v) == 0 && v == -1000 &&
	    parse_int("1000", -1000, 1000, &v) == 0 && v == 1000 &&
	    parse_int("0", -1000, 1000, &v) == 0 && v == 0 &&
	    parse_int("-0", -1000, 1000, &v) == 0 && v == 0,
	    "parse_int: -1000, 1000, 0 and -0 in range");
	v = 7;
	OK(parse_int("1001", -1000, 1000, &v) == -1 &&
	    parse_int("-1001", -1000, 1000, &v) == -1 &&
	    parse_int("+5", -1000, 1000, &v) == -1 &&
	    parse_int("--5", -1000, 1000, &v) == -1 &&
	    parse_int("-", -1000, 1000, &v) == -1 &&
	    parse_int("", -1000, 1000, &v) == -1 &&
	    parse_int(" 5", -1000, 1000, &v) == -1 &&
	    parse_int("5x", -1000, 1000, &v) == -1 &&
	    parse_int("99999999999999999999", -1000, 1000, &v) == -1 && v == 7,
	    "parse_int refuses out of range, '+', two signs, blanks, junk");
}

static void
test_size(void)
{
	size_ok("0", 0);
	size_ok("1", 1);
	size_ok("1K", 1024);
	size_ok("1M", 1ULL << 20);
	size_ok("1G", 1ULL << 30);
	size_ok("1T", 1ULL << 40);
	size_ok("64G", 64ULL << 30);
	size_ok("0T", 0);
	size_ok("18446744073709551615", UINT64_MAX);
	size_ok("16777215T", 16777215ULL << 40);
	size_bad("16777216T");			/* exactly 2^64 */
	size_bad("17592186044416M");		/* 2^44 M = 2^64 */
	size_bad("18446744073709551616");
	size_bad("18014398509481984K");		/* 2^54 K = 2^64 */
	size_bad("");
	size_bad("K");
	size_bad("-1");
	size_bad("-1K");
	size_bad("+1K");
	size_bad(" 1K");
	size_bad("1 K");
	size_bad("1K ");
	size_bad("1KB");
	size_bad("1KK");
	size_bad("1.5G");
	size_bad("1P");
	size_bad("1x");
}

static void
test_duration(void)
{
	dur_ok("0", 0);
	dur_ok("5", 5000);			/* no unit: seconds */
	dur_ok("5s", 5000);
	dur_ok("5ms", 5);
	dur_ok("0ms", 0);
	dur_ok("2m", 120000);
	dur_ok("3h", 3ULL * 3600 * 1000);
	dur_ok("1d", 86400000);
	dur_ok("18446744073709551615ms", UINT64_MAX);
	dur_ok("18446744073709551s", 18446744073709551000ULL);
	dur_ok("213503982334d", 213503982334ULL * 86400000);
	dur_bad("18446744073709552s");		/* * 1000 overflows */
	dur_bad("18446744073709552");		/* same, seconds by default */
	dur_bad("213503982335d");
	dur_bad("5124095576031h");
	dur_bad("307445734561826m");
	dur_bad("18446744073709551616ms");
	dur_bad("1.5s");			/* no fractions: write 1500ms */
	dur_bad("");
	dur_bad("s");
	dur_bad("ms");
	dur_bad("-1");
	dur_bad("-1s");
	dur_bad("+1s");
	dur_bad(" 1s");
	dur_bad("1 s");
	dur_bad("1s ");
	dur_bad("1sec");
	dur_bad("1x");
	dur_bad("1w");
	dur_bad("1mss");
	dur_bad("1sm");
}

int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_u64();
	test_int();
	test_size();
	test_duration();
	return t_done();
}
