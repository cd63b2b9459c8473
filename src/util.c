/*
 * util.c: small helpers shared by every tool.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jq.h"

/* Write all of buf to fd, retrying short writes and EINTR; 0 or -1. */
int
util_write_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Set close-on-exec on fd; 0 or -1. */
int
util_cloexec(int fd)
{
	int	 flags;

	if ((flags = fcntl(fd, F_GETFD)) < 0)
		return -1;
	return fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* Turn O_NONBLOCK on or off for fd; 0 or -1. */
int
util_nonblock(int fd, int on)
{
	int	 flags;

	if ((flags = fcntl(fd, F_GETFL)) < 0)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
}

/* Milliseconds on the monotonic clock. */
uint64_t
util_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Return a new string naming this worker: HOSTNAME:PID. */
char *
util_worker_name(void)
{
	char	 host[256];

	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	return xprintf("%s:%ld", host, (long)getpid());
}

/*
 * Write buf to path through a temporary file in the same directory and a
 * rename, so readers see the old file or the whole new one.
 */
int
util_atomic_write(const char *path, const void *buf, size_t len, char **cause)
{
	char	*tmp;
	int	 fd, saved;

	tmp = xprintf("%s.tmp-XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		*cause = xprintf("%s: %s", path, strerror(errno));
		free(tmp);
		return -1;
	}
	if (util_write_all(fd, buf, len) != 0 || fchmod(fd, 0644) != 0) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
	fail:
		unlink(tmp);
		*cause = xprintf("%s: %s", path, strerror(saved));
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

/* fsync a directory, so the names made or removed in it are durable. */
int
util_fsync_dir(const char *dir)
{
	int	 fd, rc, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/*
 * Report a usage error the standard way and exit with JQ_EXIT_USAGE: two
 * lines, both starting with the program's name like every other message.
 */
void
usage_error(const char *prog, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s: Try '%s --help' for more information.\n", prog,
	    prog);
	exit(JQ_EXIT_USAGE);
}
