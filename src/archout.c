/*
 * archout.c: jq-serve --output-archive FILE: every result as an entry of
 * one archive, its format and compression chosen by FILE's extension.
 *
 * The durability rule: results are stored exactly as without the option
 * (store.c, commit.c, the journal's D records), in the result directory:
 * -o DIR when given, else a directory of the server's own in the state
 * directory, STATE_DIR/results-HASH (HASH names the resolved target, so a
 * restarted server finds the same one).  Those files are the results until
 * the archive is complete.  Only when the run ends is the archive written,
 * from them, in job order, to a temporary file beside the target
 * (".NAME.jq-partial"), which is fsync'd, renamed to FILE, and whose
 * directory is fsync'd.  Then the journal is removed, and then, if the
 * results live in the state directory, they are removed too.
 *
 * So FILE is never a partial archive: a crash before the rename leaves the
 * old FILE (or none) and the journal, and the restarted server resumes the
 * run and writes the archive whole from every result, once each.  A crash
 * after the rename but before the journal is gone writes the same archive
 * again at the next start.  A crash while the results are being removed
 * (the journal already gone) costs a run from scratch, whose archive
 * replaces FILE in one rename.
 *
 * An entry is named as its result file is in the result directory (a
 * result elsewhere, a FILE operand's without -o, is named by its path with
 * any leading '/' dropped).  Entries are regular files, mode 0644, with the
 * result file's modification time.  A tree result (a directory, from an
 * <outdir> job) is the entry "NAME/" and below it "NAME/PATH" for each of
 * its directories, regular files and symbolic links (as stored, never
 * followed), sorted by name, modes and times kept (arch_pack_into).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "jq.h"

#define ARCHOUT_BUF	(1024 * 1024)	/* a result read, an archive write */

enum archout_filter { AF_NONE, AF_GZIP, AF_ZSTD, AF_XZ, AF_BZIP2, AF_LZ4 };

/* The extensions understood, longest first where one ends another. */
static const struct archout_kind {
	const char		*ext;
	int			 zip;
	enum archout_filter	 filter;
} archout_kinds[] = {
	{ ".tar.gz", 0, AF_GZIP }, { ".tgz", 0, AF_GZIP },
	{ ".tar.zst", 0, AF_ZSTD }, { ".tzst", 0, AF_ZSTD },
	{ ".tar.xz", 0, AF_XZ }, { ".txz", 0, AF_XZ },
	{ ".tar.bz2", 0, AF_BZIP2 }, { ".tbz2", 0, AF_BZIP2 },
	{ ".tar.lz4", 0, AF_LZ4 },
	{ ".tar", 0, AF_NONE },
	{ ".zip", 1, AF_NONE },
};

static const struct archout_kind *archout_kind;
static char	*archout_target;	/* as given */
static char	*archout_dir;		/* its directory */
static char	*archout_base;		/* its final name */
static char	*archout_rdir;		/* the result directory */
static int	 archout_own_rdir;	/* results-HASH: ours to remove */
static char	 archout_buf[ARCHOUT_BUF];

/*
 * --output-archive target: its kind from the extension, its directory
 * there.  0, or -1 with *cause (a usage error).
 */
int
archout_setup(const char *target, char **cause)
{
	const struct archout_kind *k;
	struct stat	 st;
	const char	*slash;
	size_t		 i, len = strlen(target), el;

	for (i = 0; i < sizeof archout_kinds / sizeof archout_kinds[0]; i++) {
		k = &archout_kinds[i];
		el = strlen(k->ext);
		if (len > el && strcmp(target + len - el, k->ext) == 0 &&
		    target[len - el - 1] != '/') {
			archout_kind = k;
			break;
		}
	}
	if (archout_kind == NULL) {
		*cause = xprintf("--output-archive %s: no known extension: "
		    "name it .tar, .tar.gz (.tgz), .tar.zst (.tzst), .tar.xz "
		    "(.txz), .tar.bz2 (.tbz2), .tar.lz4 or .zip", target);
		return -1;
	}
	slash = strrchr(target, '/');
	archout_target = xstrdup(target);
	archout_dir = slash == NULL ? xstrdup(".") : slash == target ?
	    xstrdup("/") : xstrndup(target, (size_t)(slash - target));
	archout_base = xstrdup(slash ? slash + 1 : target);
	if (stat(archout_dir, &st) != 0) {
		*cause = xprintf("--output-archive %s: directory %s: %s", target,
		    archout_dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*cause = xprintf("--output-archive %s: %s is not a directory",
		    target, archout_dir);
		return -1;
	}
	if (access(archout_dir, W_OK) != 0) {
		*cause = xprintf("--output-archive %s: cannot write in %s: %s",
		    target, archout_dir, strerror(errno));
		return -1;
	}
	if (lstat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
		*cause = xprintf("--output-archive %s: exists and is not a "
		    "regular file (%s)", target, input_kind(st.st_mode));
		return -1;
	}
	return 0;
}

/* Whether --output-archive was given. */
int
archout_active(void)
{
	return archout_kind != NULL;
}

/*
 * The result directory: outdir (-o) when given, else STATE_DIR/results-HASH,
 * made (0700) when missing.  A string owned by archout.c; exits on failure.
 */
const char *
archout_result_dir(const char *outdir, const char *state_dir)
{
	char		*real, *id;
	uint64_t	 h = 0xcbf29ce484222325ULL;
	const char	*p;

	if (outdir != NULL) {
		archout_rdir = xstrdup(outdir);
		return archout_rdir;
	}
	if ((real = realpath(archout_dir, NULL)) == NULL)
		real = xstrdup(archout_dir);
	id = xprintf("%s/%s", real, archout_base);
	for (p = id; *p != '\0'; p++) {		/* FNV-1a, as the journal's */
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	free(real);
	free(id);
	archout_rdir = xprintf("%s/results-%016llx", state_dir,
	    (unsigned long long)h);
	if (mkdir(archout_rdir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: --output-archive: results directory %s: "
		    "%s\n", cli_prog, archout_rdir, strerror(errno));
		exit(JQ_EXIT_IO);
	}
	archout_own_rdir = 1;
	return archout_rdir;
}

/* The entry name of a result path: relative to the result directory. */
static const char *
archout_entry_name(const char *result)
{
	size_t	 n = strlen(archout_rdir);

	if (strncmp(result, archout_rdir, n) == 0 && result[n] == '/')
		result += n + 1;
	while (*result == '/')
		result++;
	return result;
}

/* A new writer of the target's kind, open on fd.  NULL with *cause. */
static struct archive *
archout_writer(int fd, char **cause)
{
	struct archive	*w = archive_write_new();
	int		 rc = ARCHIVE_OK;

	if (archout_kind->zip)
		rc = archive_write_set_format_zip(w);
	else {
		rc = archive_write_set_format_pax_restricted(w);
		switch (archout_kind->filter) {
		case AF_NONE: break;
		case AF_GZIP: rc = archive_write_add_filter_gzip(w); break;
		case AF_ZSTD: rc = archive_write_add_filter_zstd(w); break;
		case AF_XZ: rc = archive_write_add_filter_xz(w); break;
		case AF_BZIP2: rc = archive_write_add_filter_bzip2(w); break;
		case AF_LZ4: rc = archive_write_add_filter_lz4(w); break;
		}
	}
	/*
	 * Whole pages at a time: libarchive's 10240-byte blocks straddle
	 * pages, and the kernel zeroes each page a write begins in part.
	 * The last block is not padded (a padded .tar.zst is unreadable).
	 */
	if (rc == ARCHIVE_OK)
		rc = archive_write_set_bytes_per_block(w, ARCHOUT_BUF);
	if (rc == ARCHIVE_OK)
		rc = archive_write_set_bytes_in_last_block(w, 1);
	if (rc == ARCHIVE_OK)
		rc = archive_write_open_fd(w, fd);
	if (rc != ARCHIVE_OK) {
		*cause = xprintf("%s: %s", archout_target,
		    archive_error_string(w));
		archive_write_free(w);
		return NULL;
	}
	return w;
}

/*
 * Add job j's tree result (a directory) to w: the directory as "NAME/",
 * what it holds as "NAME/PATH", sorted, as arch_pack packs a tree (file
 * data streamed in bounded blocks, links as stored, never followed).
 * 0, or -1 with *cause.
 */
static int
archout_add_tree(struct archive *w, const struct job *j, char **cause)
{
	const char	*slash = strrchr(j->result, '/');
	char		*dir, *why = NULL;
	int		 dfd, rc;

	dir = slash == NULL ? xstrdup(".") : slash == j->result ?
	    xstrdup("/") : xstrndup(j->result, (size_t)(slash - j->result));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*cause = xprintf("result %s of job %llu: %s: %s", j->result,
		    (unsigned long long)j->id, dir, strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	rc = arch_pack_into(w, dfd, slash == NULL ? j->result : slash + 1,
	    archout_entry_name(j->result), &cli_tree_limits, &why);
	close(dfd);
	if (rc != 0) {
		*cause = xprintf("result %s of job %llu: %s", j->result,
		    (unsigned long long)j->id, why);
		free(why);
	}
	return rc;
}

/* Copy job j's result into w as one entry.  0, or -1 with *cause. */
static int
archout_add(struct archive *w, struct archive_entry *e, const struct job *j,
    char **cause)
{
	struct stat	 st;
	uint64_t	 left;
	ssize_t		 n;
	int		 fd;

	if (lstat(j->result, &st) == 0 && S_ISDIR(st.st_mode))
		return archout_add_tree(w, j, cause);
	if ((fd = open(j->result, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) < 0 || fstat(fd, &st) != 0) {
		*cause = xprintf("result %s of job %llu: %s", j->result,
		    (unsigned long long)j->id, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != j->result_size) {
		*cause = xprintf("result %s of job %llu: %s", j->result,
		    (unsigned long long)j->id, !S_ISREG(st.st_mode) ?
		    "not a regular file" : "its size is not the size stored; "
		    "changed since");
		close(fd);
		return -1;
	}
	archive_entry_clear(e);
	archive_entry_set_pathname(e, archout_entry_name(j->result));
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, st.st_size);
	archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (archive_write_header(w, e) < ARCHIVE_WARN)
		goto archerr;
	for (left = (uint64_t)st.st_size; left > 0; left -= (uint64_t)n) {
		n = read(fd, archout_buf, left < sizeof archout_buf ?
		    (size_t)left : sizeof archout_buf);
		if (n <= 0) {
			*cause = xprintf("result %s of job %llu: %s", j->result,
			    (unsigned long long)j->id, n == 0 ? "shrank while "
			    "being read" : strerror(errno));
			close(fd);
			return -1;
		}
		if (archive_write_data(w, archout_buf, (size_t)n) != n)
			goto archerr;
	}
	close(fd);
	return 0;
archerr:
	*cause = xprintf("%s: %s", archout_target, archive_error_string(w));
	close(fd);
	return -1;
}

/*
 * Write the archive of every done job's result in q: temporary file, fsync,
 * rename, directory fsync.  0, or -1 with *cause (the target untouched, the
 * temporary file removed).
 */
int
archout_write(const struct queue *q, char **cause)
{
	struct archive		*w;
	struct archive_entry	*e;
	const struct job	*j;
	char			*tmp;
	uint64_t		 id, n = 0;
	int			 fd, dirfd, saved;

	if ((dirfd = open(archout_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*cause = xprintf("--output-archive: %s: %s", archout_dir,
		    strerror(errno));
		return -1;
	}
	tmp = xprintf(".%s.jq-partial", archout_base);
	/* the journal's lock keeps a second server off: the name is ours */
	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) < 0) {
		*cause = xprintf("%s/%s: %s", archout_dir, tmp, strerror(errno));
		goto fail;
	}
	if ((w = archout_writer(fd, cause)) == NULL)
		goto fail;
	e = archive_entry_new();
	for (id = 1; id <= q->njobs; id++) {
		j = queue_get(q, id);
		if (j->state != JOB_DONE)
			continue;
		if (archout_add(w, e, j, cause) != 0) {
			archive_entry_free(e);
			archive_write_free(w);
			goto fail;
		}
		n++;
	}
	archive_entry_free(e);
	if (archive_write_close(w) != ARCHIVE_OK) {
		*cause = xprintf("%s: %s", archout_target,
		    archive_error_string(w));
		archive_write_free(w);
		goto fail;
	}
	archive_write_free(w);
	if ((store_sync && fsync(fd) != 0) || close(fd) != 0) {
		saved = errno;
		fd = -1;
		*cause = xprintf("%s/%s: %s", archout_dir, tmp, strerror(saved));
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, archout_base) != 0 ||
	    (store_sync && fsync(dirfd) != 0)) {
		*cause = xprintf("--output-archive %s: %s", archout_target,
		    strerror(errno));
		goto fail;
	}
	close(dirfd);
	free(tmp);
	log_notice("%s: %llu result%s", archout_target,
	    (unsigned long long)n, n == 1 ? "" : "s");
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	close(dirfd);
	free(tmp);
	return -1;
}

/*
 * The archive is in place and the journal gone: remove the results kept
 * in the state directory, then that directory (not -o DIR's results).
 */
void
archout_clean(const struct queue *q)
{
	const struct job	*j;
	char			*why = NULL;
	uint64_t		 id;

	if (!archout_own_rdir)
		return;
	for (id = 1; id <= q->njobs; id++) {
		j = queue_get(q, id);
		if (j->result != NULL && strncmp(j->result, archout_rdir,
		    strlen(archout_rdir)) == 0 &&
		    arch_remove(AT_FDCWD, j->result, &why) != 0) {
			log_warnx("--output-archive: %s", why);
			free(why);
			why = NULL;
		}
	}
	if (rmdir(archout_rdir) != 0 && errno != ENOENT)
		log_warnx("--output-archive: %s: %s", archout_rdir,
		    strerror(errno));
}

/* Free what archout_setup kept. */
void
archout_free(void)
{
	free(archout_target);
	free(archout_dir);
	free(archout_base);
	free(archout_rdir);
	archout_target = archout_dir = archout_base = archout_rdir = NULL;
	archout_kind = NULL;
}
