/*
 * parse.c: strict parsing of numbers, sizes and durations.
 *
 * One rule everywhere, for the wire and for options alike: a number is one
 * or more ASCII digits and nothing else.  No sign (so "-1" cannot wrap), no
 * blanks, no base prefix, no trailing junk, and a range check.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "jq.h"

/* Parse the leading digits of s into *out; return a pointer past them or NULL. */
static const char *
parse_digits(const char *s, uint64_t *out)
{
	uint64_t	 v = 0;

	if (*s < '0' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	*out = v;
	return s;
}

/* Parse a decimal number in [min, max]; 0 on success, -1 with errno set. */
int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*end;
	uint64_t	 v;

	if ((end = parse_digits(s, &v)) == NULL || *end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (v < min || v > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
}

/* Parse a decimal unsigned int in [min, max]; 0 or -1. */
int
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t	 v;

	if (parse_u64(s, min, max, &v) != 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/*
 * Parse a decimal int in [min, max], a priority: digits with an optional
 * leading '-' (and nothing else: no '+', no blanks); 0 or -1 with errno.
 */
int
parse_int(const char *s, int min, int max, int *out)
{
	uint64_t	 v;
	int		 neg = *s == '-';

	if (parse_u64(s + neg, 0, (uint64_t)INT32_MAX, &v) != 0)
		return -1;
	if ((neg ? -(int64_t)v : (int64_t)v) < min ||
	    (neg ? -(int64_t)v : (int64_t)v) > max) {
		errno = ERANGE;
		return -1;
	}
	*out = neg ? -(int)v : (int)v;
	return 0;
}

/* Multiply v by m unless it overflows; 0 or -1. */
static int
parse_scale(uint64_t v, uint64_t m, uint64_t *out)
{
	if (m != 0 && v > UINT64_MAX / m) {
		errno = ERANGE;
		return -1;
	}
	*out = v * m;
	return 0;
}

/* Parse a byte count with an optional binary suffix K, M, G or T. */
int
parse_size(const char *s, uint64_t *out)
{
	const char	*end;
	uint64_t	 v, m;

	if ((end = parse_digits(s, &v)) == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (strcmp(end, "") == 0)
		m = 1;
	else if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0)
		m = 1ULL << 10;
	else if (strcmp(end, "M") == 0 || strcmp(end, "m") == 0)
		m = 1ULL << 20;
	else if (strcmp(end, "G") == 0 || strcmp(end, "g") == 0)
		m = 1ULL << 30;
	else if (strcmp(end, "T") == 0 || strcmp(end, "t") == 0)
		m = 1ULL << 40;
	else {
		errno = EINVAL;
		return -1;
	}
	return parse_scale(v, m, out);
}

/* Parse a duration (unit ms, s, m, h or d; seconds by default) into ms. */
int
parse_duration(const char *s, uint64_t *out)
{
	const char	*end;
	uint64_t	 v, m;

	if ((end = parse_digits(s, &v)) == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		m = 1000;
	else if (strcmp(end, "ms") == 0)
		m = 1;
	else if (strcmp(end, "m") == 0)
		m = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		m = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		m = 86400 * 1000;
	else {
		errno = EINVAL;
		return -1;
	}
	return parse_scale(v, m, out);
}
