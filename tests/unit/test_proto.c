/*
 * test_proto.c: unit tests for proto.c (request and frame parsing,
 * percent-encoding) and crc32c.c.  Prints TAP; exits 1 when any test fails.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"
#include "tap.h"


static char		 req_line[JQ_LINE_MAX + 64];
static struct proto_req	 req;

/* Parse line (copied) as a request; return proto_parse_request's result. */
static int
parse_req(const char *line, char **cause)
{
	snprintf(req_line, sizeof req_line, "%s", line);
	*cause = NULL;
	return proto_parse_request(req_line, &req, cause);
}

/* line parses as cmd with argc positional and nkv key=value words. */
static int
req_ok(const char *line, enum proto_cmd cmd, int argc, int nkv)
{
	char	*cause;
	int	 r = parse_req(line, &cause), ok;

	ok = r == 0 && req.cmd == cmd && req.argc == argc && req.nkv == nkv;
	OK(ok, "request \"%s\": %s argc=%d nkv=%d (got r=%d cmd=%d argc=%d nkv=%d%s%s)",
	    t_esc(line), proto_cmd_name(cmd), argc, nkv, r, (int)req.cmd,
	    req.argc, req.nkv, cause ? " cause=" : "", cause ? cause : "");
	free(cause);
	return ok;
}

/* line is refused, with a cause. */
static void
req_bad(const char *line)
{
	char	*cause;
	int	 r = parse_req(line, &cause);

	OK(r == -1 && cause != NULL && *cause != '\0',
	    "request \"%s\" refused (got r=%d cause=%s)", t_esc(line), r,
	    cause ? cause : "(null)");
	free(cause);
}

static void
test_requests(void)
{
	char		 line[JQ_LINE_MAX];
	const char	*v;
	size_t		 n;
	int		 i;

	/* Every verb, with and without its optional fields. */
	if (req_ok("HELLO 1", CMD_HELLO, 1, 0))
		OK(strcmp(req.argv[0], "1") == 0, "HELLO argv[0] is \"1\"");
	if (req_ok("HELLO 1 name=node1:42", CMD_HELLO, 1, 1))
		OK(strcmp(proto_kv(&req, "name"), "node1:42") == 0,
		    "HELLO name=node1:42 (got %s)", proto_kv(&req, "name"));
	OK(req.flags & PROTO_PREHELLO, "HELLO is allowed before HELLO");
	req_ok("TAKE", CMD_TAKE, 0, 0);
	OK(!(req.flags & PROTO_PREHELLO), "TAKE is not allowed before HELLO");
	OK(!(req.flags & PROTO_PAYLOAD), "TAKE carries no payload");
	if (req_ok("TAKE match=%2A.wav wait=0 hold=conn", CMD_TAKE, 0, 3)) {
		OK((v = proto_kv(&req, "match")) && strcmp(v, "%2A.wav") == 0,
		    "TAKE match value kept encoded");
		OK((v = proto_kv(&req, "wait")) && strcmp(v, "0") == 0, "TAKE wait=0");
		OK((v = proto_kv(&req, "hold")) && strcmp(v, "conn") == 0, "TAKE hold=conn");
		OK(proto_kv(&req, "lease") == NULL, "proto_kv of an absent key is NULL");
		OK(strcmp(req.key[0], "match") == 0 && strcmp(req.key[2], "hold") == 0,
		    "key=value words kept in order");
	}
	if (req_ok("TAKE queue=a,b.2 match=x* hold=conn", CMD_TAKE, 0, 3))
		OK((v = proto_kv(&req, KEY_QUEUE)) && strcmp(v, "a,b.2") == 0,
		    "TAKE queue= keeps the comma list as is");
	if (req_ok("ADD name=x size=1 queue=gpu priority=-5", CMD_ADD, 0, 4))
		OK((v = proto_kv(&req, KEY_PRIORITY)) && strcmp(v, "-5") == 0 &&
		    strcmp(proto_kv(&req, KEY_QUEUE), "gpu") == 0,
		    "ADD queue=gpu priority=-5");
	OK(proto_queue_valid("gpu", 3) && proto_queue_valid("a.b_c-9", 7) &&
	    !proto_queue_valid("a,b", 3) && !proto_queue_valid("a%20b", 5) &&
	    !proto_queue_valid("", 0) && !proto_queue_valid("a\0b", 3),
	    "proto_queue_valid: A-Za-z0-9._- only, not empty");
	{
		char	 q65[66];

		memset(q65, 'q', 65);
		q65[65] = '\0';
		OK(proto_queue_valid(q65, JQ_QUEUE_NAME_MAX) &&
		    !proto_queue_valid(q65, 65), "queue names: at most %d bytes",
		    JQ_QUEUE_NAME_MAX);
	}
	if (req_ok("PUT 7", CMD_PUT, 1, 0)) {
		OK(strcmp(req.argv[0], "7") == 0, "PUT argv[0] is \"7\"");
		OK(req.flags & PROTO_PAYLOAD, "PUT carries a payload");
	}
	req_ok("PUT 7 size=11", CMD_PUT, 1, 1);
	if (req_ok("FAIL 7", CMD_FAIL, 1, 0))
		OK(req.flags & PROTO_PAYLOAD, "FAIL carries a payload");
	req_ok("FAIL 7 exit=1 signal=9 timeout=1", CMD_FAIL, 1, 3);
	req_ok("RELEASE 7", CMD_RELEASE, 1, 0);
	req_ok("TOUCH 7", CMD_TOUCH, 1, 0);
	req_ok("STAT", CMD_STAT, 0, 0);
	req_ok("JOBS", CMD_JOBS, 0, 0);
	req_ok("JOBS state=waiting,failed queue=default match=%2A.wav after=7 limit=2",
	    CMD_JOBS, 0, 5);
	req_bad("JOBS 7");
	req_ok("QUIT", CMD_QUIT, 0, 0);
	OK(req.flags & PROTO_PREHELLO, "QUIT is allowed before HELLO");
	req_ok("ADD name=a%2Fb size=3 if_new=1", CMD_ADD, 0, 3);
	if (req_ok("ADD name=b after=1,2,3 before=7", CMD_ADD, 0, 3)) {
		OK(strcmp(proto_kv(&req, KEY_AFTER), "1,2,3") == 0,
		    "ADD after= keeps its comma-separated ids");
		OK(strcmp(proto_kv(&req, KEY_BEFORE), "7") == 0,
		    "ADD before= is read");
	}
	if (req_ok("ADD name=c after_name=a%2Cb,c before_name=d", CMD_ADD, 0, 3))
		OK(strcmp(proto_kv(&req, KEY_AFTER_NAME), "a%2Cb,c") == 0 &&
		    strcmp(proto_kv(&req, KEY_BEFORE_NAME), "d") == 0,
		    "ADD after_name= and before_name= are read, commas kept");
	if (req_ok("FAIL 7 token=x exit=75 tempfail=1", CMD_FAIL, 1, 3))
		OK(strcmp(proto_kv(&req, KEY_TEMPFAIL), "1") == 0,
		    "FAIL tempfail= is read");
	OK((req.flags & PROTO_PAYLOAD) && !(req.flags & PROTO_PREHELLO),
	    "ADD carries a payload, and needs HELLO");
	req_ok("SHUTDOWN", CMD_SHUTDOWN, 0, 0);
	req_ok("WAIT 7", CMD_WAIT, 1, 0);
	req_ok("WAIT 0 name=a%20b", CMD_WAIT, 1, 1);
	req_ok("CANCEL 7 name=a", CMD_CANCEL, 1, 1);
	req_ok("DRAIN w1%2F*", CMD_DRAIN, 1, 0);
	req_ok("UNDRAIN w1", CMD_UNDRAIN, 1, 0);
	OK(!(req.flags & (PROTO_PAYLOAD | PROTO_PREHELLO)),
	    "UNDRAIN carries no payload, and needs HELLO");
	req_bad("WAIT");
	req_bad("CANCEL");
	req_bad("DRAIN");
	req_bad("WAIT 7 8");
	for (i = 0; i < CMD_COUNT; i++) {
		char *cause = NULL;
		snprintf(line, sizeof line, "%s%s", proto_cmd_name((enum proto_cmd)i),
		    i == CMD_HELLO ? " 1" : i == CMD_TAKE || i == CMD_STAT ||
		    i == CMD_JOBS || i == CMD_QUIT || i == CMD_SHUTDOWN ? "" :
		    i == CMD_ADD ? " name=x" : " 3");
		OK(proto_parse_request(line, &req, &cause) == 0 && (int)req.cmd == i,
		    "proto_cmd_name(%d) = %s parses back", i, proto_cmd_name((enum proto_cmd)i));
		free(cause);
	}

	/* Unknown keys are kept (the caller ignores them); empty values too. */
	req_ok("TAKE future=1 x=", CMD_TAKE, 0, 2);
	OK(proto_kv(&req, "x") && *proto_kv(&req, "x") == '\0', "\"x=\" has an empty value");
	req_ok("TAKE wait=1 wait=2", CMD_TAKE, 0, 2);
	OK(proto_kv(&req, "wait") && strcmp(proto_kv(&req, "wait"), "2") == 0,
	    "repeated key: the last one wins");
	req_ok("TAKE a=b=c", CMD_TAKE, 0, 1);
	OK(strcmp(req.key[0], "a") == 0 && strcmp(req.val[0], "b=c") == 0,
	    "a=b=c splits at the first '='");

	/* Arity errors. */
	req_bad("HELLO");
	req_bad("PUT");
	req_bad("FAIL");
	req_bad("RELEASE");
	req_bad("TOUCH");
	req_bad("HELLO 1 2");		/* extra positional word */
	req_bad("PUT 7 8");
	req_bad("STAT now");
	req_bad("QUIT now");
	req_bad("TAKE =x");		/* empty key */
	req_bad("TAKE *.wav");

	/* Unknown verbs, case, empty lines. */
	req_bad("FROB");
	req_bad("take");
	req_bad("Stat");
	req_bad("HELLOX 1");
	req_bad("");
	req_bad(" ");
	req_bad("\r");
	req_bad("\t");
	req_bad("STAT\t");
	req_bad("\x80\xff");

	/* CR before the (already removed) LF is ignored; elsewhere it is data. */
	req_ok("STAT\r", CMD_STAT, 0, 0);
	if (req_ok("PUT 7\r", CMD_PUT, 1, 0))
		OK(strcmp(req.argv[0], "7") == 0, "CR is not part of the last word");
	if (req_ok("TAKE wait=5\r", CMD_TAKE, 0, 1))
		OK(strcmp(proto_kv(&req, "wait"), "5") == 0, "CR is not part of the last value");
	req_bad("STAT\r\r");
	req_bad("ST\rAT");

	/* Too many words: JQ_ARGS_MAX words after the verb at most. */
	n = (size_t)snprintf(line, sizeof line, "TAKE");
	for (i = 0; i < JQ_ARGS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " k%d=%d", i, i);
	req_ok(line, CMD_TAKE, 0, JQ_ARGS_MAX);
	snprintf(line + n, sizeof line - n, " one=more");
	req_bad(line);
	n = (size_t)snprintf(line, sizeof line, "PUT 1");
	for (i = 1; i < JQ_ARGS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " k%d=%d", i, i);
	req_ok(line, CMD_PUT, 1, JQ_ARGS_MAX - 1);
	snprintf(line + n, sizeof line - n, " x=1");
	req_bad(line);
	n = (size_t)snprintf(line, sizeof line, "STAT");
	for (i = 0; i < 1000; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " k=v");
	req_bad(line);

	/* A long but legal line (one huge encoded value). */
	n = (size_t)snprintf(line, sizeof line, "TAKE match=");
	memset(line + n, 'a', sizeof line - n - 2);
	line[sizeof line - 2] = '\0';
	if (req_ok(line, CMD_TAKE, 0, 1))
		OK(strlen(proto_kv(&req, "match")) == sizeof line - n - 2,
		    "a %zu-byte value survives", sizeof line - n - 2);
}

/* Parse line as a frame; check kind, len, crc. */
static void
frame_ok(const char *line, int kind, uint64_t len, uint32_t crc)
{
	struct proto_frame f;
	int	 r;

	memset(&f, 0x5a, sizeof f);
	r = proto_parse_frame(line, &f);
	OK(r == 0 && f.kind == kind && f.len == len && (kind != FRAME_END || f.crc == crc),
	    "frame \"%s\": kind %d len %ju crc %08x (got r=%d kind %d len %ju crc %08x)",
	    t_esc(line), kind, (uintmax_t)len, (unsigned)crc, r, f.kind,
	    (uintmax_t)f.len, (unsigned)f.crc);
}

static void
frame_bad(const char *line)
{
	struct proto_frame f;
	int	 r = proto_parse_frame(line, &f);

	OK(r == -1, "frame \"%s\" refused (got r=%d)", t_esc(line), r);
}

static void
test_frames(void)
{
	char	 big[200];

	frame_ok("DATA 0", FRAME_DATA, 0, 0);	/* an empty chunk is harmless */
	frame_ok("DATA 1", FRAME_DATA, 1, 0);
	frame_ok("DATA 262144", FRAME_DATA, 262144, 0);
	frame_ok("DATA 18446744073709551615", FRAME_DATA, UINT64_MAX, 0);
	frame_ok("DATA 5\r", FRAME_DATA, 5, 0);
	frame_ok("END 0 00000000", FRAME_END, 0, 0);
	frame_ok("END 9 e3069283", FRAME_END, 9, 0xe3069283U);
	frame_ok("END 9 E3069283", FRAME_END, 9, 0xe3069283U);	/* uppercase accepted */
	frame_ok("END 18446744073709551615 ffffffff", FRAME_END, UINT64_MAX, 0xffffffffU);
	frame_ok("END 9 e3069283\r", FRAME_END, 9, 0xe3069283U);
	frame_ok("ABORT", FRAME_ABORT, 0, 0);
	frame_ok("ABORT\r", FRAME_ABORT, 0, 0);

	frame_bad("");
	frame_bad("\r");
	frame_bad("DATA");
	frame_bad("DATA -1");
	frame_bad("DATA +1");
	frame_bad("DATA 0x10");
	frame_bad("DATA 18446744073709551616");
	frame_bad("DATA 99999999999999999999999");
	frame_bad("DATA 5x");
	frame_bad("DATA 5 6");
	frame_bad("DATA 5 junk");
	frame_bad("data 5");
	frame_bad("DATA5");
	frame_bad("END");
	frame_bad("END 9");
	frame_bad("END -1 e3069283");
	frame_bad("END 18446744073709551616 e3069283");
	frame_bad("END 9 e306928");	/* 7 hex digits */
	frame_bad("END 9 e30692830");	/* 9 hex digits */
	frame_bad("END 9 0xe30692");
	frame_bad("END 9 e306928g");
	frame_bad("END 9 -3069283");
	frame_bad("END 9 e3069283 x");
	frame_bad("END x e3069283");
	frame_bad("ABORT now");
	frame_bad("ABORTED");
	frame_bad("OK 7");
	frame_bad("PUT 7");
	frame_bad("TAKE");
	memset(big, '0', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "DATA ", 5);
	big[sizeof big - 2] = '1';
	frame_bad(big);			/* 194 leading zeros: too long a line */
}

static void
test_encoding(void)
{
	unsigned char	 all[256];
	char		*enc, buf[1024], small[8];
	size_t		 n, len;
	ssize_t		 dn;
	int		 i, plain_ok = 1, len_ok, only_ok = 1;

	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	enc = proto_encode_dup(all, sizeof all);
	len = strlen(enc);
	OK(len == proto_encoded_len(all, sizeof all),
	    "proto_encoded_len of 0..255 = strlen of the encoding (%zu)", len);
	/* 94 printable bytes minus '%' travel as themselves, the other 163 as %XX. */
	OK(len == 93 + 163 * 3, "encoding of 0..255 is %d bytes (got %zu)", 93 + 163 * 3, len);
	for (n = 0; n < len; n++) {
		unsigned char c = (unsigned char)enc[n];
		if (c <= 0x20 || c >= 0x7f)
			only_ok = 0;
		if (c == '%' && (n + 2 >= len ||
		    strchr("0123456789ABCDEF", enc[n + 1]) == NULL ||
		    strchr("0123456789ABCDEF", enc[n + 2]) == NULL))
			plain_ok = 0;
	}
	OK(only_ok, "encoding holds only printable ASCII without spaces");
	OK(plain_ok, "every %% is followed by two uppercase hex digits");
	OK(strstr(enc, "%25") != NULL && strstr(enc, "%20") != NULL &&
	    strstr(enc, "%0A") != NULL && strstr(enc, "%00") != NULL &&
	    strstr(enc, "%FF") != NULL && strstr(enc, "%7F") != NULL,
	    "%%, space, LF, NUL, 0xff, DEL are escaped");
	OK(strstr(enc, "!\"#$") != NULL && strstr(enc, "}~") != NULL,
	    "printable bytes travel as themselves");
	dn = proto_decode(enc);
	OK(dn == 256 && memcmp(enc, all, 256) == 0, "round trip of all 256 byte values (got %zd)", dn);
	free(enc);

	/* Every single byte on its own. */
	len_ok = 1;
	for (i = 0; i < 256; i++) {
		unsigned char b = (unsigned char)i;
		n = proto_encode(buf, sizeof buf, &b, 1);
		if (n == (size_t)-1 || n != strlen(buf) || proto_decode(buf) != 1 ||
		    (unsigned char)buf[0] != b)
			len_ok = 0;
	}
	OK(len_ok, "each byte alone round-trips");

	/* Destination sizes: exactly enough, one short. */
	len = proto_encoded_len("a b", 3);
	OK(len == 5, "proto_encoded_len(\"a b\") = 5");
	OK(proto_encode(small, 6, "a b", 3) == 5 && strcmp(small, "a%20b") == 0,
	    "proto_encode fits in len+1 bytes");
	OK(proto_encode(small, 5, "a b", 3) == (size_t)-1, "proto_encode refuses len bytes");
	OK(proto_encode(small, 3, "a b", 3) == (size_t)-1, "proto_encode refuses 3 bytes mid-escape");
	OK(proto_encode(small, 1, "", 0) == 0 && small[0] == '\0', "empty input encodes to \"\"");
	OK(proto_encode(small, 0, "", 0) == (size_t)-1, "no room for the NUL: refused");
	enc = proto_encode_dup("", 0);
	OK(enc != NULL && *enc == '\0', "proto_encode_dup of nothing is \"\"");
	free(enc);

	/* Decoding: lowercase accepted, bad escapes refused. */
	strcpy(buf, "%e9t%C3%A9");
	OK(proto_decode(buf) == 4 && memcmp(buf, "\xe9t\xc3\xa9", 4) == 0,
	    "lower- and uppercase hex decode");
	strcpy(buf, "plain");
	OK(proto_decode(buf) == 5 && strcmp(buf, "plain") == 0, "plain text decodes to itself");
	strcpy(buf, "");
	OK(proto_decode(buf) == 0, "empty string decodes to length 0");
	strcpy(buf, "a%00b");
	OK(proto_decode(buf) == 3 && memcmp(buf, "a\0b", 3) == 0, "%%00 decodes to a NUL byte");
	{
		static const char *bad[] = { "%", "a%", "%4", "a%4", "%G0", "%0G", "%%",
		    "%-1", "% 1", "%+1", "%x1", "abc%2", "%2%20" };
		for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
			strcpy(buf, bad[i]);
			OK(proto_decode(buf) == -1, "bad escape \"%s\" refused", bad[i]);
		}
	}

	/* proto_word_kv finds whole key=value words only. */
	{
		const char *line = "JOB 7 A%20b.wav size=11 attempt=2 xsize=9 e=";
		const char *v;
		n = 99;
		v = proto_word_kv(line, "size", &n);
		OK(v && n == 2 && strncmp(v, "11", 2) == 0, "proto_word_kv size = 11");
		v = proto_word_kv(line, "attempt", &n);
		OK(v && n == 1 && *v == '2', "proto_word_kv attempt = 2");
		OK(proto_word_kv(line, "siz", &n) == NULL, "proto_word_kv does not match a prefix");
		OK(proto_word_kv(line, "ize", &n) == NULL, "proto_word_kv does not match a suffix");
		OK(proto_word_kv(line, "JOB", &n) == NULL, "proto_word_kv: a word without '=' is no key");
		v = proto_word_kv(line, "e", &n);
		OK(v && n == 0, "proto_word_kv e= is empty");
	}
}

/* Reference CRC-32C, a bit at a time. */
static uint32_t
crc_ref(const unsigned char *p, size_t len)
{
	uint32_t c = 0xffffffffU;
	int	 k;

	while (len--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78U : c >> 1;
	}
	return ~c;
}

static void
test_crc(void)
{
	static unsigned char buf[4096 + 16];
	uint32_t	 c;
	size_t		 i, off, len, cut;
	int		 same = 1, inc = 1;

	OK(crc32c_update(0, "123456789", 9) == 0xe3069283U,
	    "crc32c(\"123456789\") = e3069283 (got %08x)", crc32c_update(0, "123456789", 9));
	OK(crc32c_update(0, "", 0) == 0, "crc32c of nothing is 0");
	c = crc32c_update(0, "1234", 4);
	c = crc32c_update(c, "", 0);
	c = crc32c_update(c, "56789", 5);
	OK(c == 0xe3069283U, "crc32c in two pieces = one shot");
	memset(buf, 0, 32);
	OK(crc32c_update(0, buf, 32) == 0x8a9136aaU, "crc32c of 32 zero bytes = 8a9136aa (RFC 3720)");
	memset(buf, 0xff, 32);
	OK(crc32c_update(0, buf, 32) == 0x62a8ab43U, "crc32c of 32 0xff bytes = 62a8ab43 (RFC 3720)");

	/* Any length and alignment (the hardware path has head/body/tail loops). */
	srand(1);
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)rand();
	for (off = 0; off < 9; off++)
		for (len = 0; len + off < sizeof buf; len = len * 2 + 1)
			if (crc32c_update(0, buf + off, len) != crc_ref(buf + off, len))
				same = 0;
	OK(same, "crc32c = bitwise reference at every offset 0..8 and many lengths");
	for (cut = 0; cut <= 4096; cut += 37) {
		c = crc32c_update(0, buf + 3, cut);
		c = crc32c_update(c, buf + 3 + cut, 4096 - cut);
		if (c != crc_ref(buf + 3, 4096))
			inc = 0;
	}
	OK(inc, "incremental crc32c = one shot at every cut");
	for (c = 0, i = 0; i < 4096; i++)
		c = crc32c_update(c, buf + i, 1);
	OK(c == crc_ref(buf, 4096), "crc32c a byte at a time = one shot");
}

static void
test_tokens(void)
{
	struct proto_token	 t = { 0x0123abcdU, 7, 0xfedcba9876543210ULL }, u;
	char			 buf[PROTO_TOKEN_LEN + 1];
	uint64_t		 a, b;

	proto_token_format(&t, buf);
	OK(strcmp(buf, "0123abcd00000007fedcba9876543210") == 0,
	    "token formats as instance, serial, fingerprint (got %s)", buf);
	memset(&u, 0, sizeof u);
	OK(proto_token_parse(buf, &u) == 0 && u.instance == t.instance &&
	    u.serial == t.serial && u.fingerprint == t.fingerprint,
	    "token parses back to the same fields");
	OK(proto_token_parse("0123abcd00000007fedcba987654321", &u) != 0,
	    "a token of 31 digits is refused");
	OK(proto_token_parse("0123abcd00000007fedcba98765432100", &u) != 0,
	    "a token of 33 digits is refused");
	OK(proto_token_parse("0123ABCD00000007fedcba9876543210", &u) != 0,
	    "upper-case hex is refused");
	OK(proto_token_parse("0123abcd0000000 fedcba9876543210", &u) != 0,
	    "a space in a token is refused");
	OK(proto_token_parse("00000000000000070000000000000000", &u) != 0,
	    "instance 0 is refused");
	OK(proto_token_parse("0123abcd000000000000000000000000", &u) != 0,
	    "serial 0 is refused");
	OK(proto_token_parse("", &u) != 0, "an empty token is refused");
	a = proto_fingerprint(1, 2, 3, 4);
	b = proto_fingerprint(1, 2, 3, 4);
	OK(a == b, "a fingerprint is the same every time");
	OK(proto_fingerprint(1, 2, 3, 5) != a && proto_fingerprint(2, 2, 3, 4)
	    != a && proto_fingerprint(1, 3, 3, 4) != a &&
	    proto_fingerprint(1, 2, 4, 4) != a,
	    "a change of device, inode, size or mtime changes the fingerprint");
	OK(proto_fingerprint(0, 0, 0, 0) == 0x0c8210784d8af5a5ULL,
	    "fingerprint of four zeros is FNV-1a of 32 zero bytes (got %016llx)",
	    (unsigned long long)proto_fingerprint(0, 0, 0, 0));
}

int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_requests();
	test_frames();
	test_encoding();
	test_crc();
	test_tokens();
	return t_done();
}
