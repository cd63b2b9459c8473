/*
 * proto.c: parsing and encoding of the jq protocol (see proto.h and
 * jq-protocol(7)).  Pure functions over strings: no I/O, so the parser can be
 * unit-tested and fuzzed on its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

/* The dispatch table: verb, positional arguments, flags. */
static const struct proto_cmd_entry {
	const char	*name;
	enum proto_cmd	 cmd;
	int		 nargs;
	int		 flags;
} proto_cmds[] = {
	{ "HELLO",	CMD_HELLO,	1, PROTO_PREHELLO | PROTO_AHEAD },
	{ "TAKE",	CMD_TAKE,	0, PROTO_AHEAD },
	{ "PUT",	CMD_PUT,	1, PROTO_PAYLOAD | PROTO_AHEAD },
	{ "FAIL",	CMD_FAIL,	1, PROTO_PAYLOAD | PROTO_AHEAD },
	{ "RELEASE",	CMD_RELEASE,	1, 0 },
	{ "TOUCH",	CMD_TOUCH,	1, PROTO_AHEAD },
	{ "RETRY",	CMD_RETRY,	1, 0 },
	{ "STAT",	CMD_STAT,	0, 0 },
	{ "JOBS",	CMD_JOBS,	0, 0 },
	{ "QUIT",	CMD_QUIT,	0, PROTO_PREHELLO | PROTO_AHEAD },
	{ "ADD",	CMD_ADD,	0, PROTO_PAYLOAD | PROTO_AHEAD },
	{ "SHUTDOWN",	CMD_SHUTDOWN,	0, 0 },
	{ "WAIT",	CMD_WAIT,	1, 0 },
	{ "CANCEL",	CMD_CANCEL,	1, 0 },
	{ "DRAIN",	CMD_DRAIN,	1, 0 },
	{ "UNDRAIN",	CMD_UNDRAIN,	1, 0 },
};

static const char hexdigits[] = "0123456789ABCDEF";

/* The flags of the request line's verb (PROTO_*); 0 for an unknown one. */
int
proto_request_flags(const char *line)
{
	size_t	 i, len = strcspn(line, " \r");

	for (i = 0; i < sizeof proto_cmds / sizeof proto_cmds[0]; i++)
		if (strlen(proto_cmds[i].name) == len &&
		    memcmp(line, proto_cmds[i].name, len) == 0)
			return proto_cmds[i].flags;
	return 0;
}

/* Split the next space-separated word off *p; NULL when none is left. */
char *
proto_word(char **p)
{
	char	*s = *p, *w;

	while (*s == ' ')
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	w = s;
	while (*s != '\0' && *s != ' ')
		s++;
	if (*s == ' ')
		*s++ = '\0';
	*p = s;
	return w;
}

/* Return 1 if key is a protocol key: lower-case letters, digits, '_'. */
static int
proto_key_ok(const char *key)
{
	if (*key == '\0')
		return 0;
	for (; *key != '\0'; key++)
		if (!((*key >= 'a' && *key <= 'z') || (*key >= '0' && *key <= '9') ||
		    *key == '_'))
			return 0;
	return 1;
}

/*
 * Parse a request line (without its LF; a trailing CR is removed) into req.
 * The words after the verb's positional arguments must all be key=value.
 * A line may hold only printable ASCII and spaces (the caller turns NUL
 * bytes into another control byte, so none is missed).  On failure,
 * req->cmd and req->flags still say which command it was, when the verb
 * was read, so that its payload can be skipped.
 */
int
proto_parse_request(char *line, struct proto_req *req, char **cause)
{
	const struct proto_cmd_entry	*e = NULL;
	char				*p, *w, *eq;
	size_t				 i, len, bad = SIZE_MAX;

	memset(req, 0, sizeof *req);
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	for (i = 0; i < len && bad == SIZE_MAX; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			bad = i;
	if (bad != SIZE_MAX) {
		line[bad] = '\0';
		p = line;
		/* the verb counts only when a space ended it before the byte */
		if ((w = proto_word(&p)) != NULL && w + strlen(w) < line + bad)
			for (i = 0; i < sizeof proto_cmds / sizeof proto_cmds[0]; i++)
				if (strcmp(w, proto_cmds[i].name) == 0) {
					req->cmd = proto_cmds[i].cmd;
					req->flags = proto_cmds[i].flags;
				}
		*cause = xprintf("a control or non-ASCII byte at offset %zu "
		    "(fields are percent-encoded)", bad);
		return -1;
	}
	p = line;
	if ((w = proto_word(&p)) == NULL) {
		*cause = xstrdup("empty request");
		return -1;
	}
	for (i = 0; i < sizeof proto_cmds / sizeof proto_cmds[0]; i++) {
		if (strcmp(w, proto_cmds[i].name) == 0) {
			e = &proto_cmds[i];
			break;
		}
	}
	if (e == NULL) {
		*cause = xprintf("unknown command \"%.32s\"", w);
		return -1;
	}
	req->cmd = e->cmd;
	req->flags = e->flags;
	while ((w = proto_word(&p)) != NULL) {
		if (req->argc + req->nkv >= JQ_ARGS_MAX) {
			*cause = xprintf("%s: more than %d words", e->name,
			    JQ_ARGS_MAX);
			return -1;
		}
		if (req->argc < e->nargs) {
			req->argv[req->argc++] = w;
			continue;
		}
		if ((eq = strchr(w, '=')) == NULL || eq == w) {
			*cause = xprintf("%s: \"%.32s\" is not key=value",
			    e->name, w);
			return -1;
		}
		*eq = '\0';
		if (!proto_key_ok(w)) {
			*cause = xprintf("%s: bad key \"%.32s\" (lower-case "
			    "letters, digits and _)", e->name, w);
			return -1;
		}
		req->key[req->nkv] = w;
		req->val[req->nkv++] = eq + 1;
	}
	if (req->argc < e->nargs) {
		*cause = xprintf("%s needs %d argument%s", e->name, e->nargs,
		    e->nargs == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

/* Return the value of key in req, or NULL; the last occurrence wins. */
const char *
proto_kv(const struct proto_req *req, const char *key)
{
	int	 i;

	for (i = req->nkv - 1; i >= 0; i--)
		if (strcmp(req->key[i], key) == 0)
			return req->val[i];
	return NULL;
}

/* Return the verb of a command. */
const char *
proto_cmd_name(enum proto_cmd cmd)
{
	size_t	 i;

	for (i = 0; i < sizeof proto_cmds / sizeof proto_cmds[0]; i++)
		if (proto_cmds[i].cmd == cmd)
			return proto_cmds[i].name;
	return "?";
}

/* Parse exactly 8 hex digits into *out; 0 or -1. */
static int
proto_hex32(const char *s, uint32_t *out)
{
	uint32_t	 v = 0;
	int		 i, d;

	for (i = 0; i < 8; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	if (s[8] != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Parse a payload frame line: "DATA <n>", "END <total> <crc>" or "ABORT". */
int
proto_parse_frame(const char *line, struct proto_frame *f)
{
	char	 buf[64], *p, *w, *n, *c;
	size_t	 len = strlen(line);

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len >= sizeof buf)
		return -1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	memset(f, 0, sizeof *f);
	for (w = buf; *w != '\0'; w++)
		if ((unsigned char)*w < 0x20 || (unsigned char)*w > 0x7e)
			return -1;
	p = buf;
	if ((w = proto_word(&p)) == NULL)
		return -1;
	if (strcmp(w, FRAME_WORD_ABORT) == 0) {
		f->kind = FRAME_ABORT;
		return proto_word(&p) == NULL ? 0 : -1;
	}
	if (strcmp(w, FRAME_WORD_DATA) == 0) {
		f->kind = FRAME_DATA;
		if ((n = proto_word(&p)) == NULL || proto_word(&p) != NULL)
			return -1;
		return parse_u64(n, 0, UINT64_MAX, &f->len);
	}
	if (strcmp(w, FRAME_WORD_END) == 0) {
		f->kind = FRAME_END;
		if ((n = proto_word(&p)) == NULL ||
		    (c = proto_word(&p)) == NULL || proto_word(&p) != NULL)
			return -1;
		if (parse_u64(n, 0, UINT64_MAX, &f->len) != 0)
			return -1;
		return proto_hex32(c, &f->crc);
	}
	return -1;
}

/* Whether byte c travels as itself in an encoded field. */
static int
proto_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%';
}

/* Return the length of the percent-encoding of len bytes. */
size_t
proto_encoded_len(const void *src, size_t len)
{
	const unsigned char	*s = src;
	size_t			 i, n = 0;

	for (i = 0; i < len; i++)
		n += proto_plain(s[i]) ? 1 : 3;
	return n;
}

/*
 * Percent-encode len bytes into dst of size dstlen (NUL-terminated); return
 * the encoded length, or (size_t)-1 when dst is too small.
 */
size_t
proto_encode(char *dst, size_t dstlen, const void *src, size_t len)
{
	const unsigned char	*s = src;
	size_t			 i, n = 0;

	for (i = 0; i < len; i++) {
		if (proto_plain(s[i])) {
			if (n + 1 >= dstlen)
				return (size_t)-1;
			dst[n++] = (char)s[i];
		} else {
			if (n + 3 >= dstlen)
				return (size_t)-1;
			dst[n++] = '%';
			dst[n++] = hexdigits[s[i] >> 4];
			dst[n++] = hexdigits[s[i] & 15];
		}
	}
	if (n >= dstlen)
		return (size_t)-1;
	dst[n] = '\0';
	return n;
}

/* Percent-encode len bytes into a new string. */
char *
proto_encode_dup(const void *src, size_t len)
{
	size_t	 n = proto_encoded_len(src, len) + 1;
	char	*dst = xmalloc(n);

	proto_encode(dst, n, src, len);
	return dst;
}

/* Return the value of one hex digit, or -1. */
static int
proto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode a percent-encoded string in place; return the decoded length, or
 * -1 for a bad escape.  The result may hold NUL bytes: use the length.
 */
ssize_t
proto_decode(char *s)
{
	char	*r = s, *w = s;
	int	 hi, lo;

	while (*r != '\0') {
		if (*r != '%') {
			*w++ = *r++;
			continue;
		}
		if ((hi = proto_hexval(r[1])) < 0 || (lo = proto_hexval(r[2])) < 0)
			return -1;
		*w++ = (char)(hi << 4 | lo);
		r += 3;
	}
	*w = '\0';
	return w - s;
}

/*
 * Find the word "key=..." in a space-separated line; return a pointer to its
 * value and its length in *len, or NULL.
 */
const char *
proto_word_kv(const char *line, const char *key, size_t *len)
{
	size_t		 klen = strlen(key);
	const char	*p = line, *end;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		end = p + strcspn(p, " ");
		if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			*len = (size_t)(end - p) - klen - 1;
			return p + klen + 1;
		}
		p = end;
	}
	return NULL;
}

/*
 * The fingerprint of an input: FNV-1a (64 bits) over its device, inode,
 * size and mtime in nanoseconds, each as 8 bytes little-endian, so that
 * every server instance on any host computes the same value.
 */
uint64_t
proto_fingerprint(uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime_ns)
{
	uint64_t	 v[4] = { dev, ino, size, (uint64_t)mtime_ns };
	uint64_t	 h = 0xcbf29ce484222325ULL;
	int		 i, b;

	for (i = 0; i < 4; i++)
		for (b = 0; b < 8; b++) {
			h ^= (v[i] >> (8 * b)) & 0xff;
			h *= 0x100000001b3ULL;
		}
	return h;
}

/* Write token t as 32 lowercase hex digits and a NUL into buf. */
void
proto_token_format(const struct proto_token *t, char buf[PROTO_TOKEN_LEN + 1])
{
	snprintf(buf, PROTO_TOKEN_LEN + 1, "%08x%08x%016llx", t->instance,
	    t->serial, (unsigned long long)t->fingerprint);
}

/*
 * Parse a token: exactly 32 lowercase hex digits, instance and serial not
 * 0.  0, or -1 (t untouched).
 */
int
proto_token_parse(const char *s, struct proto_token *t)
{
	struct proto_token	 r;
	uint32_t		 hi, lo;
	char			 part[9];
	int			 i;

	if (strlen(s) != PROTO_TOKEN_LEN)
		return -1;
	for (i = 0; i < PROTO_TOKEN_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	part[8] = '\0';
	memcpy(part, s, 8);
	(void)proto_hex32(part, &r.instance);
	memcpy(part, s + 8, 8);
	(void)proto_hex32(part, &r.serial);
	memcpy(part, s + 16, 8);
	(void)proto_hex32(part, &hi);
	memcpy(part, s + 24, 8);
	(void)proto_hex32(part, &lo);
	r.fingerprint = (uint64_t)hi << 32 | lo;
	if (r.instance == 0 || r.serial == 0)
		return -1;
	*t = r;
	return 0;
}

/*
 * Whether name (len bytes) is a good queue name: 1 to JQ_QUEUE_NAME_MAX
 * bytes of A-Z a-z 0-9 . _ - (so it travels as is, never encoded).
 */
int
proto_queue_valid(const char *name, size_t len)
{
	static const char	 ok[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	size_t			 i;

	if (len == 0 || len > JQ_QUEUE_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (name[i] == '\0' || strchr(ok, name[i]) == NULL)
			return 0;
	return 1;
}
