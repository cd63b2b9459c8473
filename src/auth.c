/*
 * auth.c: the shared secret (token file) and the challenge-response that
 * proves both ends hold it, after the Erlang cookie.
 *
 * The token file holds 32 to 128 hex digits (128 to 512 bits) and an
 * optional LF; the key is the bytes they spell.  jq-serve creates it when
 * missing; clients only read it.  Either side refuses a file that group or
 * others may read or that another user owns.
 *
 * The handshake (see jq-protocol(7)): the greeting carries a fresh server
 * nonce SN; HELLO carries a fresh client nonce CN and
 * HMAC-SHA-256(key, "jq-auth-1 client SN CN"); the OK carries
 * HMAC-SHA-256(key, "jq-auth-1 server SN CN").  The secret never crosses the
 * wire and a recorded handshake is worthless against a new SN.  The
 * cryptography is libsodium's; MACs are compared in constant time.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "jq.h"

#define AUTH_FILE_MAX	(AUTH_KEY_MAX * 2 + 2)	/* hex digits, LF, one more */
#define AUTH_NEW_BYTES	32			/* key length of a new token */

/* Initialise libsodium; -1 if it cannot run here. */
int
auth_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

/*
 * Return the token file to use, allocated: the option's, $JQ_TOKEN_FILE,
 * or ${XDG_CONFIG_HOME:-$HOME/.config}/jq/token.  NULL with *cause when
 * there is no home to find it in.
 */
char *
auth_path(const char *opt, char **cause)
{
	const char	*env, *home;

	if (opt != NULL && *opt != '\0')
		return xstrdup(opt);
	if ((env = getenv("JQ_TOKEN_FILE")) != NULL && *env != '\0')
		return xstrdup(env);
	if ((env = getenv("XDG_CONFIG_HOME")) != NULL && *env == '/')
		return xprintf("%s/jq/token", env);
	if ((home = getenv("HOME")) == NULL || *home != '/') {
		*cause = xstrdup("no token file: HOME is not set; use "
		    "--token-file or JQ_TOKEN_FILE");
		return NULL;
	}
	return xprintf("%s/.config/jq/token", home);
}

/* Create the directories above path that are missing, mode 0700. */
static int
auth_mkdirs(const char *path, char **cause)
{
	char	*dir, *p;
	int	 end;

	dir = xstrdup(path);
	if ((p = strrchr(dir, '/')) == NULL || p == dir) {
		free(dir);
		return 0;
	}
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		end = *p == '\0';
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			*cause = xprintf("cannot create %s for the token: %s",
			    dir, strerror(errno));
			free(dir);
			return -1;
		}
		if (end)
			break;
		*p = '/';
	}
	free(dir);
	return 0;
}

/*
 * Create a new token file at path: 0600, O_EXCL, synced.  0 when created
 * or when another process created it first (read it then).
 */
static int
auth_create(const char *path, char **cause)
{
	unsigned char	 key[AUTH_NEW_BYTES];
	char		 hex[AUTH_NEW_BYTES * 2 + 2];
	int		 fd;

	if (auth_mkdirs(path, cause) != 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return 0;
		*cause = xprintf("cannot create the token file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	randombytes_buf(key, sizeof key);	/* getrandom(2) underneath */
	sodium_bin2hex(hex, sizeof hex, key, sizeof key);
	sodium_memzero(key, sizeof key);
	hex[AUTH_NEW_BYTES * 2] = '\n';
	if (util_write_all(fd, hex, AUTH_NEW_BYTES * 2 + 1) != 0 ||
	    fsync(fd) != 0) {
		*cause = xprintf("cannot write the token file %s: %s", path,
		    strerror(errno));
		sodium_memzero(hex, sizeof hex);
		close(fd);
		unlink(path);
		return -1;
	}
	sodium_memzero(hex, sizeof hex);
	close(fd);
	return 1;
}

/* Decode the file's text into key; -1 if it is not a token. */
static int
auth_decode(const char *text, size_t len, struct auth_key *key)
{
	size_t	 n;

	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len < AUTH_KEY_MIN * 2 || len > AUTH_KEY_MAX * 2 || len % 2 != 0)
		return -1;
	if (sodium_hex2bin(key->key, sizeof key->key, text, len, NULL, &n,
	    NULL) != 0 || n * 2 != len)
		return -1;
	key->len = n;
	return 0;
}

/*
 * Read the token at path into key; with create, make a new one first when
 * there is none.  Returns 0, AUTH_MISSING when the file does not exist
 * (and create is 0), or -1; *cause says why and what to do.
 */
int
auth_load(const char *path, int create, struct auth_key *key, char **cause)
{
	char		 buf[AUTH_FILE_MAX];
	struct stat	 st;
	ssize_t		 n;
	int		 fd;

	if (create && auth_create(path, cause) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		if (errno == ENOENT && !create) {
			*cause = xprintf("the token file %s does not exist",
			    path);
			return AUTH_MISSING;
		}
		*cause = xprintf("cannot read the token file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*cause = xprintf("the token file %s is not a regular file",
		    path);
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		*cause = xprintf("the token file %s belongs to uid %u, not to "
		    "us (uid %u); refusing it", path, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		*cause = xprintf("the token file %s may be read by group or "
		    "others (mode %04o); refusing it: run chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	do
		n = read(fd, buf, sizeof buf);
	while (n == -1 && errno == EINTR);
	close(fd);
	if (n < 0) {
		*cause = xprintf("cannot read the token file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (auth_decode(buf, (size_t)n, key) != 0) {
		sodium_memzero(buf, sizeof buf);
		*cause = xprintf("%s is not a jq token (it must hold %d to %d "
		    "hex digits)", path, AUTH_KEY_MIN * 2, AUTH_KEY_MAX * 2);
		return -1;
	}
	sodium_memzero(buf, sizeof buf);
	return 0;
}

/* Fill hex with a fresh nonce: AUTH_NONCE_BYTES random bytes in hex. */
void
auth_nonce(char hex[AUTH_HEX_LEN + 1])
{
	unsigned char	 n[AUTH_NONCE_BYTES];

	randombytes_buf(n, sizeof n);
	sodium_bin2hex(hex, AUTH_HEX_LEN + 1, n, sizeof n);
}

/* Compute the raw MAC of "jq-auth-1 ROLE SN CN". */
static void
auth_mac_raw(const struct auth_key *key, const char *role, const char *sn,
    const char *cn, unsigned char out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state	 st;

	crypto_auth_hmacsha256_init(&st, key->key, key->len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"jq-auth-1 ",
	    10);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)role,
	    strlen(role));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)" ", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)sn,
	    strlen(sn));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)" ", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)cn,
	    strlen(cn));
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

/* Write the MAC of role ("client" or "server") for the nonces, in hex. */
void
auth_mac(const struct auth_key *key, const char *role, const char *sn,
    const char *cn, char hex[AUTH_HEX_LEN + 1])
{
	unsigned char	 mac[crypto_auth_hmacsha256_BYTES];

	auth_mac_raw(key, role, sn, cn, mac);
	sodium_bin2hex(hex, AUTH_HEX_LEN + 1, mac, sizeof mac);
}

/* Return 1 if s is exactly AUTH_HEX_LEN lowercase hex digits. */
int
auth_is_hex(const char *s)
{
	size_t	 i;

	for (i = 0; i < AUTH_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

/* Check a hex MAC of role for the nonces, in constant time; 0 if right. */
int
auth_check(const struct auth_key *key, const char *role, const char *sn,
    const char *cn, const char *hex)
{
	unsigned char	 want[crypto_auth_hmacsha256_BYTES];
	unsigned char	 got[crypto_auth_hmacsha256_BYTES];
	size_t		 n;
	int		 rc;

	if (!auth_is_hex(hex) || !auth_is_hex(sn) || !auth_is_hex(cn))
		return -1;
	if (sodium_hex2bin(got, sizeof got, hex, AUTH_HEX_LEN, NULL, &n,
	    NULL) != 0 || n != sizeof got)
		return -1;
	auth_mac_raw(key, role, sn, cn, want);
	rc = crypto_verify_32(want, got);
	sodium_memzero(want, sizeof want);
	return rc == 0 ? 0 : -1;
}
