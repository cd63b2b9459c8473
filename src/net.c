/*
 * net.c: addresses, listening sockets and connecting.
 *
 * Address syntax, the same for servers and clients:
 *   HOST  HOST:PORT  [V6ADDR]:PORT  [V6ADDR]  V6ADDR (two or more colons)
 *   :PORT (listen: every interface; connect: localhost)
 *   unix:PATH, or any argument holding a '/', for a UNIX socket.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

/* Check and copy a port string; port 0 only on the listening side. */
static int
net_set_port(struct net_addr *a, const char *port, int listening, char **cause)
{
	unsigned	 v;

	if (parse_uint(port, listening ? 0 : 1, 65535, &v) != 0) {
		*cause = xprintf("bad port \"%s\": want a number from %d to 65535",
		    port, listening ? 0 : 1);
		return -1;
	}
	snprintf(a->port, sizeof a->port, "%u", v);
	return 0;
}

/* Copy a host part of len bytes, checking its length. */
static int
net_set_host(struct net_addr *a, const char *host, size_t len, char **cause)
{
	if (len >= sizeof a->host) {
		*cause = xstrdup("host name too long");
		return -1;
	}
	memcpy(a->host, host, len);
	a->host[len] = '\0';
	return 0;
}

/* Parse an address for listening (listening 1) or connecting (0). */
int
net_parse_addr(const char *s, int listening, struct net_addr *a, char **cause)
{
	const char	*path, *colon, *close;
	size_t		 ncolons = 0;
	char		*why = NULL;

	memset(a, 0, sizeof *a);
	if (*s == '\0') {
		*cause = xstrdup("empty address");
		return -1;
	}
	path = strncmp(s, "unix:", 5) == 0 ? s + 5 : strchr(s, '/') ? s : NULL;
	if (path != NULL) {
		if (*path == '\0' || strlen(path) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path)) {
			*cause = xprintf("%s: UNIX socket path %s", s, *path ?
			    "longer than 107 bytes" : "is empty");
			return -1;
		}
		a->unix_path = 1;
		strcpy(a->host, path);
		return 0;
	}
	for (colon = s; *colon != '\0'; colon++)
		ncolons += *colon == ':';
	if (*s == '[') {
		if ((close = strchr(s, ']')) == NULL || close == s + 1) {
			*cause = xprintf("%s: bad IPv6 address, want [ADDR]:PORT", s);
			return -1;
		}
		if (net_set_host(a, s + 1, (size_t)(close - s - 1), cause) != 0)
			return -1;
		if (close[1] == '\0')
			strcpy(a->port, JQ_PORT_DEFAULT_STR);
		else if (close[1] != ':' || net_set_port(a, close + 2,
		    listening, &why) != 0)
			goto bad;
		return 0;
	}
	if (ncolons >= 2) {		/* a bare IPv6 literal */
		struct in6_addr	 in6;

		if (inet_pton(AF_INET6, s, &in6) != 1) {
			*cause = xprintf("%s: not an IPv6 address; write "
			    "[V6ADDR]:PORT or HOST:PORT", s);
			return -1;
		}
		if (net_set_host(a, s, strlen(s), cause) != 0)
			return -1;
		strcpy(a->port, JQ_PORT_DEFAULT_STR);
		return 0;
	}
	if ((colon = strchr(s, ':')) == NULL) {
		if (net_set_host(a, s, strlen(s), cause) != 0)
			return -1;
		strcpy(a->port, JQ_PORT_DEFAULT_STR);
		return 0;
	}
	if (net_set_host(a, s, (size_t)(colon - s), cause) != 0)
		return -1;
	if (net_set_port(a, colon + 1, listening, &why) != 0)
		goto bad;
	if (!listening && a->host[0] == '\0')
		strcpy(a->host, "localhost");
	return 0;
bad:
	*cause = xprintf("%s: %s", s, why != NULL ? why :
	    "want HOST:PORT, [V6ADDR]:PORT or unix:PATH");
	free(why);
	return -1;
}

/* Bind and listen on a UNIX socket path, replacing a stale socket. */
static int
net_listen_unix(const struct net_addr *a, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	mode_t			 old;
	int			 fd, probe, saved;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, a->host);
	if (lstat(a->host, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*cause = xprintf("unix:%s: exists and is not a socket",
			    a->host);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof sun) == 0) {
			close(probe);
			*cause = xprintf("unix:%s: a server is already listening there",
			    a->host);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(a->host);	/* stale: nobody listens */
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0) {
		*cause = xprintf("unix:%s: socket: %s", a->host, strerror(errno));
		return -1;
	}
	old = umask(0177);	/* owner-only socket */
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    listen(fd, 1024) != 0) {
		saved = errno;
		umask(old);
		close(fd);
		*cause = xprintf("unix:%s: %s", a->host, strerror(saved));
		return -1;
	}
	umask(old);
	return fd;
}

/* Return a new string naming a TCP or UNIX socket address. */
static char *
net_sockaddr_name(const struct sockaddr_storage *ss, socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
	char			 host[INET6_ADDRSTRLEN], *s;

	switch (ss->ss_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    host, sizeof host);
		return xprintf("%s:%u", host,
		    ntohs(((const struct sockaddr_in *)ss)->sin_port));
	case AF_INET6:
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
		    host, sizeof host);
		return xprintf("[%s]:%u", host,
		    ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
	case AF_UNIX:
		if (len <= offsetof(struct sockaddr_un, sun_path) ||
		    sun->sun_path[0] == '\0')
			return xstrdup("unix:");
		s = xprintf("unix:%.*s", (int)(len -
		    offsetof(struct sockaddr_un, sun_path)), sun->sun_path);
		s[strcspn(s, "")] = '\0';
		return s;
	}
	return xstrdup("?");
}

/*
 * May an address of this resolved list be left out?  Only when the host
 * lacks its family: no such socket family, or IPv6 switched off (then
 * binding an IPv6 address fails with EADDRNOTAVAIL).
 */
static int
net_family_missing(const struct addrinfo *ai, int error)
{
	return error == EAFNOSUPPORT || error == EPROTONOSUPPORT ||
	    (error == EADDRNOTAVAIL && ai->ai_family == AF_INET6);
}

/* Open, bind and listen on one resolved address; -1 with errno on failure. */
static int
net_listen_one(const struct addrinfo *ai)
{
	int	 fd, on = 1, saved;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 1024) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Listen on an address: append the listening fds to fds (at most max in all)
 * and update *nfds.  A TCP host name (or "" for every interface) may give
 * several sockets, and every one of them must bind: were 127.0.0.1:PORT
 * held by another program, serving [::]:PORT alone would send the clients
 * of localhost:PORT there.  Only a family the host lacks is left out.  On
 * failure no fd of this address stays open.
 */
int
net_listen(const struct net_addr *a, int *fds, size_t *nfds, size_t max,
    char **cause)
{
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_storage	 ss;
	size_t			 first = *nfds;
	int			 fd, rc, saved = 0;
	char			*name;

	if (a->unix_path) {
		if (*nfds >= max) {
			*cause = xstrdup("too many listening addresses");
			return -1;
		}
		if ((fd = net_listen_unix(a, cause)) < 0)
			return -1;
		fds[(*nfds)++] = fd;
		return 0;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
	rc = getaddrinfo(a->host[0] ? a->host : NULL, a->port, &hints, &res);
	if (rc != 0) {
		*cause = xprintf("%s: %s", a->host[0] ? a->host : "*",
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (*nfds >= max) {
			*cause = xstrdup("too many listening addresses");
			break;
		}
		if ((fd = net_listen_one(ai)) >= 0) {
			fds[(*nfds)++] = fd;
			continue;
		}
		saved = errno;
		if (net_family_missing(ai, saved))
			continue;
		memset(&ss, 0, sizeof ss);
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen < sizeof ss ?
		    ai->ai_addrlen : sizeof ss);
		name = net_sockaddr_name(&ss, ai->ai_addrlen);
		if (saved == EADDRINUSE)
			*cause = xprintf("%s: address in use (another program "
			    "listens there)", name);
		else
			*cause = xprintf("%s: %s", name, strerror(saved));
		free(name);
		break;
	}
	freeaddrinfo(res);
	if (ai == NULL && *nfds == first)
		*cause = xprintf("%s:%s: %s", a->host[0] ? a->host : "*",
		    a->port, strerror(saved ? saved : EADDRNOTAVAIL));
	if (ai != NULL || *nfds == first) {
		while (*nfds > first)	/* all of this address, or none */
			close(fds[--(*nfds)]);
		return -1;
	}
	return 0;
}

/*
 * Did a TCP connect reach itself?  Connecting again and again to a port of
 * the ephemeral range where nothing listens (a worker waiting for its
 * server) can be given that very port as its own and meet itself: a
 * "simultaneous open", which the kernel allows.  Then it also holds the
 * port the server wants.
 */
static int
net_self_connected(int fd)
{
	struct sockaddr_storage	 me, peer;
	socklen_t		 melen = sizeof me, peerlen = sizeof peer;

	if (getsockname(fd, (struct sockaddr *)&me, &melen) != 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &peerlen) != 0)
		return 0;
	return melen == peerlen && memcmp(&me, &peer, melen) == 0;
}

/*
 * Bound the connect and the handshake on fd: a server that is unreachable
 * (SYNs dropped) or accepts but never greets must not hang a client, which
 * would then never see its --reconnect run out or its signals.  The client
 * clears the bound once greeted (net_unbound).
 */
static void
net_bound(int fd)
{
	struct timeval	 tv = { NET_HANDSHAKE_S, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Lift net_bound's time limit from fd. */
void
net_unbound(int fd)
{
	struct timeval	 tv = { 0, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/*
 * Connect to a server address; return a blocking, close-on-exec fd whose
 * reads and writes time out after NET_HANDSHAKE_S (net_unbound lifts
 * that), or -1.
 */
int
net_connect(const char *s, char **cause)
{
	struct net_addr		 a;
	struct sockaddr_un	 sun;
	struct addrinfo		 hints, *res, *ai;
	int			 fd = -1, rc, saved = 0, on = 1;

	if (net_parse_addr(s, 0, &a, cause) != 0)
		return -1;
	if (a.unix_path) {
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		strcpy(sun.sun_path, a.host);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0)
			net_bound(fd);
		if (fd < 0 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			saved = errno;
			if (fd >= 0)
				close(fd);
			*cause = xprintf("cannot connect to unix:%s: %s", a.host,
			    strerror(saved));
			return -1;
		}
		return fd;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(a.host, a.port, &hints, &res)) != 0) {
		*cause = xprintf("cannot connect to %s: %s", s, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		net_bound(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			if (!net_self_connected(fd))
				break;
			errno = ECONNREFUSED;	/* no server there */
		}
		/* SO_SNDTIMEO ran out (Linux says EINPROGRESS) */
		saved = errno == EINPROGRESS ? ETIMEDOUT : errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*cause = xprintf("cannot connect to %s: %s", s, strerror(saved));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	return fd;
}

/* Remove the socket file of a UNIX listening address. */
void
net_unlink_unix(const struct net_addr *a)
{
	if (a->unix_path)
		unlink(a->host);
}

/* Return a new string naming the local (peer 0) or remote (peer 1) end of fd. */
char *
net_fd_name(int fd, int peer)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof ss;
	int			 rc;

	memset(&ss, 0, sizeof ss);
	rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) :
	    getsockname(fd, (struct sockaddr *)&ss, &len);
	if (rc != 0)
		return xstrdup("?");
	return net_sockaddr_name(&ss, len);
}

/* Whether the UNIX socket at path is the one of ss (the same file). */
static int
net_same_unix(const char *path, const struct sockaddr_storage *ss,
    socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
	char		 bound[sizeof sun->sun_path + 1];
	struct stat	 a, b;
	size_t		 n;

	if (len <= offsetof(struct sockaddr_un, sun_path))
		return 0;
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof sun->sun_path)
		n = sizeof sun->sun_path;
	memcpy(bound, sun->sun_path, n);
	bound[n] = '\0';
	if (strcmp(path, bound) == 0)
		return 1;
	return stat(path, &a) == 0 && stat(bound, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Whether a TCP socket bound to ss takes a connection to host (parsed
 * for connecting): an IPv4 or IPv6 literal it is bound to, or any when it
 * is bound to every interface; "localhost" when it is bound to every
 * interface or to a loopback address; any other name, which would need a
 * look-up, whatever the socket's address.
 */
static int
net_same_host(const char *host, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in  *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	struct in_addr	 v4;
	struct in6_addr	 v6;
	int		 any, loop;

	if (ss->ss_family == AF_INET) {
		any = sin->sin_addr.s_addr == htonl(INADDR_ANY);
		loop = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else {
		any = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
		loop = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	if (strcmp(host, "localhost") == 0)
		return any || loop;
	if (inet_pton(AF_INET, host, &v4) == 1) {
		if (ss->ss_family == AF_INET)
			return any || sin->sin_addr.s_addr == v4.s_addr;
		return any || (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    memcmp(&sin6->sin6_addr.s6_addr[12], &v4, 4) == 0);
	}
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return ss->ss_family == AF_INET6 && (any ||
		    memcmp(&sin6->sin6_addr, &v6, sizeof v6) == 0);
	return 1;
}

/*
 * Whether a client given address a (parsed for connecting) would reach
 * one of the n listening sockets fds, as far as can be told without a
 * name look-up: a UNIX path must be the socket file of one of them; a TCP
 * address must have the port of one of them and a host it takes (a host
 * name is compared by its port only).
 */
int
net_reaches(const struct net_addr *a, const int *fds, size_t n)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	unsigned		 port;
	size_t			 i;

	for (i = 0; i < n; i++) {
		len = sizeof ss;
		memset(&ss, 0, sizeof ss);
		if (getsockname(fds[i], (struct sockaddr *)&ss, &len) != 0)
			continue;
		if (a->unix_path) {
			if (ss.ss_family == AF_UNIX &&
			    net_same_unix(a->host, &ss, len))
				return 1;
			continue;
		}
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			continue;
		if (strtoul(a->port, NULL, 10) == port &&
		    net_same_host(a->host, &ss))
			return 1;
	}
	return 0;
}

/* Return the server to use: the argument, else $JQ_SERVER, else NULL. */
const char *
net_default_server(const char *arg)
{
	const char	*env;

	if (arg != NULL)
		return arg;
	if ((env = getenv("JQ_SERVER")) != NULL && *env != '\0')
		return env;
	return NULL;
}
