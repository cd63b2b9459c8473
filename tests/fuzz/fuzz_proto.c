/*
 * fuzz_proto.c: libFuzzer harness for the pure parsers: src/proto.c
 * (requests, payload frames, percent-encoding) and src/parse.c (numbers,
 * sizes, durations).
 *
 * An input is a client stream, like fuzz_conn's (the two share a corpus);
 * each line of it goes through every parser.  Besides the sanitizers, the
 * harness checks what the parsers promise: words point into the line and
 * hold no space, a number that parses prints back the same (leading zeros
 * aside), and decode(encode(x)) == x.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Report a broken promise and abort, so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_proto: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* Whether word w lies inside line[0..len] and holds no space. */
static int
fuzz_in_line(const char *w, const char *line, size_t len)
{
	return w >= line && w + strlen(w) <= line + len &&
	    strchr(w, ' ') == NULL;
}

/* A request line: split, then each value decoded as the server would. */
static void
fuzz_request(const char *text, size_t len)
{
	struct proto_req	 r;
	char			*line = xstrndup(text, len), *cause = NULL;
	char			*dup;
	ssize_t			 n;
	int			 i;

	if (proto_parse_request(line, &r, &cause) != 0) {
		FUZZ_CHECK(cause != NULL);
		free(cause);
		free(line);
		return;
	}
	FUZZ_CHECK(r.cmd < CMD_COUNT);
	FUZZ_CHECK(r.argc >= 0 && r.nkv >= 0 && r.argc + r.nkv <= JQ_ARGS_MAX);
	FUZZ_CHECK(strcmp(proto_cmd_name(r.cmd), "?") != 0);
	for (i = 0; i < r.argc; i++)
		FUZZ_CHECK(fuzz_in_line(r.argv[i], line, len) &&
		    *r.argv[i] != '\0');
	for (i = 0; i < r.nkv; i++) {
		FUZZ_CHECK(fuzz_in_line(r.key[i], line, len) && *r.key[i] != '\0');
		FUZZ_CHECK(fuzz_in_line(r.val[i], line, len));
		FUZZ_CHECK(proto_kv(&r, r.key[i]) != NULL);
		dup = xstrdup(r.val[i]);
		n = proto_decode(dup);
		FUZZ_CHECK(n >= -1 && (n < 0 || (size_t)n <= strlen(r.val[i])));
		free(dup);
	}
	free(line);
}

/* A number in every parser; what parses must print back the same. */
static void
fuzz_numbers(const char *text, size_t len)
{
	char		*s = xstrndup(text, len), buf[PROTO_U64_LEN];
	const char	*digits = s;
	uint64_t	 v;
	unsigned	 u;

	if (parse_u64(s, 0, UINT64_MAX, &v) == 0) {
		while (digits[0] == '0' && digits[1] != '\0')
			digits++;
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
		FUZZ_CHECK(strcmp(buf, digits) == 0);
	}
	if (parse_uint(s, 1, JQ_SECONDS_MAX, &u) == 0)
		FUZZ_CHECK(u >= 1 && u <= JQ_SECONDS_MAX);
	(void)parse_size(s, &v);
	(void)parse_duration(s, &v);
	free(s);
}

/* decode(encode(x)) == x, and the encoding holds only plain bytes. */
static void
fuzz_encoding(const char *text, size_t len)
{
	char	*enc, *p, small[8];
	ssize_t	 n;
	size_t	 elen;

	enc = proto_encode_dup(text, len);
	elen = strlen(enc);
	FUZZ_CHECK(elen == proto_encoded_len(text, len));
	for (p = enc; *p != '\0'; p++)
		FUZZ_CHECK(*p > ' ' && *p < 0x7f);
	n = proto_decode(enc);
	FUZZ_CHECK(n >= 0 && (size_t)n == len && memcmp(enc, text, len) == 0);
	free(enc);
	/* a buffer too small is refused, never overrun */
	if (proto_encode(small, sizeof small, text, len) != (size_t)-1)
		FUZZ_CHECK(elen < sizeof small);
}

/* One line through every parser. */
static void
fuzz_line(const char *text, size_t len)
{
	struct proto_frame	 f;
	const char		*v;
	char			*line = xstrndup(text, len), *p, *w;
	size_t			 vlen;

	fuzz_request(text, len);
	if (proto_parse_frame(line, &f) == 0)
		FUZZ_CHECK(f.kind == FRAME_DATA || f.kind == FRAME_END ||
		    f.kind == FRAME_ABORT);
	if ((v = proto_word_kv(line, "name", &vlen)) != NULL)
		FUZZ_CHECK(v > line && v + vlen <= line + strlen(line));
	p = line;
	while ((w = proto_word(&p)) != NULL) {
		FUZZ_CHECK(*w != '\0' && strchr(w, ' ') == NULL);
		fuzz_numbers(w, strlen(w));
	}
	free(line);
	fuzz_encoding(text, len);
}

/* One input: every line (up to LF) of it. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*text = (const char *)data, *lf;
	size_t		 len;

	while (size > 0) {
		len = (lf = memchr(text, '\n', size)) ? (size_t)(lf - text) : size;
		if (len <= JQ_LINE_MAX)
			fuzz_line(text, len);
		if (lf == NULL)
			break;
		size -= len + 1;
		text += len + 1;
	}
	return 0;
}
