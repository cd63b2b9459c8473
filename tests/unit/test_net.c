/*
 * test_net.c: unit tests for net.c (net_parse_addr, and net_listen,
 * net_connect, net_fd_name on 127.0.0.1 and UNIX sockets).  Prints TAP; exits 1
 * when any test fails.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"
#include "tap.h"


/* s parses (listening or not) as a TCP address host:port. */
static void
addr_tcp(const char *s, int listening, const char *host, const char *port)
{
	struct net_addr	 a;
	char		*cause = NULL;
	int		 r = net_parse_addr(s, listening, &a, &cause);

	OK(r == 0 && !a.unix_path && strcmp(a.host, host) == 0 && strcmp(a.port, port) == 0,
	    "%s \"%s\" -> host \"%s\" port %s (got r=%d unix=%d host \"%s\" port \"%s\"%s%s)",
	    listening ? "listen" : "connect", t_esc(s), host, port, r,
	    r == 0 ? a.unix_path : -1, r == 0 ? a.host : "", r == 0 ? a.port : "",
	    cause ? " cause=" : "", cause ? cause : "");
	free(cause);
}

/* s parses as UNIX socket path on both sides. */
static void
addr_unix(const char *s, const char *path)
{
	struct net_addr	 a;
	char		*cause = NULL;
	int		 side, r;

	for (side = 0; side <= 1; side++) {
		r = net_parse_addr(s, side, &a, &cause);
		OK(r == 0 && a.unix_path && strcmp(a.host, path) == 0,
		    "%s \"%s\" -> unix path \"%s\" (got r=%d unix=%d host \"%s\"%s%s)",
		    side ? "listen" : "connect", t_esc(s), t_esc(path), r,
		    r == 0 ? a.unix_path : -1, r == 0 ? t_esc(a.host) : "",
		    cause ? " cause=" : "", cause ? cause : "");
		free(cause);
		cause = NULL;
	}
}

/* s is refused on the given side (2: both), with a cause naming the problem. */
static void
addr_bad(const char *s, int sides)
{
	struct net_addr	 a;
	char		*cause;
	int		 side, r;

	for (side = 0; side <= 1; side++) {
		if (sides != 2 && sides != side)
			continue;
		cause = NULL;
		r = net_parse_addr(s, side, &a, &cause);
		OK(r == -1 && cause != NULL && *cause != '\0',
		    "%s \"%s\" refused (got r=%d cause=%s)", side ? "listen" : "connect",
		    t_esc(s), r, cause ? cause : "(null)");
		free(cause);
	}
}

static void
test_parse_addr(void)
{
	char	 buf[6000];

	addr_tcp("host", 0, "host", "7117");
	addr_tcp("host", 1, "host", "7117");
	addr_tcp("host:1", 0, "host", "1");
	addr_tcp("host:1", 1, "host", "1");
	addr_tcp("127.0.0.1:65535", 0, "127.0.0.1", "65535");
	addr_tcp("h:007", 0, "h", "7");
	addr_tcp("[::1]:2", 0, "::1", "2");
	addr_tcp("[::1]:2", 1, "::1", "2");
	addr_tcp("[::1]", 0, "::1", "7117");
	addr_tcp("[::1]", 1, "::1", "7117");
	addr_tcp("::1", 0, "::1", "7117");
	addr_tcp("::1", 1, "::1", "7117");
	addr_tcp("fe80::1:2", 0, "fe80::1:2", "7117");
	addr_tcp("[fe80::1%lo]:9", 0, "fe80::1%lo", "9");
	addr_tcp(":3", 1, "", "3");		/* listen: every interface */
	addr_tcp(":3", 0, "localhost", "3");	/* connect: this machine */
	addr_tcp(":0", 1, "", "0");		/* listen: ephemeral port */
	addr_tcp("h:0", 1, "h", "0");
	addr_tcp("[::1]:0", 1, "::1", "0");
	addr_tcp("localhost", 0, "localhost", "7117");

	addr_unix("unix:/p", "/p");
	addr_unix("unix:rel", "rel");
	addr_unix("unix:a:b", "a:b");
	addr_unix("./rel/sock", "./rel/sock");
	addr_unix("a/b", "a/b");
	addr_unix("/tmp/x:1", "/tmp/x:1");
	addr_unix("unix:/tmp/sp ace", "/tmp/sp ace");
	memset(buf, 'p', 107);
	memcpy(buf, "/", 1);
	buf[107] = '\0';
	addr_unix(buf, buf);			/* 107 bytes + NUL fill sun_path */

	addr_bad("", 2);
	addr_bad("h:0", 0);			/* port 0 only for listening */
	addr_bad(":0", 0);
	addr_bad("[::1]:0", 0);
	addr_bad("h:70000", 2);
	addr_bad("h:65536", 2);
	addr_bad("h:99999999999999999999999", 2);
	addr_bad("h:x", 2);
	addr_bad("h:1x", 2);
	addr_bad("h:-1", 2);
	addr_bad("h:+1", 2);
	addr_bad("h: 1", 2);
	addr_bad("h:", 2);
	addr_bad(":", 2);
	addr_bad("[::1", 2);
	addr_bad("[", 2);
	addr_bad("[]", 2);
	addr_bad("[]:1", 2);
	addr_bad("[::1]:", 2);
	addr_bad("[::1]x", 2);
	addr_bad("[::1]:x", 2);
	addr_bad("[::1]:70000", 2);
	addr_bad("unix:", 2);
	memset(buf, 'p', 108);
	memcpy(buf, "/", 1);
	buf[108] = '\0';
	addr_bad(buf, 2);			/* no room for the NUL */
	memmove(buf + 5, buf, 109);
	memcpy(buf, "unix:", 5);
	addr_bad(buf, 2);
	memset(buf, 'h', 5000);
	strcpy(buf + 5000, ":1");
	addr_bad(buf, 2);			/* host longer than struct net_addr holds */
}

/* Listen on a, connect to the name it reports, and check both ends agree. */
static void
test_sockets(void)
{
	struct net_addr	 a;
	struct stat	 st;
	char		*cause = NULL, *name, *peer, dir[] = "/tmp/jqnet.XXXXXX", path[64],
			 addr[96];
	int		 fds[8], c, s, r, fd;
	size_t		 nfds = 0;

	/* TCP on 127.0.0.1, ephemeral port. */
	r = net_parse_addr("127.0.0.1:0", 1, &a, &cause);
	r = r == 0 ? net_listen(&a, fds, &nfds, 8, &cause) : r;
	OK(r == 0 && nfds == 1, "net_listen 127.0.0.1:0 (%s)", cause ? cause : "ok");
	free(cause);
	cause = NULL;
	if (r != 0 || nfds != 1)
		return;
	name = net_fd_name(fds[0], 0);
	OK(strncmp(name, "127.0.0.1:", 10) == 0 && strcmp(name, "127.0.0.1:0") != 0,
	    "net_fd_name of the listener is 127.0.0.1:PORT (got %s)", name);
	c = net_connect(name, &cause);
	OK(c >= 0, "net_connect %s (%s)", name, cause ? cause : "ok");
	free(cause);
	cause = NULL;
	if (c >= 0) {
		OK(fcntl(c, F_GETFD) & FD_CLOEXEC, "connected fd is close-on-exec");
		OK(!(fcntl(c, F_GETFL) & O_NONBLOCK), "connected fd is blocking");
		s = accept(fds[0], NULL, NULL);
		peer = net_fd_name(c, 0);
		if (s >= 0) {
			char *p2 = net_fd_name(s, 1);
			OK(strcmp(peer, p2) == 0, "net_fd_name: peer of the accepted end = "
			    "local end of the client (%s, %s)", peer, p2);
			free(p2);
			close(s);
		} else
			OK(0, "accept: %s", strerror(errno));
		free(peer);
		close(c);
	}
	/* The port is in use now: a second listener on it must fail cleanly. */
	r = net_parse_addr(name, 1, &a, &cause);
	r = r == 0 ? net_listen(&a, fds, &nfds, 8, &cause) : r;
	OK(r == -1 && cause != NULL && nfds == 1, "second net_listen on %s refused (%s)",
	    name, cause ? cause : "no cause");
	free(cause);
	cause = NULL;
	close(fds[0]);
	nfds = 0;
	/* Nobody listens any more. */
	c = net_connect(name, &cause);
	OK(c == -1 && cause != NULL, "net_connect to a closed port fails (%s)",
	    cause ? cause : "no cause");
	if (c >= 0)
		close(c);
	free(cause);
	cause = NULL;
	free(name);
	c = net_connect("h:x", &cause);
	OK(c == -1 && cause != NULL, "net_connect to a bad address fails (%s)",
	    cause ? cause : "no cause");
	free(cause);
	cause = NULL;

	/* UNIX sockets: owner-only, stale ones replaced, live ones and files kept. */
	if (mkdtemp(dir) == NULL) {
		OK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/s", dir);
	snprintf(addr, sizeof addr, "unix:%s", path);
	r = net_parse_addr(addr, 1, &a, &cause);
	r = r == 0 ? net_listen(&a, fds, &nfds, 8, &cause) : r;
	OK(r == 0 && nfds == 1, "net_listen %s (%s)", addr, cause ? cause : "ok");
	free(cause);
	cause = NULL;
	if (r == 0 && nfds == 1) {
		int	 sr;

		/* stat first: OK()'s arguments are evaluated in no set order */
		memset(&st, 0, sizeof st);
		sr = stat(path, &st);
		OK(sr == 0 && S_ISSOCK(st.st_mode) &&
		    (st.st_mode & 077) == 0, "UNIX socket exists with mode 0%o",
		    (unsigned)(st.st_mode & 0777));
		name = net_fd_name(fds[0], 0);
		OK(strcmp(name, addr) == 0, "net_fd_name of the UNIX listener is %s (got %s)",
		    addr, name);
		free(name);
		c = net_connect(path, &cause);	/* a path with '/' is a UNIX address */
		OK(c >= 0, "net_connect %s (%s)", path, cause ? cause : "ok");
		free(cause);
		cause = NULL;
		if (c >= 0)
			close(c);
		/* A live server is not replaced. */
		r = net_listen(&a, fds, &nfds, 8, &cause);
		OK(r == -1 && nfds == 1 && stat(path, &st) == 0,
		    "net_listen on a live UNIX socket refused (%s)", cause ? cause : "no cause");
		free(cause);
		cause = NULL;
		close(fds[0]);
		nfds = 0;
		/* A stale one (nobody listens) is. */
		r = net_listen(&a, fds, &nfds, 8, &cause);
		OK(r == 0 && nfds == 1, "net_listen replaces a stale UNIX socket (%s)",
		    cause ? cause : "ok");
		free(cause);
		cause = NULL;
		if (r == 0 && nfds == 1)
			close(fds[0]);
		nfds = 0;
		net_unlink_unix(&a);
		OK(lstat(path, &st) == -1 && errno == ENOENT, "net_unlink_unix removes the socket");
		c = net_connect(addr, &cause);
		OK(c == -1 && cause != NULL, "net_connect to a missing UNIX socket fails");
		free(cause);
		cause = NULL;
	}
	/* A regular file is never removed to make room for a socket. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0) {
		(void)!write(fd, "keep", 4);
		close(fd);
	}
	r = net_listen(&a, fds, &nfds, 8, &cause);
	OK(r == -1 && nfds == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == 4, "net_listen refuses to replace a regular file (%s)",
	    cause ? cause : "no cause");
	free(cause);
	if (r == 0)
		close(fds[0]);
	unlink(path);
	rmdir(dir);
}

static void
test_default_server(void)
{
	const char	*s;

	unsetenv("JQ_SERVER");
	OK(net_default_server(NULL) == NULL, "no argument, no JQ_SERVER: NULL");
	OK((s = net_default_server("a:1")) && strcmp(s, "a:1") == 0, "argument wins");
	setenv("JQ_SERVER", "env:2", 1);
	OK((s = net_default_server(NULL)) && strcmp(s, "env:2") == 0, "JQ_SERVER used");
	OK((s = net_default_server("a:1")) && strcmp(s, "a:1") == 0,
	    "argument wins over JQ_SERVER");
	setenv("JQ_SERVER", "", 1);
	OK(net_default_server(NULL) == NULL, "empty JQ_SERVER counts as unset");
	unsetenv("JQ_SERVER");
}

int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_parse_addr();
	test_sockets();
	test_default_server();
	return t_done();
}
