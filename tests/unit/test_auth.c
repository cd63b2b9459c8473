/*
 * test_auth.c: unit tests for auth.c: the token file parser and its checks
 * (length, hex, newline, mode, owner), token creation, and the MAC: a
 * known answer computed independently (openssl dgst -sha256 -mac HMAC),
 * both roles, and rejection of every malformed or altered proof.  Prints
 * TAP; exits 1 when any test fails.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"
#include "tap.h"

static char	 dir[] = "/tmp/jq-test-auth.XXXXXX";

/* Write text to the file name in dir with the given mode; return its path. */
static char *
put(const char *name, const char *text, mode_t mode)
{
	char	*path = xprintf("%s/%s", dir, name);
	int	 fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fchmod(fd, mode) != 0) {
		perror(path);
		exit(2);
	}
	close(fd);
	return path;
}

/* auth_load accepts text (mode 0600) and yields a key of len bytes. */
static void
load_ok(const char *text, size_t len)
{
	struct auth_key	 k;
	char		*cause = NULL, *path = put("ok", text, 0600);
	int		 r = auth_load(path, 0, &k, &cause);

	OK(r == 0 && k.len == len, "auth_load(\"%s\") gives %zu bytes (r=%d, %s)",
	    t_esc(text), len, r, cause ? cause : "");
	free(cause);
	free(path);
}

/* auth_load refuses the file (text, mode) with a cause containing want. */
static void
load_bad(const char *text, mode_t mode, const char *want)
{
	struct auth_key	 k;
	char		*cause = NULL, *path = put("bad", text, mode);
	int		 r = auth_load(path, 0, &k, &cause);

	OK(r == -1 && cause != NULL && strstr(cause, want) != NULL,
	    "auth_load(\"%s\", %04o) refused with \"%s\" (r=%d, %s)",
	    t_esc(text), (unsigned)mode, want, r, cause ? cause : "");
	free(cause);
	free(path);
}

/* The token file: accepted shapes and refused ones. */
static void
test_load(void)
{
	static const char hex64[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	char		 buf[300], *cause = NULL, *path;
	struct auth_key	 k;

	load_ok(hex64, 32);
	snprintf(buf, sizeof buf, "%s\n", hex64);
	load_ok(buf, 32);
	load_ok("0123456789abcdef0123456789ABCDEF", 16);	/* 128 bits, mixed case */
	memset(buf, 'a', 128);
	buf[128] = '\0';
	load_ok(buf, 64);
	buf[130] = '\0';
	buf[128] = buf[129] = 'a';
	load_bad(buf, 0600, "is not a jq token");		/* 65 bytes */
	load_bad("0123456789abcdef0123456789abcde", 0600, "is not a jq token");
	load_bad("0123456789abcdef0123456789abcdef0", 0600, "is not a jq token");
	load_bad("0123456789abcdef0123456789abcdeg", 0600, "is not a jq token");
	load_bad("0123456789abcdef 0123456789abcdef", 0600, "is not a jq token");
	load_bad("\n", 0600, "is not a jq token");
	load_bad("", 0600, "is not a jq token");
	snprintf(buf, sizeof buf, "%s\n\n", hex64);
	load_bad(buf, 0600, "is not a jq token");
	load_bad(hex64, 0640, "chmod 600");
	load_bad(hex64, 0604, "chmod 600");
	load_bad(hex64, 0660, "mode 0660");

	path = xprintf("%s/missing", dir);
	OK(auth_load(path, 0, &k, &cause) == AUTH_MISSING && cause != NULL &&
	    strstr(cause, "does not exist") != NULL,
	    "a missing token file is AUTH_MISSING (%s)", cause ? cause : "");
	free(cause);
	cause = NULL;
	free(path);

	/* create: a new 0600 token in new 0700 directories, then reused */
	path = xprintf("%s/new/jq/token", dir);
	OK(auth_load(path, 1, &k, &cause) == 0 && k.len == 32,
	    "auth_load(create) makes a 32-byte token (%s)", cause ? cause : "");
	{
		struct stat	 st, dst;
		char		*d = xprintf("%s/new/jq", dir);
		struct auth_key	 k2;

		OK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 &&
		    st.st_size == 65, "the new token file is 0600, 64 digits + LF");
		OK(stat(d, &dst) == 0 && (dst.st_mode & 07777) == 0700,
		    "its new directory is 0700");
		OK(auth_load(path, 1, &k2, &cause) == 0 && k2.len == k.len &&
		    memcmp(k2.key, k.key, k.len) == 0,
		    "a second auth_load(create) reuses it");
		free(d);
	}
	free(path);
}

/* The MAC: a known answer, both roles, and refusals. */
static void
test_mac(void)
{
	struct auth_key	 k;
	char		 mac[AUTH_HEX_LEN + 1], bad[AUTH_HEX_LEN + 1];
	char		 sn[AUTH_HEX_LEN + 1], cn[AUTH_HEX_LEN + 1];
	char		 n1[AUTH_HEX_LEN + 1], n2[AUTH_HEX_LEN + 1];
	size_t		 i;

	memset(&k, 0, sizeof k);
	for (i = 0; i < 32; i++)
		k.key[i] = (unsigned char)i;
	k.len = 32;
	memset(sn, 'a', AUTH_HEX_LEN);
	sn[AUTH_HEX_LEN] = '\0';
	memset(cn, 'b', AUTH_HEX_LEN);
	cn[AUTH_HEX_LEN] = '\0';
	/*
	 * printf 'jq-auth-1 client %s %s' $(printf 'a%.0s' {1..64}) \
	 *   $(printf 'b%.0s' {1..64}) | openssl dgst -sha256 -mac HMAC \
	 *   -macopt hexkey:000102...1f
	 */
	auth_mac(&k, "client", sn, cn, mac);
	OK(strcmp(mac, "246429a6a5048c6261e681cc7aa888e3"
	    "b6e0cfb28bfe8bb19d1bedecb319eaa7") == 0,
	    "client MAC matches openssl's (%s)", mac);
	OK(auth_check(&k, "client", sn, cn, mac) == 0, "auth_check accepts it");
	OK(auth_check(&k, "server", sn, cn, mac) != 0,
	    "the client's MAC is not the server's");
	OK(auth_check(&k, "client", cn, sn, mac) != 0, "swapped nonces fail");
	for (i = 0; i < AUTH_HEX_LEN; i += 7) {
		memcpy(bad, mac, sizeof bad);
		bad[i] = bad[i] == '0' ? '1' : '0';
		OK(auth_check(&k, "client", sn, cn, bad) != 0,
		    "one digit changed at %zu fails", i);
	}
	memcpy(bad, mac, sizeof bad);
	bad[AUTH_HEX_LEN - 1] = '\0';
	OK(auth_check(&k, "client", sn, cn, bad) != 0, "a short MAC fails");
	for (i = 0; i < AUTH_HEX_LEN; i++)
		bad[i] = (char)toupper((unsigned char)mac[i]);
	bad[AUTH_HEX_LEN] = '\0';
	OK(strcmp(bad, mac) == 0 || auth_check(&k, "client", sn, cn, bad) != 0,
	    "upper-case hex is not the protocol's form");
	k.key[0] ^= 1;
	OK(auth_check(&k, "client", sn, cn, mac) != 0, "another key fails");
	k.key[0] ^= 1;
	k.len = 31;
	OK(auth_check(&k, "client", sn, cn, mac) != 0, "a shorter key fails");

	OK(auth_is_hex(sn) && !auth_is_hex("abc") && !auth_is_hex(""),
	    "auth_is_hex wants exactly 64 lowercase digits");
	auth_nonce(n1);
	auth_nonce(n2);
	OK(auth_is_hex(n1) && auth_is_hex(n2) && strcmp(n1, n2) != 0,
	    "nonces are 64 hex digits and differ (%s)", n1);
}

/* Remove what the tests wrote. */
static void
cleanup(void)
{
	char	*cmd = xprintf("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

int
main(void)
{
	if (auth_init() != 0 || mkdtemp(dir) == NULL) {
		perror("setup");
		return 2;
	}
	test_load();
	test_mac();
	cleanup();
	return t_done();
}
