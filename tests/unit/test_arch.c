/*
 * test_arch.c: unit tests for arch.c (trees as tar streams): a tree packed
 * and unpacked comes back the same (files, empty files, directories, links,
 * modes); an empty tree; FIFOs refused when packing; and hostile streams
 * made here with libarchive's writer, each refused with its reason and
 * nothing written outside the destination: '..', absolute paths, a symbolic
 * link escaping then a file through it, links with '..' or absolute targets,
 * hard links outside, a device node, a FIFO, a gzip bomb past the size and
 * ratio limits, too many entries, an entry named twice.  arch_remove takes a
 * tree away without following links.  Prints TAP; exits 1 on a failure.
 */
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"
#include "tap.h"

static char	*top;		/* this run's directory */

/* Die with a Bail out line (the test cannot go on). */
static void JQ_NORETURN
bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(2);
}

/* A path from a format, in one of a few rotating static buffers. */
static const char * JQ_PRINTF(1, 2)
P(const char *fmt, ...)
{
	static char	 buf[4][4096];
	static int	 next;
	char		*b = buf[next++ % 4];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof buf[0], fmt, ap);
	va_end(ap);
	return b;
}

/* Write a file below dir. */
static void
put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char	*p = xprintf("%s/%s", dir, name);
	int	 fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || util_write_all(fd, text, strlen(text)) != 0 ||
	    close(fd) != 0)
		bail(p);
	free(p);
}

/* The contents of a file below dir (not through a link), or NULL. */
static const char *
get(const char *dir, const char *name)
{
	static char	 buf[4096];
	char		*p = xprintf("%s/%s", dir, name);
	ssize_t	 n;
	int	 fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	free(p);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/* A fresh directory below top. */
static char *
fresh(const char *name)
{
	char	*p = xprintf("%s/%s", top, name);

	if (mkdir(p, 0700) != 0)
		bail(p);
	return p;
}

/* Open a directory. */
static int
opendir_fd(const char *p)
{
	int	 fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		bail(p);
	return fd;
}

/* Unpack file src into a fresh directory dst; the cause or NULL. */
static char *
unpack(const char *src, const char *dst, const struct arch_limits *lim)
{
	char	*cause = NULL, *d = fresh(dst);
	int	 in = open(src, O_RDONLY | O_CLOEXEC), dfd = opendir_fd(d);

	if (in < 0)
		bail(src);
	if (arch_unpack(in, dfd, lim, &cause) == 0)
		cause = NULL;
	close(in);
	close(dfd);
	free(d);
	return cause;
}

/* Count the entries of a directory (0 if missing). */
static int
count(const char *dir)
{
	char	*cmd = xprintf("ls -A '%s' 2>/dev/null | wc -l", dir);
	FILE	*f = popen(cmd, "r");
	int	 n = -1;

	if (f == NULL || fscanf(f, "%d", &n) != 1)
		n = -1;
	if (f != NULL)
		pclose(f);
	free(cmd);
	return n;
}

/* An entry of a hostile stream: type, path, link or data. */
struct ent {
	mode_t		 type;		/* AE_IFREG ...; 0: hard link */
	const char	*path;
	const char	*link;		/* symlink or hard link target */
	const char	*data;
};

/* Write a tar (gzip'd if gz) of the entries to path. */
static void
mktar(const char *path, const struct ent *e, size_t n, int gz)
{
	struct archive		*w = archive_write_new();
	struct archive_entry	*ae;
	size_t			 i;

	archive_write_set_format_pax_restricted(w);
	if (gz)
		archive_write_add_filter_gzip(w);
	if (archive_write_open_filename(w, path) != ARCHIVE_OK)
		bail(path);
	for (i = 0; i < n; i++) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_perm(ae, 0644);
		if (e[i].type == 0) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].link);
		} else
			archive_entry_set_filetype(ae, e[i].type);
		if (e[i].type == AE_IFLNK)
			archive_entry_set_symlink(ae, e[i].link);
		if (e[i].type == AE_IFCHR)
			archive_entry_set_rdev(ae, makedev(1, 3));
		if (e[i].type == AE_IFREG)
			archive_entry_set_size(ae, e[i].data != NULL ?
			    (la_int64_t)strlen(e[i].data) : 0);
		archive_write_header(w, ae);
		if (e[i].type == AE_IFREG && e[i].data != NULL)
			archive_write_data(w, e[i].data, strlen(e[i].data));
		archive_entry_free(ae);
	}
	archive_write_close(w);
	archive_write_free(w);
}

/* A hostile stream of entries e refused with a cause containing want. */
static void
refused(const char *tag, const struct ent *e, size_t n, const char *want)
{
	struct arch_limits	 lim;
	char			*tar = xprintf("%s/%s.tar", top, tag);
	char			*cause;

	arch_limits_default(&lim);
	mktar(tar, e, n, 0);
	cause = unpack(tar, tag, &lim);
	OK(cause != NULL && strstr(cause, want) != NULL,
	    "%s: refused (%s)", tag, cause != NULL ? t_esc(cause) : "accepted");
	free(cause);
	free(tar);
}

/* A tree packed and unpacked is the same tree. */
static void
test_round_trip(void)
{
	struct arch_limits	 lim;
	struct stat		 sb;
	char			*src = fresh("src"), *tar, *cause = NULL, *dst;
	const char		*s;
	char			 target[64];
	ssize_t			 n;
	int			 sfd, out, rc;

	arch_limits_default(&lim);
	put(src, "a.txt", "alpha\n", 0644);
	put(src, "empty", "", 0600);
	put(src, "run.sh", "#!/bin/sh\n", 0755);
	mkdir(P("%s/sub", src), 0755);
	mkdir(P("%s/sub/deeper", src), 0755);
	mkdir(P("%s/emptydir", src), 0755);
	put(src, "sub/deeper/b.txt", "beta\n", 0644);
	if (symlink("sub/deeper/b.txt", P("%s/link", src)) != 0)
		bail("symlink");
	tar = xprintf("%s/rt.tar", top);
	sfd = opendir_fd(src);
	out = open(tar, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	rc = arch_pack(sfd, out, &lim, NULL, &cause);
	OK(rc == 0, "pack a tree (%s)", cause != NULL ? cause : "ok");
	close(out);
	close(sfd);
	cause = unpack(tar, "rt", &lim);
	OK(cause == NULL, "unpack it (%s)", cause != NULL ? cause : "ok");
	dst = xprintf("%s/rt", top);
	OK((s = get(dst, "a.txt")) != NULL && strcmp(s, "alpha\n") == 0,
	    "a file comes back");
	OK((s = get(dst, "sub/deeper/b.txt")) != NULL &&
	    strcmp(s, "beta\n") == 0, "a file two directories down");
	OK((s = get(dst, "empty")) != NULL && *s == '\0', "an empty file");
	OK(stat(P("%s/emptydir", dst), &sb) == 0 && S_ISDIR(sb.st_mode),
	    "an empty directory");
	OK(stat(P("%s/run.sh", dst), &sb) == 0 &&
	    (sb.st_mode & 0777) == 0755, "an executable keeps its mode");
	n = readlink(P("%s/link", dst), target, sizeof target - 1);
	OK(n > 0 && (target[n] = '\0', strcmp(target,
	    "sub/deeper/b.txt") == 0), "a symbolic link inside comes back");
	free(cause);
	free(dst);
	free(src);
	free(tar);
}

/* An empty tree packs to a stream that unpacks to nothing. */
static void
test_empty(void)
{
	struct arch_limits	 lim;
	char			*src = fresh("esrc"), *tar, *cause = NULL;
	int			 sfd, out, rc;

	arch_limits_default(&lim);
	tar = xprintf("%s/e.tar", top);
	sfd = opendir_fd(src);
	out = open(tar, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	rc = arch_pack(sfd, out, &lim, NULL, &cause);
	close(out);
	close(sfd);
	OK(rc == 0, "pack an empty tree");
	cause = unpack(tar, "e", &lim);
	OK(cause == NULL && count(P("%s/e", top)) == 0,
	    "an empty tree unpacks to an empty directory (%s)",
	    cause != NULL ? cause : "ok");
	free(cause);
	free(src);
	free(tar);
}

/* A FIFO in a tree is refused when packing; so are the limits. */
static void
test_pack_refuses(void)
{
	struct arch_limits	 lim;
	char			*src = fresh("fsrc"), *cause = NULL;
	int			 sfd, out = open("/dev/null", O_WRONLY), rc;

	arch_limits_default(&lim);
	if (mkfifo(P("%s/pipe", src), 0600) != 0)
		bail("mkfifo");
	sfd = opendir_fd(src);
	rc = arch_pack(sfd, out, &lim, NULL, &cause);
	OK(rc == -1 && cause != NULL && strstr(cause, "a FIFO") != NULL,
	    "pack refuses a FIFO (%s)", cause != NULL ? cause : "packed");
	free(cause);
	close(sfd);
	unlink(P("%s/pipe", src));
	put(src, "big", "0123456789", 0644);
	put(src, "c", "x", 0644);
	lim.max_size = 5;
	sfd = opendir_fd(src);
	cause = NULL;
	rc = arch_pack(sfd, out, &lim, NULL, &cause);
	OK(rc == -1 && cause != NULL && strstr(cause, "size limit"),
	    "pack stops at the size limit (%s)", cause ? cause : "packed");
	free(cause);
	close(sfd);
	arch_limits_default(&lim);
	lim.max_entries = 1;
	sfd = opendir_fd(src);
	cause = NULL;
	rc = arch_pack(sfd, out, &lim, NULL, &cause);
	OK(rc == -1 && cause != NULL && strstr(cause, "entries limit"),
	    "pack stops at the entries limit (%s)", cause ? cause : "packed");
	free(cause);
	close(sfd);
	close(out);
	free(src);
}

/* Hostile streams, each refused; nothing outside the destination. */
static void
test_hostile(void)
{
	char		*victim = xprintf("%s/victim", top), *outside;
	const char	*s;
	static const struct ent dotdot[] = {
		{ AE_IFREG, "../victim/evil", NULL, "x" } };
	static const struct ent dotdot2[] = {
		{ AE_IFREG, "a/../../victim/evil", NULL, "x" } };
	struct ent abs[] = { { AE_IFREG, NULL, NULL, "x" } };
	struct ent symesc[] = {
		{ AE_IFLNK, "lnk", NULL, NULL },
		{ AE_IFREG, "lnk/evil", NULL, "x" } };
	static const struct ent symdot[] = {
		{ AE_IFLNK, "lnk", "x/../..", NULL } };
	static const struct ent hardabs[] = {
		{ 0, "passwd", "/etc/passwd", NULL } };
	static const struct ent harddot[] = {
		{ 0, "evil", "../victim/keep", NULL } };
	static const struct ent dev[] = {
		{ AE_IFCHR, "null", NULL, NULL } };
	static const struct ent fifo[] = {
		{ AE_IFIFO, "pipe", NULL, NULL } };
	static const struct ent twice[] = {
		{ AE_IFREG, "f", NULL, "one" },
		{ AE_IFREG, "f", NULL, "two" } };
	static const struct ent through[] = {
		{ AE_IFDIR, "sub", NULL, NULL },
		{ AE_IFLNK, "lnk", "sub", NULL },
		{ AE_IFREG, "lnk/f", NULL, "x" } };
	static const struct ent viasym[] = {
		{ AE_IFLNK, "l", "f", NULL },
		{ AE_IFREG, "f", NULL, "x" },
		{ AE_IFREG, "l", NULL, "y" } };

	if (mkdir(victim, 0700) != 0)
		bail(victim);
	put(victim, "keep", "keep\n", 0644);
	refused("dotdot", dotdot, 1, "'..'");
	refused("dotdot2", dotdot2, 1, "'..'");
	outside = xprintf("%s/victim/abs_evil", top);
	abs[0].path = outside;
	refused("abs", abs, 1, "absolute");
	symesc[0].link = victim;
	refused("symesc", symesc, 2, "absolute");
	symesc[0].link = "../victim";
	refused("symesc2", symesc, 2, "'..'");
	refused("symdot", symdot, 1, "'..'");
	refused("hardabs", hardabs, 1, "absolute");
	refused("harddot", harddot, 1, "'..'");
	refused("dev", dev, 1, "character device");
	refused("fifo", fifo, 1, "FIFO");
	refused("twice", twice, 2, "named twice");
	refused("viasym", viasym, 3, "named twice");
	refused("through", through, 3, "through a symbolic link");
	OK(count(victim) == 1 && (s = get(victim, "keep")) != NULL &&
	    strcmp(s, "keep\n") == 0, "nothing written outside");
	free(outside);
	free(victim);
}

/* A gzip'd bomb is stopped by the size limit, then by the ratio limit. */
static void
test_bomb(void)
{
	struct arch_limits	 lim;
	struct archive		*w = archive_write_new();
	struct archive_entry	*ae = archive_entry_new();
	static char		 zero[1 << 16];
	char			*tar = xprintf("%s/bomb.tar.gz", top), *cause;
	int			 i;
	struct stat		 sb;

	archive_write_set_format_pax_restricted(w);
	archive_write_add_filter_gzip(w);
	if (archive_write_open_filename(w, tar) != ARCHIVE_OK)
		bail(tar);
	archive_entry_set_pathname(ae, "zeros");
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0644);
	archive_entry_set_size(ae, 256 << 20);
	archive_write_header(w, ae);
	for (i = 0; i < 4096; i++)
		archive_write_data(w, zero, sizeof zero);
	archive_write_close(w);
	archive_write_free(w);
	archive_entry_free(ae);
	arch_limits_default(&lim);
	lim.max_size = 1 << 20;
	cause = unpack(tar, "bomb1", &lim);
	OK(cause != NULL && strstr(cause, "size limit") != NULL,
	    "a bomb stops at the size limit (%s)", cause ? cause : "accepted");
	OK(stat(P("%s/bomb1/zeros", top), &sb) == 0 &&
	    sb.st_size <= (1 << 20) + (1 << 16), "having written at most "
	    "the limit and a block");
	free(cause);
	arch_limits_default(&lim);
	cause = unpack(tar, "bomb2", &lim);
	OK(cause != NULL && strstr(cause, "ratio limit") != NULL,
	    "a bomb stops at the ratio limit (%s)", cause ? cause : "accepted");
	free(cause);
	free(tar);
}

/* Too many entries are refused at the cap. */
static void
test_entries(void)
{
	struct arch_limits	 lim;
	struct ent		 e[50];
	char			 names[50][8];
	char			*tar = xprintf("%s/many.tar", top), *cause;
	int			 i;

	for (i = 0; i < 50; i++) {
		snprintf(names[i], sizeof names[i], "f%d", i);
		e[i].type = AE_IFREG;
		e[i].path = names[i];
		e[i].link = NULL;
		e[i].data = "x";
	}
	mktar(tar, e, 50, 0);
	arch_limits_default(&lim);
	lim.max_entries = 49;
	cause = unpack(tar, "many1", &lim);
	OK(cause != NULL && strstr(cause, "entries limit") != NULL,
	    "50 entries refused with a cap of 49 (%s)", cause ? cause : "ok");
	free(cause);
	lim.max_entries = 50;
	cause = unpack(tar, "many2", &lim);
	OK(cause == NULL && count(P("%s/many2", top)) == 50,
	    "50 entries pass with a cap of 50");
	free(cause);
	free(tar);
}

/* arch_remove takes a tree away and never follows a link out. */
static void
test_remove(void)
{
	char	*d = fresh("rm"), *keep = fresh("rmkeep"), *cause = NULL;
	int	 tfd = opendir_fd(top);

	put(keep, "k", "k", 0644);
	mkdir(P("%s/sub", d), 0500);
	if (symlink(keep, P("%s/out", d)) != 0)
		bail("symlink");
	OK(arch_remove(tfd, "rm", &cause) == 0 && count(d) == 0,
	    "arch_remove removes a tree (%s)", cause ? cause : "ok");
	OK(count(keep) == 1, "and not what a link in it points at");
	OK(arch_remove(tfd, "rm", &cause) == 0, "a missing tree is no error");
	close(tfd);
	free(d);
	free(keep);
}

int
main(void)
{
	top = t_tmpdir("arch");
	test_round_trip();
	test_empty();
	test_pack_refuses();
	test_hostile();
	test_bomb();
	test_entries();
	test_remove();
	t_rmtree(top);
	return t_done();
}
