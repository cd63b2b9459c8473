/*
 * test_client.c: unit tests for client.c's line reader (client_line,
 * client_reply), fed through a socketpair: lines split across reads, a line
 * at exactly JQ_LINE_MAX and one over it, a CR before the LF, EOF in the
 * middle of a line, more lines than the input buffer holds, and the replies
 * OK and ERR.  Prints TAP; exits 1 when any test fails.
 *
 * struct client is private to client.c and client_open() wants a server
 * address and a greeting, so this file includes client.c itself and builds
 * a client around one end of a socketpair, as client_open() would.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * (clang -Werror rejects client.c:96 until client_vsend gets its printf
 * attribute, issue 8; drop the pragmas once it has.)
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "client.c"
#pragma GCC diagnostic pop
#include "tap.h"

/* A client on one end of a socketpair; *peer is the server's end. */
static struct client *
pair_client(int *peer)
{
	struct client	*c;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		printf("Bail out! socketpair: %s\n", strerror(errno));
		exit(2);
	}
	c = xcalloc(1, sizeof *c);
	c->fd = sv[0];
	c->server = xstrdup("peer");
	c->in = xmalloc(CLIENT_IN_SIZE);
	c->out = xmalloc(CLIENT_OUT_SIZE);
	*peer = sv[1];
	return c;
}

/* The server's side says len bytes of s. */
static void
say_n(int peer, const char *s, size_t len)
{
	if (util_write_all(peer, s, len) != 0)
		printf("# write to the client: %s\n", strerror(errno));
}

/* The server's side says the string s. */
static void
say(int peer, const char *s)
{
	say_n(peer, s, strlen(s));
}

/* Wait (at most about 30 s) until the client has read all we sent: 0 or -1. */
static int
drained(int peer)
{
	struct timespec	 ms = { 0, 1000000 };
	int		 queued, i;

	for (i = 0; i < 30000; i++) {
		if (ioctl(peer, SIOCOUTQ, &queued) != 0)
			return -1;
		if (queued == 0)
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

/*
 * A child that says len bytes of s to c in pieces of step bytes, each once
 * the client has read the one before, so every piece is a read of its own.
 * It gives up (status 1) when the client stops reading.
 */
static pid_t
dribble(struct client *c, int peer, const char *s, size_t len, size_t step)
{
	pid_t	 pid;
	size_t	 off, n;

	fflush(stdout);
	if ((pid = fork()) != 0)
		return pid;
	close(client_fd(c));	/* the client's end is the parent's alone */
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		if (util_write_all(peer, s + off, n) != 0 || drained(peer) != 0)
			_exit(1);
	}
	_exit(0);
}

/* Reap a dribble child; 1 if it ended well. */
static int
reaped(pid_t pid)
{
	int	 status = 0;

	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0;
}

/* client_line on what the peer said gives want (NULL: fails). */
static void
line_is(struct client *c, const char *want, const char *what)
{
	char	*cause = NULL, *got = client_line(c, &cause);

	if (want == NULL)
		OK(got == NULL && cause != NULL, "%s: fails (%s)", what,
		    cause ? cause : "no cause");
	else
		OK(got != NULL && strcmp(got, want) == 0,
		    "%s: \"%s\" (got \"%s\"%s%s)", what, t_esc(want),
		    got ? t_esc(got) : "NULL", cause ? "; " : "", cause ? cause : "");
	free(cause);
}

/* Lines, empty lines, CRs, and a line completed by a later read. */
static void
test_lines(void)
{
	struct client	*c;
	int		 peer;

	c = pair_client(&peer);
	say(peer, "OK\nOK one two\n\nlast\n");
	line_is(c, "OK", "a short line");
	line_is(c, "OK one two", "the next line from the same read");
	line_is(c, "", "an empty line");
	line_is(c, "last", "the last line in the buffer");
	OK(client_buffered(c) == 0, "nothing left in the buffer");

	say(peer, "JOB 1\r\n\r\na\rb\nx\r\r\n");
	line_is(c, "JOB 1", "a CR before the LF is dropped");
	line_is(c, "", "a line of just CR LF is empty");
	line_is(c, "a\rb", "a CR elsewhere stays");
	line_is(c, "x\r", "only one CR before the LF is dropped");

	/* the rest of a line arrives in a later read */
	say(peer, "OK first\nOK sec");
	line_is(c, "OK first", "a whole line before a partial one");
	OK(client_buffered(c) == 6, "the partial line waits in the buffer "
	    "(%zu bytes)", client_buffered(c));
	say(peer, "ond\nOK th");
	line_is(c, "OK second", "a line split across two reads");
	say(peer, "ird\r");
	say(peer, "\n");
	line_is(c, "OK third", "a line split between its CR and its LF");
	client_close(c);
	close(peer);
}

/* Lines sent in pieces, each piece a read of its own. */
static void
test_split(void)
{
	struct client	*c;
	char		*big, *cause = NULL, *got;
	int		 peer;
	pid_t		 pid;

	c = pair_client(&peer);
	pid = dribble(c, peer, "OK dribbled\r\nOK next\n", 21, 1);
	line_is(c, "OK dribbled", "a line sent one byte per read");
	line_is(c, "OK next", "and the next one");
	OK(reaped(pid), "the writer ended");

	big = xmalloc(JQ_LINE_MAX);
	memset(big, 'x', JQ_LINE_MAX - 1);
	big[JQ_LINE_MAX - 1] = '\n';
	pid = dribble(c, peer, big, JQ_LINE_MAX, 1000);
	got = client_line(c, &cause);
	OK(got != NULL && strlen(got) == JQ_LINE_MAX - 1 && got[0] == 'x' &&
	    got[JQ_LINE_MAX - 2] == 'x',
	    "a line of JQ_LINE_MAX bytes with its LF, sent in 17 pieces (length "
	    "%zu%s%s)",
	    got ? strlen(got) : 0, cause ? "; " : "", cause ? cause : "");
	free(cause);
	cause = NULL;
	OK(reaped(pid), "the writer ended");
	free(big);
	client_close(c);
	close(peer);
}

/* A new client given len bytes of s refuses them as too long a line. */
static void
too_long(const char *s, size_t len, const char *what)
{
	struct client	*c;
	char		*cause = NULL, *got, *want;
	int		 peer;

	c = pair_client(&peer);
	say_n(peer, s, len);
	got = client_line(c, &cause);
	want = xprintf("sent a line longer than %d bytes", JQ_LINE_MAX);
	OK(got == NULL && cause != NULL && strstr(cause, want) != NULL &&
	    client_status(c) == JQ_EXIT_PROTOCOL,
	    "%s: refused, status %d (%s)", what, client_status(c),
	    cause ? cause : "accepted");
	free(want);
	free(cause);
	client_close(c);
	close(peer);
}

/* A line of exactly JQ_LINE_MAX bytes, and one byte more. */
static void
test_limit(void)
{
	struct client	*c;
	char		*big, *cause = NULL, *got;
	int		 peer;

	big = xmalloc(JQ_LINE_MAX + 2);
	memset(big, 'y', JQ_LINE_MAX + 2);

	/* JQ_LINE_MAX bytes, LF included: the longest line there is */
	c = pair_client(&peer);
	big[JQ_LINE_MAX - 1] = '\n';
	say_n(peer, big, JQ_LINE_MAX);
	say(peer, "after\n");
	got = client_line(c, &cause);
	OK(got != NULL && strlen(got) == JQ_LINE_MAX - 1,
	    "a line of exactly JQ_LINE_MAX bytes is read (length %zu%s%s)",
	    got ? strlen(got) : 0, cause ? "; " : "", cause ? cause : "");
	free(cause);
	cause = NULL;
	line_is(c, "after", "the line after it");

	/* the same with CR LF: the CR counts, and is dropped */
	big[JQ_LINE_MAX - 2] = '\r';
	say_n(peer, big, JQ_LINE_MAX);
	got = client_line(c, &cause);
	OK(got != NULL && strlen(got) == JQ_LINE_MAX - 2,
	    "a line of exactly JQ_LINE_MAX bytes ending in CR LF (length %zu)",
	    got ? strlen(got) : 0);
	free(cause);
	cause = NULL;
	client_close(c);
	close(peer);

	/* one byte more */
	big[JQ_LINE_MAX - 2] = 'y';
	big[JQ_LINE_MAX - 1] = 'y';
	big[JQ_LINE_MAX] = '\n';
	too_long(big, JQ_LINE_MAX + 1, "a line of JQ_LINE_MAX + 1 bytes");
	big[JQ_LINE_MAX - 1] = '\r';
	too_long(big, JQ_LINE_MAX + 1,
	    "a line of JQ_LINE_MAX + 1 bytes ending in CR LF");
	/* too long before its LF has even come: refused without waiting */
	memset(big, 'y', JQ_LINE_MAX + 1);
	too_long(big, JQ_LINE_MAX + 1, "JQ_LINE_MAX + 1 bytes without an LF");
	free(big);
}

/* EOF in the middle of a line, and before any byte. */
static void
test_eof(void)
{
	struct client	*c;
	int		 peer;

	c = pair_client(&peer);
	say(peer, "OK whole\nOK ha");
	shutdown(peer, SHUT_WR);
	line_is(c, "OK whole", "a whole line before EOF");
	line_is(c, NULL, "EOF in the middle of a line");
	OK(client_status(c) == JQ_EXIT_CONNECT,
	    "EOF mid-line: status %d, connection lost", client_status(c));
	client_close(c);
	close(peer);

	c = pair_client(&peer);
	close(peer);
	line_is(c, NULL, "EOF before any byte");
	OK(client_status(c) == JQ_EXIT_CONNECT, "EOF: status %d",
	    client_status(c));
	client_close(c);
}

/* More lines than the input buffer holds, from a writer that never waits. */
static void
test_many(void)
{
	struct client	*c;
	char		*all, *got, *cause = NULL;
	int		 peer, i, bad = -1;
	size_t		 n = 0;
	pid_t		 pid;

	all = xmalloc(50000 * 12 + 1);
	for (i = 0; i < 50000; i++)
		n += (size_t)sprintf(all + n, "L %07d%s\n", i, i % 3 ? "" : "\r");
	c = pair_client(&peer);
	pid = dribble(c, peer, all, n, n);
	for (i = 0; i < 50000 && bad < 0; i++) {
		got = client_line(c, &cause);
		if (got == NULL || strlen(got) != 9 || atoi(got + 2) != i)
			bad = i;
	}
	OK(bad < 0 && n > CLIENT_IN_SIZE,
	    "%zu bytes of lines (more than the buffer) come out whole and in "
	    "order", n);
	if (bad >= 0)
		printf("#   line %d: %s\n", bad, cause ? cause : "wrong text");
	free(cause);
	client_close(c);	/* (a writer still writing gets EPIPE) */
	OK(reaped(pid), "the writer ended");
	free(all);
	close(peer);
}

/* client_reply on line gives rc, and *rest or the cause and status. */
static void
reply_is(const char *line, int rc, const char *rest, int status,
    const char *cause_has)
{
	struct client	*c;
	char		*got_rest = NULL, *cause = NULL;
	int		 peer, r;

	c = pair_client(&peer);
	say(peer, line);
	shutdown(peer, SHUT_WR);
	r = client_reply(c, &got_rest, &cause);
	if (rc == 0)
		OK(r == 0 && got_rest != NULL && strcmp(got_rest, rest) == 0,
		    "reply \"%s\": OK, rest \"%s\" (got %d, \"%s\"%s%s)",
		    t_esc(line), rest, r, got_rest ? got_rest : "NULL",
		    cause ? "; " : "", cause ? cause : "");
	else
		OK(r == -1 && cause != NULL && strstr(cause, cause_has) != NULL &&
		    client_status(c) == status,
		    "reply \"%s\": status %d, \"%s\" (got %d, status %d, %s)",
		    t_esc(line), status, cause_has, r, client_status(c),
		    cause ? cause : "no cause");
	free(cause);
	client_close(c);
	close(peer);
}

/* client_reply on OK, ERR and other lines. */
static void
test_reply(void)
{
	struct client	*c;
	char		*cause = NULL, *line;
	int		 peer, r;

	reply_is("OK\n", 0, "", 0, NULL);
	reply_is("OK\r\n", 0, "", 0, NULL);
	reply_is("OK 7 size=3\n", 0, "7 size=3", 0, NULL);
	reply_is("OKAY\n", -1, NULL, JQ_EXIT_PROTOCOL,
	    "unexpected reply from peer: \"OKAY\"");
	reply_is("NOJOB finished\n", -1, NULL, JQ_EXIT_PROTOCOL,
	    "unexpected reply");
	reply_is("ERR " ERR_DONE " job 3 has a result\n", -1, NULL,
	    JQ_EXIT_REFUSED, "server refused: job 3 has a result (DONE)");
	reply_is("ERR " ERR_NOSUCHJOB " no job 9\n", -1, NULL, JQ_EXIT_REFUSED,
	    "(NOSUCHJOB)");
	reply_is("ERR " ERR_NOTHELD " x\n", -1, NULL, JQ_EXIT_REFUSED, "(NOTHELD)");
	reply_is("ERR " ERR_AUTH "\n", -1, NULL, JQ_EXIT_AUTH,
	    "no reason given (AUTH)");
	reply_is("ERR " ERR_TOOLONG " line too long\r\n", -1, NULL,
	    JQ_EXIT_PROTOCOL, "line too long (TOOLONG)");
	reply_is("ERR \n", -1, NULL, JQ_EXIT_PROTOCOL, "no reason given (?)");
	reply_is("ERR\n", -1, NULL, JQ_EXIT_PROTOCOL, "unexpected reply");
	reply_is("OK", -1, NULL, JQ_EXIT_CONNECT, "closed the connection");

	/* no rest wanted; and the request queued before is sent first */
	c = pair_client(&peer);
	say(peer, "OK\n");
	r = client_send(c, &cause, "TOUCH %d", 5) == 0 ?
	    client_reply(c, NULL, &cause) : -1;
	line = xcalloc(1, 16);
	OK(r == 0 && recv(peer, line, 15, MSG_DONTWAIT) == 8 &&
	    strcmp(line, "TOUCH 5\n") == 0 &&
	    client_buffered(c) == 0,
	    "a queued request goes out before the reply is read (sent \"%s\")",
	    t_esc(line));
	free(line);
	free(cause);
	client_close(c);
	close(peer);
}

/* Run the tests and print the plan. */
int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);	/* a reader waiting for bytes that never come */
	test_lines();
	test_split();
	test_limit();
	test_eof();
	test_many();
	test_reply();
	return t_done();
}
