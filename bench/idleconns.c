/*
 * idleconns.c: hold many idle, authenticated connections to jq-serve
 * (issue 14, "ten thousand connections").  Built by bench/run into a temp
 * dir; not part of the installed tools.
 *
 *   idleconns HOST PORT N
 *	open N connections, read each greeting, say HELLO on each (jq-serve
 *	--no-auth), read each OK, then print "ready N" and hold them all
 *	until a signal ends the process.
 *
 * The soft descriptor limit is raised to the hard one; several processes
 * hold more connections than one may.  Every read times out after 60 s.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Print a message and exit 1. */
static void die(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("idleconns: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Read one line (at most len - 1 bytes, byte by byte) from fd into buf. */
static void
read_line(int fd, char *buf, size_t len)
{
	size_t	 n = 0;
	ssize_t	 r;

	while (n + 1 < len) {
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read: %s", r == 0 ? "connection closed" :
			    strerror(errno));
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
}

/* Connect to host:port; the socket's fd. */
static int
dial(const struct addrinfo *ai)
{
	struct timeval	 tv = { 60, 0 };
	int		 fd;

	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol)) < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		die("connect: %s", strerror(errno));
	return fd;
}

int
main(int argc, char **argv)
{
	static const char	 hello[] = "HELLO 2 name=idle\n";
	struct addrinfo		 hints, *ai;
	struct rlimit		 rl;
	char			 line[512];
	int			*fds;
	long			 n, i;

	if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0 || n > 1000000)
		die("usage: idleconns HOST PORT N");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
		die("cannot resolve %s:%s", argv[1], argv[2]);
	if ((fds = calloc((size_t)n, sizeof *fds)) == NULL)
		die("out of memory");
	for (i = 0; i < n; i++) {
		fds[i] = dial(ai);
		read_line(fds[i], line, sizeof line);
		if (strncmp(line, "JQ 2 ", 5) != 0)
			die("connection %ld greeted with '%s'", i, line);
		if (write(fds[i], hello, sizeof hello - 1) !=
		    (ssize_t)(sizeof hello - 1))
			die("write: %s", strerror(errno));
	}
	for (i = 0; i < n; i++) {
		read_line(fds[i], line, sizeof line);
		if (strncmp(line, "OK 2", 4) != 0)
			die("connection %ld: HELLO answered '%s'", i, line);
	}
	printf("ready %ld\n", n);
	fflush(stdout);
	for (;;)
		pause();
}
