/*
 * test_store.c: unit tests for store.c (a result appears whole or not at
 * all): open, write, commit, abort; the temporary file never takes the final
 * name on abort; a symbolic link at the final name or at a temporary name is
 * never followed; a result directory that is no longer the one checked at
 * start is refused.  Each test works in its own temporary directory.  Prints
 * TAP; exits 1 when any test fails.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"
#include "tap.h"

/* Write a whole file (or die: the test cannot go on without it). */
static void
put_file(const char *path, const char *text)
{
	int	 fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || util_write_all(fd, text, strlen(text)) != 0 ||
	    close(fd) != 0) {
		printf("Bail out! %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

/* The contents of a regular file (not through a link), or NULL. */
static char *
get_file(const char *path)
{
	char	 buf[256];
	ssize_t	 n;
	int	 fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

/* Whether path holds a regular file with exactly text in it. */
static int
file_is(const char *path, const char *text)
{
	char	*got = get_file(path);
	int	 same = got != NULL && strcmp(got, text) == 0;

	free(got);
	return same;
}

/* How many entries dir has, besides . and .. (-1 if it cannot be read). */
static int
entries(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*e;
	int		 n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* How many descriptors this process has open. */
static int
open_fds(void)
{
	return entries("/proc/self/fd") - 1;	/* less opendir's own */
}

/* The serial number in a temporary name ".jq-PID-SERIAL.tmp", or -1. */
static long
tmp_serial(const char *name)
{
	long		 pid;
	unsigned	 serial;

	if (sscanf(name, ".jq-%ld-%u.tmp", &pid, &serial) != 2 ||
	    pid != (long)getpid())
		return -1;
	return (long)serial;
}

/* Directory dir's dev and ino. */
static void
dir_id(const char *dir, dev_t *dev, ino_t *ino)
{
	struct stat	 sb;

	if (stat(dir, &sb) != 0) {
		printf("Bail out! %s: %s\n", dir, strerror(errno));
		exit(2);
	}
	*dev = sb.st_dev;
	*ino = sb.st_ino;
}

/* Open a store for result, write text, and return 0 or -1 (cause printed). */
static int
store_text(struct store *st, const char *result, dev_t dev, ino_t ino,
    const char *text)
{
	char	*cause = NULL;

	if (store_open(st, result, dev, ino, &cause) != 0 ||
	    store_write(st, text, strlen(text), &cause) != (ssize_t)strlen(text)) {
		printf("# store %s: %s\n", result, cause ? cause : "?");
		free(cause);
		return -1;
	}
	return 0;
}

/* open, write, commit, sync: the result appears whole under its name. */
static void
test_commit(void)
{
	char		*d = t_tmpdir("store"), *out = xprintf("%s/out", d);
	char		*res = xprintf("%s/r.bin", out), *tmp = NULL, *cause = NULL;
	char		*old = xprintf("%s/old-link", d);
	struct store	 st;
	struct stat	 sb, before;
	dev_t		 dev;
	ino_t		 ino;
	int		 fds = open_fds(), r;

	mkdir(out, 0755);
	dir_id(out, &dev, &ino);
	r = store_open(&st, res, dev, ino, &cause);
	OK(r == 0 && st.fd >= 0 && st.dirfd >= 0 && strcmp(st.final, "r.bin") == 0,
	    "store_open in a checked directory: fds open, final name r.bin (%s)",
	    cause ? cause : "no error");
	free(cause);
	cause = NULL;
	if (r != 0)
		goto out;
	tmp = xprintf("%s/%s", out, st.tmpname);
	OK(tmp_serial(st.tmpname) >= 0 && lstat(tmp, &sb) == 0 &&
	    S_ISREG(sb.st_mode) && sb.st_size == 0 && access(res, F_OK) != 0,
	    "the temporary file %s is there, empty; the final name is not",
	    st.tmpname);
	r = store_write(&st, "hello ", 6, &cause) == 6 &&
	    store_write(&st, "world", 5, &cause) == 5;
	OK(r && st.written == 11, "store_write: 6 + 5 bytes written "
	    "(written=%llu)", (unsigned long long)st.written);
	OK(access(res, F_OK) != 0, "nothing has the final name before the commit");
	r = store_commit_file(&st, &cause);
	OK(r == 0 && file_is(res, "hello world") && access(tmp, F_OK) != 0 &&
	    st.fd == -1, "store_commit_file: the final name holds the data, the "
	    "temporary name is gone (%s)", cause ? cause : "no error");
	free(cause);
	cause = NULL;
	OK(store_sync_dir(&st, &cause) == 0, "store_sync_dir (%s)",
	    cause ? cause : "no error");
	free(cause);
	cause = NULL;
	store_close(&st);
	OK(st.fd == -1 && st.dirfd == -1 && open_fds() == fds,
	    "store_close: no descriptor left open (%d before, %d after)", fds,
	    open_fds());

	/* a second result replaces the first whole: a new file, not an overwrite */
	if (link(res, old) != 0 || stat(res, &before) != 0)
		printf("# link %s: %s\n", res, strerror(errno));
	if (store_text(&st, res, dev, ino, "second") == 0 &&
	    store_commit_file(&st, &cause) == 0) {
		store_close(&st);
		OK(file_is(res, "second") && file_is(old, "hello world") &&
		    stat(res, &sb) == 0 && sb.st_ino != before.st_ino,
		    "a new result replaces the old by rename: the old file is "
		    "untouched under another link");
	} else
		OK(0, "a second result: %s", cause ? cause : "?");
	free(cause);
	cause = NULL;
	OK(entries(out) == 1, "the directory holds just r.bin (%d entries)",
	    entries(out));

	/* without sync (--no-sync) a result is stored all the same */
	store_sync = 0;
	r = store_text(&st, res, dev, ino, "nosync");
	OK(r == 0 && store_commit_file(&st, &cause) == 0 &&
	    store_sync_dir(&st, &cause) == 0 && file_is(res, "nosync"),
	    "with store_sync 0 the result is committed too");
	store_close(&st);
	store_sync = 1;
	free(cause);
	cause = NULL;
out:
	free(tmp);
	free(res);
	free(old);
	free(out);
	t_rmtree(d);
}

/* abort, and a failed commit, leave no temporary file and no final name. */
static void
test_abort(void)
{
	char		*d = t_tmpdir("store"), *out = xprintf("%s/out", d);
	char		*res = xprintf("%s/r.bin", out), *cause = NULL;
	struct store	 st;
	dev_t		 dev;
	ino_t		 ino;
	int		 fds = open_fds();

	mkdir(out, 0755);
	dir_id(out, &dev, &ino);
	if (store_text(&st, res, dev, ino, "partial") == 0) {
		errno = EIO;
		store_abort(&st);
		OK(errno == EIO, "store_abort keeps errno");
		OK(entries(out) == 0 && access(res, F_OK) != 0,
		    "abort: the temporary file is gone and no final name "
		    "appears (%d entries)", entries(out));
		OK(st.fd == -1 && st.dirfd == -1 && open_fds() == fds,
		    "abort closes both descriptors");
		store_abort(&st);
		store_close(&st);
		OK(open_fds() == fds, "a second abort, and a close, do no harm");
	} else
		OK(0, "store_open for abort");

	put_file(res, "earlier");
	if (store_text(&st, res, dev, ino, "later, aborted") == 0) {
		store_abort(&st);
		OK(file_is(res, "earlier") && entries(out) == 1,
		    "abort leaves an earlier result as it was");
	} else
		OK(0, "store_open over an earlier result");

	/* a commit whose rename fails removes its temporary file */
	unlink(res);
	mkdir(res, 0755);
	{
		char *inner = xprintf("%s/keep", res);
		put_file(inner, "x");
		free(inner);
	}
	if (store_text(&st, res, dev, ino, "cannot land") == 0) {
		int r = store_commit_file(&st, &cause);
		OK(r == -1 && cause != NULL && strstr(cause, "rename") != NULL &&
		    entries(out) == 1 && entries(res) == 1 && st.fd == -1 &&
		    st.dirfd == -1 && open_fds() == fds,
		    "a commit whose rename fails (a directory is in the way) "
		    "cleans up and says so (%s)", cause ? cause : "no error");
	} else
		OK(0, "store_open before a failing rename");
	free(cause);
	cause = NULL;

	/* a directory job's: a tree result of an earlier run is replaced */
	if (store_text(&st, res, dev, ino, "over the tree") == 0) {
		st.over_tree = 1;
		int r = store_commit_file(&st, &cause);
		store_close(&st);
		OK(r == 0 && file_is(res, "over the tree") && entries(out) == 1 &&
		    open_fds() == fds, "a directory job's result replaces a "
		    "tree result in one step, the tree removed (%s)",
		    cause ? cause : "no error");
	} else
		OK(0, "store_open over a tree result");
	free(cause);
	free(res);
	free(out);
	t_rmtree(d);
}

/* Symbolic links at the final name or at temporary names are never followed. */
static void
test_links(void)
{
	char		*d = t_tmpdir("store"), *out = xprintf("%s/out", d);
	char		*res = xprintf("%s/r.bin", out), *cause = NULL;
	char		*victim = xprintf("%s/victim", d);
	char		*ghost = xprintf("%s/ghost", d), *name;
	struct store	 st;
	struct stat	 sb;
	dev_t		 dev;
	ino_t		 ino;
	long		 s;
	int		 i, r, fds = open_fds(), planted = 1;

	mkdir(out, 0755);
	dir_id(out, &dev, &ino);
	put_file(victim, "precious");

	/* the final name is a link to a file outside: the link is replaced */
	if (symlink(victim, res) != 0)
		printf("# symlink: %s\n", strerror(errno));
	r = store_text(&st, res, dev, ino, "result");
	OK(r == 0 && store_commit_file(&st, &cause) == 0 &&
	    lstat(res, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    file_is(res, "result") && file_is(victim, "precious"),
	    "a symbolic link at the final name is replaced, its target untouched");
	store_close(&st);
	free(cause);
	cause = NULL;

	/* a dangling link at the final name: its target is never created */
	unlink(res);
	if (symlink(ghost, res) != 0)
		printf("# symlink: %s\n", strerror(errno));
	r = store_text(&st, res, dev, ino, "result");
	OK(r == 0 && store_commit_file(&st, &cause) == 0 &&
	    access(ghost, F_OK) != 0 && file_is(res, "result"),
	    "a dangling link at the final name is replaced; its target is not "
	    "created");
	store_close(&st);
	free(cause);
	cause = NULL;

	/* links planted at the next temporary names are skipped, not followed */
	if (store_open(&st, res, dev, ino, &cause) != 0) {
		OK(0, "store_open: %s", cause);
		goto out;
	}
	s = tmp_serial(st.tmpname);
	store_abort(&st);
	for (i = 1; i <= 2; i++) {
		name = xprintf("%s/.jq-%ld-%ld.tmp", out, (long)getpid(), s + i);
		planted &= symlink(ghost, name) == 0;
		free(name);
	}
	r = store_text(&st, res, dev, ino, "third");
	OK(s >= 0 && planted && r == 0 && tmp_serial(st.tmpname) == s + 3,
	    "links at the next two temporary names are passed over (serial %ld, "
	    "then %ld)", s, r == 0 ? tmp_serial(st.tmpname) : -1);
	OK(r == 0 && store_commit_file(&st, &cause) == 0 &&
	    access(ghost, F_OK) != 0 && file_is(res, "third") &&
	    entries(out) == 3, "the result is stored; the links' target is never "
	    "created (%d entries)", entries(out));
	store_close(&st);
	free(cause);
	cause = NULL;

	/* when every try meets a link, store_open gives up cleanly */
	s = -1;
	if (store_open(&st, res, dev, ino, &cause) == 0) {
		s = tmp_serial(st.tmpname);
		store_abort(&st);
	}
	for (i = 1; i <= 100; i++) {
		name = xprintf("%s/.jq-%ld-%ld.tmp", out, (long)getpid(), s + i);
		planted &= symlink(ghost, name) == 0;
		free(name);
	}
	free(cause);
	cause = NULL;
	r = store_open(&st, res, dev, ino, &cause);
	OK(s >= 0 && planted && r == -1 && cause != NULL &&
	    strstr(cause, strerror(EEXIST)) != NULL && access(ghost, F_OK) != 0 &&
	    open_fds() == fds,
	    "100 taken temporary names: store_open fails, no descriptor left "
	    "(%s)", cause ? cause : "no error");
	free(cause);
out:
	free(victim);
	free(ghost);
	free(res);
	free(out);
	t_rmtree(d);
}

/* A result directory must still be the one recorded (dev, ino). */
static void
test_dir_identity(void)
{
	char		*d = t_tmpdir("store"), *out = xprintf("%s/out", d);
	char		*res = xprintf("%s/r.bin", out), *cause = NULL;
	char		*moved = xprintf("%s/moved", d);
	char		*other = xprintf("%s/other", d);
	struct store	 st;
	dev_t		 dev;
	ino_t		 ino;
	int		 r, fds = open_fds();

	mkdir(out, 0755);
	mkdir(other, 0755);
	dir_id(out, &dev, &ino);

	r = store_open(&st, res, dev, ino + 1, &cause);
	OK(r == -1 && cause != NULL && strstr(cause, "no longer the directory") &&
	    entries(out) == 0 && open_fds() == fds,
	    "a directory that is not the one recorded is refused (%s)",
	    cause ? cause : "no error");
	free(cause);
	cause = NULL;

	/* the directory replaced by a new one under the same name */
	if (rename(out, moved) != 0 || mkdir(out, 0755) != 0)
		printf("# rename: %s\n", strerror(errno));
	r = store_open(&st, res, dev, ino, &cause);
	OK(r == -1 && cause != NULL && strstr(cause, out) != NULL &&
	    entries(out) == 0 && entries(moved) == 0 && open_fds() == fds,
	    "a directory replaced by another of the same name is refused, nothing "
	    "written in either (%s)", cause ? cause : "no error");
	free(cause);
	cause = NULL;

	/* ... or by a symbolic link to another directory */
	rmdir(out);
	if (symlink(other, out) != 0)
		printf("# symlink: %s\n", strerror(errno));
	r = store_open(&st, res, dev, ino, &cause);
	OK(r == -1 && cause != NULL && entries(other) == 0 && open_fds() == fds,
	    "a directory swapped for a link to another is refused (%s)",
	    cause ? cause : "no error");
	free(cause);
	cause = NULL;

	/* a link back to the very directory recorded is that directory */
	unlink(out);
	if (symlink(moved, out) != 0)
		printf("# symlink: %s\n", strerror(errno));
	r = store_text(&st, res, dev, ino, "same dir");
	OK(r == 0 && store_commit_file(&st, &cause) == 0 &&
	    entries(moved) == 1, "a link to the recorded directory itself is "
	    "accepted: dev and ino are what count");
	store_close(&st);
	free(cause);
	cause = NULL;

	/* a directory that is gone */
	unlink(out);
	r = store_open(&st, res, dev, ino, &cause);
	OK(r == -1 && cause != NULL && strstr(cause, strerror(ENOENT)) &&
	    open_fds() == fds, "a missing directory: -1 and why (%s)",
	    cause ? cause : "no error");
	free(cause);
	free(res);
	free(out);
	free(moved);
	free(other);
	t_rmtree(d);
}

/* A result name without a directory goes to the current one. */
static void
test_relative(void)
{
	char		*d = t_tmpdir("store"), *cwd = getcwd(NULL, 0);
	char		*cause = NULL;
	struct store	 st;
	dev_t		 dev;
	ino_t		 ino;
	int		 r = -1;

	dir_id(d, &dev, &ino);
	if (cwd != NULL && chdir(d) == 0) {
		r = store_text(&st, "plain", dev, ino, "here");
		r = r == 0 ? store_commit_file(&st, &cause) : r;
		store_close(&st);
		if (chdir(cwd) != 0)
			printf("# chdir back: %s\n", strerror(errno));
	}
	OK(r == 0 && strcmp(st.final, "plain") == 0 &&
	    entries(d) == 1, "a result name without a directory is stored in "
	    "the current one (%s)", cause ? cause : "no error");
	free(cause);
	free(cwd);
	t_rmtree(d);
}

/* A large result: writeback started along the way, committed whole. */
static void
test_large(void)
{
	char		*d = t_tmpdir("store"), *res = xprintf("%s/big", d);
	char		*cause = NULL, *buf = xcalloc(1, 1 << 20);
	struct store	 st;
	struct stat	 sb;
	dev_t		 dev;
	ino_t		 ino;
	int		 i, r;

	dir_id(d, &dev, &ino);
	r = store_open(&st, res, dev, ino, &cause);
	/* writeback starts once 256 KiB (STORE_SYNC_STEP) wait for it */
	for (i = 0; i < 3 && r == 0; i++)
		if (store_write(&st, buf, 100 << 10, &cause) != 100 << 10)
			r = -1;
	OK(r == 0 && st.written == 300U << 10 && st.synced == 300U << 10,
	    "300 KiB written in 100 KiB writes, writeback started at 300 KiB "
	    "(synced=%llu)", (unsigned long long)st.synced);
	if (r == 0 && store_write(&st, buf, 100 << 10, &cause) != 100 << 10)
		r = -1;
	OK(r == 0 && st.synced == 300U << 10, "100 KiB more: no writeback yet "
	    "(synced=%llu)", (unsigned long long)st.synced);
	for (i = 0; i < 9 && r == 0; i++)
		if (store_write(&st, buf, 1 << 20, &cause) != 1 << 20)
			r = -1;
	OK(r == 0 && st.written == (9U << 20) + (400U << 10) &&
	    st.synced == st.written, "9 MiB more in 1 MiB writes: writeback "
	    "started after each (synced=%llu)", (unsigned long long)st.synced);
	OK(r == 0 && store_commit_file(&st, &cause) == 0 &&
	    stat(res, &sb) == 0 && sb.st_size == (9 << 20) + (400 << 10),
	    "9.4 MiB committed whole (%s)", cause ? cause : "no error");
	store_close(&st);
	free(cause);
	cause = NULL;
	/* a lazy store (an archive entry's spool file) is left to the kernel */
	r = store_open(&st, res, dev, ino, &cause);
	st.lazy = 1;
	for (i = 0; i < 2 && r == 0; i++)
		if (store_write(&st, buf, 1 << 20, &cause) != 1 << 20)
			r = -1;
	OK(r == 0 && st.written == 2U << 20 && st.synced == 0,
	    "a lazy store: 2 MiB written, no writeback started (synced=%llu)",
	    (unsigned long long)st.synced);
	store_abort(&st);
	free(cause);
	free(buf);
	free(res);
	t_rmtree(d);
}

/* Run the tests and print the plan. */
int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_commit();
	test_abort();
	test_links();
	test_dir_identity();
	test_relative();
	test_large();
	return t_done();
}
