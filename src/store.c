/*
 * store.c: writing a result so that it appears whole or not at all.
 *
 * The data goes to a temporary file in the result's own directory, opened
 * relative to a directory fd with O_NOFOLLOW and O_EXCL.  Commit is:
 * fdatasync the file, rename it over the final name, fsync the directory
 * (commit.c does this off the event loop).  Only then is the worker told
 * OK (with --early-ok a small result's OK comes earlier, once it is in the
 * journal: commit.c), and only a synced file is ever renamed.  Writeback
 * is started every STORE_SYNC_STEP bytes while the rest is still
 * arriving, so that the final fdatasync, which holds up the worker's OK,
 * finds most of the data on its way to the disk already, for a 1 MiB
 * result as for a 1 GiB one; a file that is never synced (st->lazy: an
 * archive entry's spool file) is left to the kernel.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define STORE_SYNC_STEP	(256U << 10)

static unsigned	store_serial;
static long	store_pid;	/* temporary names; asked once, not per result */
int		store_sync = 1;

/*
 * Open the result's directory and a fresh temporary file in it.  The
 * directory must still be the one checked at start (dev, ino): a directory
 * swapped for another, or for a symbolic link to one, is refused, so that
 * nothing is ever written outside the places the operator named.
 */
int
store_open(struct store *st, const char *result, dev_t dev, ino_t ino,
    char **cause)
{
	const char	*slash = strrchr(result, '/');
	struct stat	 sb;
	char		*dir;
	int		 tries;

	memset(st, 0, sizeof *st);
	st->fd = -1;
	dir = slash == NULL ? xstrdup(".") : slash == result ? xstrdup("/") :
	    xstrndup(result, (size_t)(slash - result));
	st->final = slash == NULL ? result : slash + 1;
	st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dirfd < 0) {
		*cause = xprintf("%s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	if (fstat(st->dirfd, &sb) != 0 || sb.st_dev != dev ||
	    sb.st_ino != ino) {
		*cause = xprintf("%s is no longer the directory checked at "
		    "start (replaced, or a link swapped in); nothing is "
		    "written there", dir);
		free(dir);
		close(st->dirfd);
		st->dirfd = -1;
		return -1;
	}
	if (store_pid == 0)
		store_pid = (long)getpid();
	for (tries = 0; tries < 100; tries++) {
		snprintf(st->tmpname, sizeof st->tmpname, ".jq-%ld-%u.tmp",
		    store_pid, store_serial++);
		st->fd = openat(st->dirfd, st->tmpname, O_RDWR | O_CREAT |
		    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (st->fd >= 0 || errno != EEXIST)
			break;
	}
	if (st->fd < 0) {
		*cause = xprintf("%s/%s: %s", dir, st->tmpname, strerror(errno));
		free(dir);
		close(st->dirfd);
		return -1;
	}
	free(dir);
	return 0;
}

/* Write len bytes; returns len, or -1 with *cause (ENOSPC, EIO...). */
ssize_t
store_write(struct store *st, const void *buf, size_t len, char **cause)
{
	if (util_write_all(st->fd, buf, len) != 0) {
		*cause = xprintf("writing %s: %s", st->final, strerror(errno));
		return -1;
	}
	st->written += len;
	if (!st->lazy && store_sync &&
	    st->written - st->synced >= STORE_SYNC_STEP) {
		sync_file_range(st->fd, (off_t)st->synced,
		    (off_t)(st->written - st->synced), SYNC_FILE_RANGE_WRITE);
		st->synced = st->written;
	}
	return (ssize_t)len;
}

/*
 * Make the file durable and give it its final name: fdatasync (unless the
 * caller did: st->datasynced), close,
 * rename (for a directory job, over a tree result of an earlier run: swapped
 * in one step, the tree removed; any other directory there fails it).  The directory stays open for store_sync_dir.  On failure the
 * temporary file is removed.
 */
int
store_commit_file(struct store *st, char **cause)
{
	const char	*what = "fdatasync";
	char		*why = NULL;

	if (store_sync && !st->datasynced && fdatasync(st->fd) != 0)
		goto fail;
	what = "close";
	if (close(st->fd) != 0) {
		st->fd = -1;
		goto fail;
	}
	st->fd = -1;
	what = "rename";
	if (renameat(st->dirfd, st->tmpname, st->dirfd, st->final) != 0) {
		/* a tree result of an earlier run: swapped out, then removed */
		if (errno != EISDIR || !st->over_tree || renameat2(st->dirfd, st->tmpname,
		    st->dirfd, st->final, RENAME_EXCHANGE) != 0)
			goto fail;
		if (arch_remove(st->dirfd, st->tmpname, &why) != 0)
			free(why);	/* the file is in place; a leftover */
	}
	return 0;
fail:
	*cause = xprintf("%s: %s: %s", st->final, what, strerror(errno));
	store_abort(st);
	return -1;
}

/*
 * A tree result (PUT kind=tree): the temporary file holds its tar stream.
 * Unpack it safely (arch.c, with lim) into a temporary directory beside
 * the final name, make all of it durable (syncfs: every file and directory
 * of the tree, at once), then rename it into place; an old result of that
 * name, file or tree, is swapped out in one step (RENAME_EXCHANGE) and
 * removed, so a reader sees the old result or the new one, never a part.
 * The tar file is removed whatever happens.  Returns 0; -1 with *cause on
 * an I/O error; -2 with *cause when the tree is refused (unsafe, or past a
 * limit): nothing of it remains.
 */
int
store_commit_tree(struct store *st, const struct arch_limits *lim,
    char **cause)
{
	char		 dir[sizeof st->tmpname + 8], *why = NULL;
	const char	*what = "mkdir";
	int		 dfd = -1, rc = -1;

	snprintf(dir, sizeof dir, "%.*s.tree", (int)(strlen(st->tmpname) - 4),
	    st->tmpname);
	if (mkdirat(st->dirfd, dir, 0755) != 0)
		goto fail;
	what = "open";
	if ((dfd = openat(st->dirfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		goto fail;
	what = "lseek";
	if (lseek(st->fd, 0, SEEK_SET) != 0)
		goto fail;
	if (arch_unpack(st->fd, dfd, lim, &why) != 0) {
		*cause = xprintf("the tree is refused: %s", why);
		free(why);
		rc = -2;
		goto out;
	}
	what = "syncfs";
	if (store_sync && syncfs(dfd) != 0)
		goto fail;
	what = "rename";
	if (renameat2(st->dirfd, dir, st->dirfd, st->final,
	    RENAME_NOREPLACE) != 0) {
		if (errno != EEXIST || renameat2(st->dirfd, dir, st->dirfd,
		    st->final, RENAME_EXCHANGE) != 0)
			goto fail;
		/* the old result is now at dir: it goes below */
	}
	close(dfd);
	if (arch_remove(st->dirfd, dir, &why) != 0) {
		/* the new tree is in place; only a leftover stays */
		free(why);
	}
	close(st->fd);
	st->fd = -1;
	unlinkat(st->dirfd, st->tmpname, 0);
	return 0;
fail:
	*cause = xprintf("%s: %s of its tree: %s", st->final, what,
	    strerror(errno));
out:
	if (dfd != -1)
		close(dfd);
	if (arch_remove(st->dirfd, dir, &why) != 0)
		free(why);
	store_abort(st);
	return rc;
}

/* fsync the result's directory, so its new name survives a crash. */
int
store_sync_dir(struct store *st, char **cause)
{
	if (store_sync && fsync(st->dirfd) != 0) {
		/* the rename happened; only its durability is in doubt */
		*cause = xprintf("%s: fsync of its directory: %s", st->final,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Close what a committed (or failed) store still holds. */
void
store_close(struct store *st)
{
	if (st->fd >= 0)
		close(st->fd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	st->fd = st->dirfd = -1;
}

/* Throw the temporary file away. */
void
store_abort(struct store *st)
{
	int	 saved = errno;

	if (st->fd >= 0)
		close(st->fd);
	if (st->dirfd >= 0) {
		unlinkat(st->dirfd, st->tmpname, 0);
		close(st->dirfd);
	}
	st->fd = st->dirfd = -1;
	errno = saved;
}
