/*
 * arch.c: directory trees as tar streams (libarchive), both ways, safely.
 *
 * Packing walks a tree below a directory fd (openat with O_NOFOLLOW, names
 * sorted, so the same tree makes the same stream) and writes a pax tar
 * stream, uncompressed: regular files, directories and symbolic links, owner
 * 0, permissions and mtime kept.  Hard links are packed as copies.  FIFOs,
 * sockets and device nodes are refused, as is a file whose size changes
 * while it is read.
 *
 * Unpacking lets libarchive parse (tar formats, and only the built-in gzip,
 * bzip2, xz, zstd and lz4 filters: archive_read_support_filter_all would run
 * external programs) but does the writing itself instead of using
 * archive_write_disk.  That writer works relative to the current directory,
 * which is one per process (the server unpacks in its commit thread), and
 * its ARCHIVE_EXTRACT_SECURE_NODOTDOT, _SECURE_SYMLINKS and
 * _SECURE_NOABSOLUTEPATHS flags still create symbolic links pointing
 * anywhere, device nodes (as root) and any amount of data.  Here:
 *   - every path is checked before use: not absolute, no ".." component,
 *     each component at most NAME_MAX, the whole at most ARCH_PATH_MAX,
 *     at most ARCH_DEPTH_MAX directories deep;
 *   - every component is opened relative to the destination's fd with
 *     O_NOFOLLOW | O_DIRECTORY, so no symbolic link, whatever it points
 *     at, is ever followed, and files are created with O_EXCL | O_NOFOLLOW
 *     (an entry named twice is refused, never written through);
 *   - a symbolic link is made only if its target is relative and has no
 *     ".." component, so no chain of links can lead outside;
 *   - a hard link is made only to a regular file unpacked before, found the
 *     same confined way, and linkat does not follow;
 *   - only regular files, directories and symbolic links are made; modes
 *     lose set-id, sticky and group/other write bits;
 *   - bytes are counted as written (sparse holes included), never taken
 *     from a header, against max_size; entries against max_entries; bytes
 *     written against bytes read against max_ratio.
 * On failure the caller removes what was unpacked (arch_remove): the
 * destination is always a fresh directory of its own.
 */
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jq.h"

#define ARCH_PATH_MAX	4096		/* bytes of an entry's path */
#define ARCH_DEPTH_MAX	128		/* directories deep */
#define ARCH_BLOCK	(64U << 10)	/* bytes read or copied at a time */
#define ARCH_SHOW_MAX	200		/* bytes of a path shown in a message */

/* Fill the defaults documented in jq-run(1) and jq-serve(1). */
void
arch_limits_default(struct arch_limits *lim)
{
	lim->max_size = ARCH_MAX_SIZE_DEFAULT;
	lim->max_entries = ARCH_MAX_ENTRIES_DEFAULT;
	lim->max_ratio = ARCH_MAX_RATIO_DEFAULT;
}

/* A printable, bounded copy of an entry's path for messages. */
static char *
arch_show(const char *path)
{
	size_t	 i, n = strnlen(path, ARCH_SHOW_MAX + 1);
	char	*s = xmalloc(ARCH_SHOW_MAX + 4);

	if (n > ARCH_SHOW_MAX) {
		n = ARCH_SHOW_MAX;
		memcpy(s + n, "...", 4);
	} else
		s[n] = '\0';
	memcpy(s, path, n);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
	return s;
}

/* What a file of mode m is, for messages. */
static const char *
arch_kind(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a regular file, directory or symbolic link";
}

/* qsort's comparison of two names. */
static int
arch_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Set *cause to "entry PATH: WHY" (path made printable). */
static void JQ_PRINTF(3, 4)
arch_cause(char **cause, const char *path, const char *fmt, ...)
{
	va_list	 ap;
	char	*why, *show;

	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) == -1)
		why = NULL;
	va_end(ap);
	if (path == NULL)
		*cause = xstrdup(why != NULL ? why : "out of memory");
	else {
		show = arch_show(path);
		*cause = xprintf("entry '%s': %s", show,
		    why != NULL ? why : "out of memory");
		free(show);
	}
	free(why);
}

/* ---- packing ---- */

struct arch_pack {
	struct archive		*a;
	int			 outfd;
	const struct arch_limits *lim;
	uint64_t		 size;		/* bytes of file data packed */
	uint64_t		 entries;
	int64_t			 newest;	/* newest mtime seen, ns */
	char			 path[ARCH_PATH_MAX + 1];
	char			 buf[ARCH_BLOCK];
};

/* Note the modification time of sb if it is the newest so far. */
static void
arch_pack_date(struct arch_pack *p, const struct stat *sb)
{
	int64_t	 ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 +
	    sb->st_mtim.tv_nsec;

	if (ns > p->newest)
		p->newest = ns;
}

/* libarchive's write callback: all of it to outfd. */
static la_ssize_t
arch_write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct arch_pack	*p = arg;

	if (util_write_all(p->outfd, buf, len) != 0) {
		archive_set_error(a, errno, "write: %s", strerror(errno));
		return -1;
	}
	return (la_ssize_t)len;
}

/* The libarchive error of the writer as a cause. */
static void
arch_pack_error(struct arch_pack *p, char **cause)
{
	const char	*s = archive_error_string(p->a);

	arch_cause(cause, p->path, "%s", s != NULL ? s : "archive error");
}

/* Write the header for the entry at p->path of stat sb (link: target). */
static int
arch_pack_header(struct arch_pack *p, const struct stat *sb,
    const char *target, char **cause)
{
	struct archive_entry	*e = archive_entry_new();
	int			 rc;

	if (e == NULL) {
		arch_cause(cause, p->path, "out of memory");
		return -1;
	}
	archive_entry_set_pathname(e, p->path);
	archive_entry_set_perm(e, sb->st_mode & 0777);
	archive_entry_set_mtime(e, sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (S_ISDIR(sb->st_mode))
		archive_entry_set_filetype(e, AE_IFDIR);
	else if (S_ISLNK(sb->st_mode)) {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, target);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, sb->st_size);
	}
	rc = archive_write_header(p->a, e);
	archive_entry_free(e);
	if (rc < ARCHIVE_WARN) {
		arch_pack_error(p, cause);
		return -1;
	}
	return 0;
}

/* Pack the regular file name in dfd (as stat sb said) under p->path. */
static int
arch_pack_file(struct arch_pack *p, int dfd, const char *name,
    const struct stat *sb, char **cause)
{
	struct stat	 now;
	uint64_t	 left;
	ssize_t		 n;
	int		 fd;

	/* O_NONBLOCK: a FIFO swapped in since the stat must not block us */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		arch_cause(cause, p->path, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) ||
	    now.st_ino != sb->st_ino || now.st_dev != sb->st_dev) {
		arch_cause(cause, p->path, "replaced while packed");
		close(fd);
		return -1;
	}
	if (p->size + (uint64_t)now.st_size > p->lim->max_size ||
	    p->size + (uint64_t)now.st_size < p->size) {
		arch_cause(cause, p->path, "the tree holds more than %llu "
		    "bytes (the tree size limit)",
		    (unsigned long long)p->lim->max_size);
		close(fd);
		return -1;
	}
	if (arch_pack_header(p, &now, NULL, cause) != 0) {
		close(fd);
		return -1;
	}
	for (left = (uint64_t)now.st_size; left > 0; left -= (uint64_t)n) {
		n = read(fd, p->buf, left < sizeof p->buf ? left : sizeof p->buf);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			arch_cause(cause, p->path, "%s", n == 0 ?
			    "shrank while packed" : strerror(errno));
			close(fd);
			return -1;
		}
		if (archive_write_data(p->a, p->buf, (size_t)n) != n) {
			arch_pack_error(p, cause);
			close(fd);
			return -1;
		}
	}
	if (read(fd, p->buf, 1) != 0) {
		arch_cause(cause, p->path, "grew while packed");
		close(fd);
		return -1;
	}
	close(fd);
	p->size += (uint64_t)now.st_size;
	return 0;
}

/* Pack the directory dfd (its path so far in p->path, len bytes). */
static int
arch_pack_dir(struct arch_pack *p, int dfd, size_t len, unsigned depth,
    char **cause)
{
	struct dirent	*de;
	struct stat	 sb;
	DIR		*d;
	char		**names = NULL, target[ARCH_PATH_MAX + 1];
	size_t		 n = 0, alloc = 0, i, nlen;
	ssize_t		 tlen;
	int		 rc = -1, sub;

	if ((d = fdopendir(dfd)) == NULL) {
		arch_cause(cause, len > 0 ? p->path : NULL, "%s",
		    strerror(errno));
		close(dfd);
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == alloc) {
			alloc = alloc == 0 ? 16 : alloc * 2;
			names = xreallocarray(names, alloc, sizeof *names);
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (errno != 0) {
		arch_cause(cause, len > 0 ? p->path : NULL, "%s",
		    strerror(errno));
		goto out;
	}
	if (n > 1)
		qsort(names, n, sizeof *names, arch_name_cmp);
	for (i = 0; i < n; i++) {
		nlen = strlen(names[i]);
		if (len + nlen + 1 > ARCH_PATH_MAX) {
			p->path[len] = '\0';
			arch_cause(cause, p->path, "a path longer than %d "
			    "bytes below it", ARCH_PATH_MAX);
			goto out;
		}
		memcpy(p->path + len, names[i], nlen + 1);
		if (++p->entries > p->lim->max_entries) {
			arch_cause(cause, p->path, "the tree has more than "
			    "%llu entries (the tree entries limit)",
			    (unsigned long long)p->lim->max_entries);
			goto out;
		}
		if (fstatat(dirfd(d), names[i], &sb, AT_SYMLINK_NOFOLLOW)) {
			arch_cause(cause, p->path, "%s", strerror(errno));
			goto out;
		}
		arch_pack_date(p, &sb);
		if (S_ISREG(sb.st_mode)) {
			if (arch_pack_file(p, dirfd(d), names[i], &sb,
			    cause) != 0)
				goto out;
		} else if (S_ISLNK(sb.st_mode)) {
			tlen = readlinkat(dirfd(d), names[i], target,
			    sizeof target - 1);
			if (tlen <= 0 || (size_t)tlen >= sizeof target - 1) {
				arch_cause(cause, p->path, "%s", tlen == -1 ?
				    strerror(errno) : "link target too long");
				goto out;
			}
			target[tlen] = '\0';
			if (arch_pack_header(p, &sb, target, cause) != 0)
				goto out;
		} else if (S_ISDIR(sb.st_mode)) {
			if (depth + 1 > ARCH_DEPTH_MAX) {
				arch_cause(cause, p->path, "more than %d "
				    "directories deep", ARCH_DEPTH_MAX);
				goto out;
			}
			if (arch_pack_header(p, &sb, NULL, cause) != 0)
				goto out;
			sub = openat(dirfd(d), names[i], O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub == -1) {
				arch_cause(cause, p->path, "%s",
				    strerror(errno));
				goto out;
			}
			p->path[len + nlen] = '/';
			p->path[len + nlen + 1] = '\0';
			if (arch_pack_dir(p, sub, len + nlen + 1, depth + 1,
			    cause) != 0)
				goto out;
		} else {
			arch_cause(cause, p->path, "%s: only regular files, "
			    "directories and symbolic links are packed",
			    arch_kind(sb.st_mode));
			goto out;
		}
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/*
 * Pack the tree below dirfd (not the directory itself) into outfd, a
 * blocking fd, as an uncompressed pax tar stream.  If newest is not NULL,
 * it gets the newest modification time (ns) of the directory and of any
 * entry below it, as seen while packing: the tree's age for make's rule.
 * Returns 0, or -1 with *cause (the entry and why); outfd may then hold
 * part of a stream.
 */
int
arch_pack(int dirfd, int outfd, const struct arch_limits *lim,
    int64_t *newest, char **cause)
{
	struct arch_pack	*p = xcalloc(1, sizeof *p);
	struct stat		 sb;
	int			 dfd, rc = -1;

	p->outfd = outfd;
	p->lim = lim;
	p->newest = INT64_MIN;
	if ((dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fstat(dfd, &sb) != 0) {
		*cause = xprintf("the tree: %s", strerror(errno));
		if (dfd != -1)
			close(dfd);
		free(p);
		return -1;
	}
	arch_pack_date(p, &sb);
	if ((p->a = archive_write_new()) == NULL) {
		*cause = xstrdup("the tree: out of memory");
		close(dfd);
		free(p);
		return -1;
	}
	archive_write_set_format_pax_restricted(p->a);
	archive_write_set_bytes_in_last_block(p->a, 1);
	if (archive_write_open(p->a, p, NULL, arch_write_cb, NULL) !=
	    ARCHIVE_OK) {
		arch_cause(cause, NULL, "the tree: %s",
		    archive_error_string(p->a));
		close(dfd);
		goto out;
	}
	if (arch_pack_dir(p, dfd, 0, 0, cause) != 0)
		goto out;
	if (archive_write_close(p->a) != ARCHIVE_OK) {
		arch_cause(cause, NULL, "the tree: %s",
		    archive_error_string(p->a));
		goto out;
	}
	if (newest != NULL)
		*newest = p->newest;
	rc = 0;
out:
	archive_write_free(p->a);
	free(p);
	return rc;
}

/*
 * Add the directory name (relative to parent; not followed if a link) and
 * the tree below it to the open writer a, as entries "prefix/" and
 * "prefix/PATH", sorted as arch_pack sorts.  Returns 0, or -1 with *cause
 * (the entry and why); a may then hold part of the tree.
 */
int
arch_pack_into(struct archive *a, int parent, const char *name,
    const char *prefix, const struct arch_limits *lim, char **cause)
{
	struct arch_pack	*p;
	struct stat		 sb;
	size_t			 len = strlen(prefix);
	int			 dfd;

	if (len == 0 || len + 2 > ARCH_PATH_MAX) {
		*cause = xstrdup("the tree: its name is empty or too long");
		return -1;
	}
	if ((dfd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(dfd, &sb) != 0) {
		*cause = xprintf("the tree: %s", strerror(errno));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	p = xcalloc(1, sizeof *p);
	p->a = a;
	p->outfd = -1;
	p->lim = lim;
	memcpy(p->path, prefix, len + 1);
	if (arch_pack_header(p, &sb, NULL, cause) != 0) {
		close(dfd);
		free(p);
		return -1;
	}
	p->path[len] = '/';
	p->path[len + 1] = '\0';
	/* arch_pack_dir closes dfd */
	if (arch_pack_dir(p, dfd, len + 1, 0, cause) != 0) {
		free(p);
		return -1;
	}
	free(p);
	return 0;
}

/* ---- unpacking ---- */

struct arch_unpack {
	struct archive		*a;
	int			 infd;
	int			 destfd;
	const struct arch_limits *lim;
	uint64_t		 raw;		/* bytes read from infd */
	uint64_t		 size;		/* bytes written, holes included */
	uint64_t		 entries;
	const char		*path;		/* the entry's, for messages */
	char			 buf[ARCH_BLOCK];
};

/* libarchive's read callback: the next bytes of infd, counted. */
static la_ssize_t
arch_read_cb(struct archive *a, void *arg, const void **buf)
{
	struct arch_unpack	*u = arg;
	ssize_t			 n;

	do
		n = read(u->infd, u->buf, sizeof u->buf);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		archive_set_error(a, errno, "read: %s", strerror(errno));
		return -1;
	}
	u->raw += (uint64_t)n;
	*buf = u->buf;
	return n;
}

/*
 * Check an entry's path and split it into components in place: copy into
 * out (ARCH_PATH_MAX + 1 bytes), set comp[] (at most ARCH_DEPTH_MAX + 1)
 * and *ncomp.  "." components and repeated slashes are dropped; an empty
 * result (the root itself) gives *ncomp 0.  Returns NULL or why not.
 */
static const char *
arch_path_split(const char *path, char *out, char **comp, size_t *ncomp)
{
	size_t	 n = 0, len;
	char	*s, *c;

	if (path == NULL || *path == '\0')
		return "no name";
	if (*path == '/')
		return "an absolute path";
	if ((len = strlen(path)) > ARCH_PATH_MAX)
		return "a path longer than 4096 bytes";
	memcpy(out, path, len + 1);
	for (s = out; (c = strsep(&s, "/")) != NULL;) {
		if (*c == '\0' || strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return "a '..' component";
		if (strlen(c) > NAME_MAX)
			return "a name longer than NAME_MAX";
		if (n == ARCH_DEPTH_MAX + 1)
			return "more than 128 directories deep";
		comp[n++] = c;
	}
	*ncomp = n;
	return NULL;
}

/*
 * Open the directory holding the last of ncomp components, below destfd,
 * never following a link; missing directories are made when make is set.
 * Returns an fd (the caller closes it unless it is destfd) or -1 with why.
 */
static int
arch_parent(int destfd, char **comp, size_t ncomp, int make,
    const char **why)
{
	size_t	 i;
	int	 fd = destfd, next;

	for (i = 0; i + 1 < ncomp; i++) {
		next = openat(fd, comp[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (next == -1 && errno == ENOENT && make) {
			if (mkdirat(fd, comp[i], 0755) != 0 && errno != EEXIST)
				next = -1;
			else
				next = openat(fd, comp[i], O_RDONLY |
				    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next == -1) {
			*why = errno == ELOOP || errno == ENOTDIR ?
			    "a path through a symbolic link or a file" :
			    errno == ENOENT ? "a path through a missing "
			    "directory" : strerror(errno);
			if (fd != destfd)
				close(fd);
			return -1;
		}
		if (fd != destfd)
			close(fd);
		fd = next;
	}
	return fd;
}

/* Count n more bytes written; -1 with *cause past a limit. */
static int
arch_count(struct arch_unpack *u, uint64_t n, char **cause)
{
	u->size += n;
	if (u->size > u->lim->max_size || u->size < n) {
		arch_cause(cause, u->path, "the tree holds more than %llu "
		    "bytes (the tree size limit)",
		    (unsigned long long)u->lim->max_size);
		return -1;
	}
	if (u->lim->max_ratio != 0 && u->size > ARCH_RATIO_FLOOR &&
	    u->size / (u->raw > 0 ? u->raw : 1) >= u->lim->max_ratio) {
		arch_cause(cause, u->path, "unpacks to more than %u times "
		    "the bytes read (the compression ratio limit)",
		    u->lim->max_ratio);
		return -1;
	}
	return 0;
}

/* Write the regular file entry name in pfd from the archive's data. */
static int
arch_unpack_file(struct arch_unpack *u, int pfd, const char *name,
    struct archive_entry *e, char **cause)
{
	const void	*buf;
	size_t		 len;
	la_int64_t	 off;
	uint64_t	 end = 0, want;
	struct timespec	 ts[2];
	mode_t		 mode = (archive_entry_perm(e) & 0755) | 0600;
	ssize_t		 n;
	int		 fd, rc;

	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (fd == -1) {
		arch_cause(cause, u->path, "%s", errno == EEXIST ?
		    "named twice, or over a link" : strerror(errno));
		return -1;
	}
	while ((rc = archive_read_data_block(u->a, &buf, &len, &off)) ==
	    ARCHIVE_OK) {
		if (off < 0 || (uint64_t)off + len < (uint64_t)off) {
			arch_cause(cause, u->path, "a bad data offset");
			goto fail;
		}
		/* holes count as written: a sparse bomb is a bomb */
		if ((uint64_t)off + len > end) {
			if (arch_count(u, (uint64_t)off + len - end, cause))
				goto fail;
			end = (uint64_t)off + len;
		}
		while (len > 0) {
			n = pwrite(fd, buf, len, off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				arch_cause(cause, u->path, "%s",
				    n == 0 ? "short write" : strerror(errno));
				goto fail;
			}
			buf = (const char *)buf + n;
			len -= (size_t)n;
			off += n;
		}
	}
	if (rc != ARCHIVE_EOF) {
		arch_cause(cause, u->path, "%s",
		    archive_error_string(u->a) != NULL ?
		    archive_error_string(u->a) : "cannot read its data");
		goto fail;
	}
	/* a sparse file may end in a hole: its size, counted too */
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
	    (want = (uint64_t)archive_entry_size(e)) > end) {
		if (arch_count(u, want - end, cause) != 0)
			goto fail;
		if (ftruncate(fd, (off_t)want) != 0) {
			arch_cause(cause, u->path, "%s", strerror(errno));
			goto fail;
		}
	}
	if (archive_entry_mtime_is_set(e)) {
		ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
		ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
		(void)futimens(fd, ts);
	}
	if (close(fd) != 0) {
		arch_cause(cause, u->path, "%s", strerror(errno));
		return -1;
	}
	return 0;
fail:
	close(fd);
	return -1;
}

/* Make the hard link name in pfd to an earlier regular file of the tree. */
static int
arch_unpack_hardlink(struct arch_unpack *u, int pfd, const char *name,
    const char *target, char **cause)
{
	char		 tpath[ARCH_PATH_MAX + 1];
	char		*tcomp[ARCH_DEPTH_MAX + 1];
	const char	*why;
	struct stat	 sb;
	size_t		 tn;
	int		 tfd, rc;

	if ((why = arch_path_split(target, tpath, tcomp, &tn)) == NULL &&
	    tn == 0)
		why = "the tree's root";
	if (why != NULL) {
		arch_cause(cause, u->path, "a hard link to %s", why);
		return -1;
	}
	if ((tfd = arch_parent(u->destfd, tcomp, tn, 0, &why)) == -1) {
		arch_cause(cause, u->path, "a hard link: %s", why);
		return -1;
	}
	if (fstatat(tfd, tcomp[tn - 1], &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(sb.st_mode)) {
		arch_cause(cause, u->path, "a hard link to something not a "
		    "regular file unpacked before it");
		rc = -1;
	} else if ((rc = linkat(tfd, tcomp[tn - 1], pfd, name, 0)) != 0)
		arch_cause(cause, u->path, "%s", errno == EEXIST ?
		    "named twice" : strerror(errno));
	if (tfd != u->destfd)
		close(tfd);
	return rc;
}

/* Check a symbolic link's target: relative, no "..", not empty. */
static const char *
arch_link_check(const char *target)
{
	const char	*p;
	size_t		 n;

	if (target == NULL || *target == '\0')
		return "a symbolic link with no target";
	if (*target == '/')
		return "a symbolic link to an absolute path";
	if (strlen(target) > ARCH_PATH_MAX)
		return "a symbolic link target too long";
	for (p = target; *p != '\0'; p += n) {
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "a symbolic link with a '..' component "
			    "(it could point outside)";
		if (p[n] == '/')
			n++;
	}
	return NULL;
}

/* Unpack the entry e below u->destfd. */
static int
arch_unpack_entry(struct arch_unpack *u, struct archive_entry *e,
    char **cause)
{
	char		 path[ARCH_PATH_MAX + 1];
	char		*comp[ARCH_DEPTH_MAX + 1];
	const char	*why, *hard = archive_entry_hardlink(e), *name;
	struct stat	 sb;
	mode_t		 type = archive_entry_filetype(e);
	size_t		 ncomp;
	int		 pfd, rc = -1;

	u->path = archive_entry_pathname(e);
	if (++u->entries > u->lim->max_entries) {
		arch_cause(cause, u->path, "the tree has more than %llu "
		    "entries (the tree entries limit)",
		    (unsigned long long)u->lim->max_entries);
		return -1;
	}
	if ((why = arch_path_split(u->path, path, comp, &ncomp)) != NULL) {
		arch_cause(cause, u->path, "%s", why);
		return -1;
	}
	if (ncomp == 0) {
		if (type == AE_IFDIR && hard == NULL)
			return 0;	/* "./": the destination itself */
		arch_cause(cause, u->path, "names the tree's root");
		return -1;
	}
	if (hard == NULL && type != AE_IFREG && type != AE_IFDIR &&
	    type != AE_IFLNK) {
		arch_cause(cause, u->path, "%s: only regular files, "
		    "directories and symbolic links are unpacked",
		    arch_kind(type));
		return -1;
	}
	if (type == AE_IFLNK && hard == NULL &&
	    (why = arch_link_check(archive_entry_symlink(e))) != NULL) {
		arch_cause(cause, u->path, "%s", why);
		return -1;
	}
	if ((pfd = arch_parent(u->destfd, comp, ncomp, 1, &why)) == -1) {
		arch_cause(cause, u->path, "%s", why);
		return -1;
	}
	name = comp[ncomp - 1];
	if (hard != NULL)
		rc = arch_unpack_hardlink(u, pfd, name, hard, cause);
	else if (type == AE_IFREG)
		rc = arch_unpack_file(u, pfd, name, e, cause);
	else if (type == AE_IFLNK) {
		if ((rc = symlinkat(archive_entry_symlink(e), pfd, name)) != 0)
			arch_cause(cause, u->path, "%s", errno == EEXIST ?
			    "named twice" : strerror(errno));
	} else if (mkdirat(pfd, name, (archive_entry_perm(e) & 0755) |
	    0700) == 0)
		rc = 0;
	else if (errno == EEXIST && fstatat(pfd, name, &sb,
	    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
		rc = 0;		/* made before as a parent, or named twice */
	else
		arch_cause(cause, u->path, "%s", errno == EEXIST ?
		    "a directory over a file or link" : strerror(errno));
	if (pfd != u->destfd)
		close(pfd);
	return rc;
}

/*
 * Unpack the tar stream read from infd (a blocking fd; tar of any kind,
 * compressed or not) into the directory destdirfd, which should be empty
 * and the caller's own.  Returns 0, or -1 with *cause naming the entry and
 * why; what was unpacked before is left for the caller to remove.
 */
int
arch_unpack(int infd, int destdirfd, const struct arch_limits *lim,
    char **cause)
{
	struct arch_unpack	*u = xcalloc(1, sizeof *u);
	struct archive_entry	*e;
	int			 rc, ret = -1;

	u->infd = infd;
	u->destfd = destdirfd;
	u->lim = lim;
	if ((u->a = archive_read_new()) == NULL) {
		*cause = xstrdup("the tree: out of memory");
		free(u);
		return -1;
	}
	/* built-in filters only: _all would run lrzip, lzop... */
	archive_read_support_filter_gzip(u->a);
	archive_read_support_filter_bzip2(u->a);
	archive_read_support_filter_xz(u->a);
	archive_read_support_filter_zstd(u->a);
	archive_read_support_filter_lz4(u->a);
	archive_read_support_format_tar(u->a);
	archive_read_support_format_empty(u->a);
	if (archive_read_open(u->a, u, NULL, arch_read_cb, NULL) !=
	    ARCHIVE_OK) {
		arch_cause(cause, NULL, "not a tar stream: %s",
		    archive_error_string(u->a));
		goto out;
	}
	while ((rc = archive_read_next_header(u->a, &e)) == ARCHIVE_OK ||
	    rc == ARCHIVE_WARN)
		if (arch_unpack_entry(u, e, cause) != 0)
			goto out;
	if (rc != ARCHIVE_EOF) {
		arch_cause(cause, NULL, "not a whole tar stream: %s",
		    archive_error_string(u->a) != NULL ?
		    archive_error_string(u->a) : "read error");
		goto out;
	}
	ret = 0;
out:
	archive_read_free(u->a);
	free(u);
	return ret;
}

/*
 * Remove name below parent and, if a directory, all below it, never
 * following a symbolic link; directories made unreadable are opened up
 * first.  A missing name is not an error.  Returns 0 or -1 with *cause.
 */
int
arch_remove(int parent, const char *name, char **cause)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd, rc = 0;

	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM) {
		*cause = xprintf("%s: %s", name, strerror(errno));
		return -1;
	}
	(void)fchmodat(parent, name, 0700, 0);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		*cause = xprintf("%s: %s", name, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rc == 0)
			rc = arch_remove(dirfd(d), de->d_name, cause);
	}
	closedir(d);
	if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0) {
		*cause = xprintf("%s: %s", name, strerror(errno));
		rc = -1;
	}
	return rc;
}
