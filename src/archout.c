/*
 * archout.c: jq-serve --output-archive FILE: every result as an entry of
 * one archive, its format and compression chosen by FILE's extension.
 *
 * The durability rule: results are stored exactly as without the option
 * (store.c, commit.c, the journal's D records), in the result directory:
 * -o DIR when given, else a directory of the server's own in the state
 * directory, STATE_DIR/results-HASH (HASH names the resolved target, so a
 * restarted server finds the same one).  Those files are the results until
 * the archive is complete.  The archive is written from them, in job
 * order, to a temporary file beside the target (".NAME.jq-partial"), while
 * the jobs run: whenever jobs change, the loop hands a thread the results
 * of the done jobs that follow the last one handed over, up to the first
 * job not done (archout_feed; at most ARCHOUT_AHEAD wait), and the thread
 * adds them, asking the kernel every ARCHOUT_KICK bytes to write the file
 * back.  When the run ends, the results not yet written (those after a job
 * that was not done in time: failed, or done late) are added in job order,
 * the file is fsync'd, renamed to FILE, and its directory fsync'd.  Then
 * the journal is emptied (journal_end), then, if the results live in the
 * state directory, they are removed too, and only then is the journal
 * removed and its lock released (journal_unlock): a second server on the
 * list is refused until the last file operation is over, so it never
 * stores results into the directory being removed.  The temporary file
 * is never the durable copy of anything: a run that does not end well
 * removes it, and a restarted server writes it again from the start.
 *
 * So FILE is never a partial archive: a crash before the rename leaves the
 * old FILE (or none) and the journal, and the restarted server resumes the
 * run and writes the archive whole from every result, once each.  A crash
 * after the rename but before the journal is gone writes the same archive
 * again at the next start.  A crash while the results are being removed
 * (the journal already empty) costs a run from scratch, whose archive
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "jq.h"

#define ARCHOUT_BUF	(1024 * 1024)	/* a result read, an archive write */
#define ARCHOUT_AHEAD	16		/* results handed to the writer ahead */
#define ARCHOUT_KICK	(64ULL * 1024 * 1024)	/* bytes between writebacks */
#define ARCHOUT_RM_THREADS 4		/* removing the results kept */

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

/* A done job's result as the writer needs it: a copy, the thread's own. */
struct archout_item {
	TAILQ_ENTRY(archout_item) entry;
	uint64_t	 id;
	char		*result;
	uint64_t	 size;		/* result_size, for a file */
};
TAILQ_HEAD(archout_items, archout_item);

/*
 * The writer: the loop hands it results in job order (archout_feed), the
 * thread adds them to the temporary archive.  The lock guards the list and
 * the flags; the archive, the descriptors and archout_err belong to the
 * thread until archout_finish has joined it.
 */
static pthread_t		 archout_thread;
static int			 archout_thread_on;
static pthread_mutex_t		 archout_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 archout_cond = PTHREAD_COND_INITIALIZER;
static struct archout_items	 archout_todo =
    TAILQ_HEAD_INITIALIZER(archout_todo);
static size_t			 archout_ntodo;
static int			 archout_closing;	/* no more items */
static int			 archout_abandon;	/* drop what is left */
static uint64_t			 archout_next = 1;	/* loop: next job */
static struct archive		*archout_w;
static struct archive_entry	*archout_e;
static int			 archout_fd = -1, archout_dirfd = -1;
static char			*archout_tmp;	/* ".NAME.jq-partial" */
static char			*archout_err;	/* the first failure */
static uint64_t			 archout_n;	/* entries written */
static uint64_t			 archout_unflushed;	/* bytes since the
							 * last writeback */

/*
 * Add a tree result (a directory) to w: the directory as "NAME/", what it
 * holds as "NAME/PATH", sorted, as arch_pack packs a tree (file data
 * streamed in bounded blocks, links as stored, never followed).
 * 0, or -1 with *cause.
 */
static int
archout_add_tree(struct archive *w, const struct archout_item *it,
    char **cause)
{
	const char	*slash = strrchr(it->result, '/');
	char		*dir, *why = NULL;
	int		 dfd, rc;

	dir = slash == NULL ? xstrdup(".") : slash == it->result ?
	    xstrdup("/") : xstrndup(it->result, (size_t)(slash - it->result));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*cause = xprintf("result %s of job %llu: %s: %s", it->result,
		    (unsigned long long)it->id, dir, strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	rc = arch_pack_into(w, dfd, slash == NULL ? it->result : slash + 1,
	    archout_entry_name(it->result), &cli_tree_limits, &why);
	close(dfd);
	if (rc != 0) {
		*cause = xprintf("result %s of job %llu: %s", it->result,
		    (unsigned long long)it->id, why);
		free(why);
	}
	return rc;
}

/* Copy a result into w as one entry.  0, or -1 with *cause. */
static int
archout_add(struct archive *w, struct archive_entry *e,
    const struct archout_item *it, char **cause)
{
	struct stat	 st;
	uint64_t	 left;
	ssize_t		 n;
	int		 fd;

	if (lstat(it->result, &st) == 0 && S_ISDIR(st.st_mode))
		return archout_add_tree(w, it, cause);
	if ((fd = open(it->result, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) < 0 || fstat(fd, &st) != 0) {
		*cause = xprintf("result %s of job %llu: %s", it->result,
		    (unsigned long long)it->id, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != it->size) {
		*cause = xprintf("result %s of job %llu: %s", it->result,
		    (unsigned long long)it->id, !S_ISREG(st.st_mode) ?
		    "not a regular file" : "its size is not the size stored; "
		    "changed since");
		close(fd);
		return -1;
	}
	archive_entry_clear(e);
	archive_entry_set_pathname(e, archout_entry_name(it->result));
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
			*cause = xprintf("result %s of job %llu: %s", it->result,
			    (unsigned long long)it->id, n == 0 ? "shrank while "
			    "being read" : strerror(errno));
			close(fd);
			return -1;
		}
		if (archive_write_data(w, archout_buf, (size_t)n) != n)
			goto archerr;
	}
	close(fd);
	archout_unflushed += (uint64_t)st.st_size;
	return 0;
archerr:
	*cause = xprintf("%s: %s", archout_target, archive_error_string(w));
	close(fd);
	return -1;
}

/*
 * Open the temporary archive beside the target, once, and its writer.
 * 0, or -1 with *cause.
 */
static int
archout_open(char **cause)
{
	if (archout_w != NULL)
		return 0;
	if (archout_dirfd < 0 && (archout_dirfd = open(archout_dir,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*cause = xprintf("--output-archive: %s: %s", archout_dir,
		    strerror(errno));
		return -1;
	}
	if (archout_tmp == NULL)
		archout_tmp = xprintf(".%s.jq-partial", archout_base);
	/* the journal's lock keeps a second server off: the name is ours */
	if ((archout_fd = openat(archout_dirfd, archout_tmp, O_WRONLY |
	    O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
		*cause = xprintf("%s/%s: %s", archout_dir, archout_tmp,
		    strerror(errno));
		return -1;
	}
	if ((archout_w = archout_writer(archout_fd, cause)) == NULL)
		return -1;
	archout_e = archive_entry_new();
	return 0;
}

/*
 * Add one result to the archive being written, unless an earlier one
 * failed (archout_err keeps the first failure).  Every ARCHOUT_KICK bytes
 * the kernel is asked to start writing the file back, so that the final
 * fsync has little left to do.
 */
static void
archout_put(const struct archout_item *it)
{
	if (archout_err != NULL || archout_open(&archout_err) != 0)
		return;
	if (archout_add(archout_w, archout_e, it, &archout_err) != 0)
		return;
	archout_n++;
	if (archout_unflushed >= ARCHOUT_KICK && store_sync) {
		(void)sync_file_range(archout_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		archout_unflushed = 0;
	}
}

/* Free an item. */
static void
archout_item_free(struct archout_item *it)
{
	free(it->result);
	free(it);
}

/* The writer thread: add each result handed over, until told to stop. */
static void *
archout_main(void *arg)
{
	struct archout_item	*it;

	(void)arg;
	pthread_mutex_lock(&archout_lock);
	for (;;) {
		while (TAILQ_EMPTY(&archout_todo) && !archout_closing)
			pthread_cond_wait(&archout_cond, &archout_lock);
		if ((it = TAILQ_FIRST(&archout_todo)) == NULL)
			break;
		TAILQ_REMOVE(&archout_todo, it, entry);
		archout_ntodo--;
		if (archout_abandon) {
			archout_item_free(it);
			continue;
		}
		pthread_mutex_unlock(&archout_lock);
		archout_put(it);
		archout_item_free(it);
		pthread_mutex_lock(&archout_lock);
	}
	pthread_mutex_unlock(&archout_lock);
	return NULL;
}

/* A copy of done job j's result, to be written. */
static struct archout_item *
archout_item_new(const struct job *j)
{
	struct archout_item	*it = xcalloc(1, sizeof *it);

	it->id = j->id;
	it->result = xstrdup(j->result);
	it->size = j->result_size;
	return it;
}

/*
 * In the loop, whenever jobs may have changed (server_check): hand the
 * writer thread the results of the done jobs that follow the last one
 * handed over, in job order, stopping at the first job not done (it may
 * still be done later; archout_write takes what is left) and when
 * ARCHOUT_AHEAD wait.  So the archive is written while jobs run, from
 * results already durable, and holds them in job order as before.
 */
void
archout_feed(const struct queue *q)
{
	struct archout_item	*it;
	const struct job	*j;
	int			 rc;

	if (archout_kind == NULL || archout_closing)
		return;
	while (archout_next <= q->njobs && archout_ntodo < ARCHOUT_AHEAD) {
		j = queue_get(q, archout_next);
		if (j->state != JOB_DONE || j->committing)	/* not in place */
			return;
		if (!archout_thread_on) {
			if ((rc = pthread_create(&archout_thread, NULL,
			    archout_main, NULL)) != 0) {
				log_warnx("--output-archive: no writer thread "
				    "(%s): the archive is written at the end",
				    strerror(rc));
				archout_closing = 1;
				return;
			}
			archout_thread_on = 1;
		}
		it = archout_item_new(j);
		pthread_mutex_lock(&archout_lock);
		TAILQ_INSERT_TAIL(&archout_todo, it, entry);
		archout_ntodo++;
		pthread_cond_signal(&archout_cond);
		pthread_mutex_unlock(&archout_lock);
		archout_next++;
	}
}

/* Stop the writer thread (dropping what waits if abandon), and join it. */
static void
archout_join(int abandon)
{
	pthread_mutex_lock(&archout_lock);
	archout_closing = 1;
	archout_abandon |= abandon;
	pthread_cond_signal(&archout_cond);
	pthread_mutex_unlock(&archout_lock);
	if (archout_thread_on)
		pthread_join(archout_thread, NULL);
	archout_thread_on = 0;
}

/* Drop the temporary archive: its writer, its file. */
static void
archout_discard(void)
{
	if (archout_e != NULL)
		archive_entry_free(archout_e);
	archout_e = NULL;
	if (archout_w != NULL)
		archive_write_free(archout_w);
	archout_w = NULL;
	if (archout_fd >= 0) {
		close(archout_fd);
		(void)unlinkat(archout_dirfd, archout_tmp, 0);
	}
	archout_fd = -1;
}

/*
 * The run is over: add the done jobs' results not yet written (those after
 * the first job that was not done when the writer last looked), then close
 * the temporary file, fsync it, rename it to the target, fsync the
 * directory.  0, or -1 with *cause (the target untouched, the temporary
 * file removed).
 */
int
archout_write(const struct queue *q, char **cause)
{
	struct archout_item	 it;
	const struct job	*j;
	int			 saved;

	archout_join(0);
	for (; archout_err == NULL && archout_next <= q->njobs; archout_next++) {
		j = queue_get(q, archout_next);
		if (j->state != JOB_DONE)
			continue;
		it.id = j->id;
		it.result = j->result;
		it.size = j->result_size;
		archout_put(&it);
	}
	if (archout_err == NULL)
		(void)archout_open(&archout_err);	/* no result at all */
	if (archout_err != NULL) {
		*cause = archout_err;
		archout_err = NULL;
		goto fail;
	}
	archive_entry_free(archout_e);
	archout_e = NULL;
	if (archive_write_close(archout_w) != ARCHIVE_OK) {
		*cause = xprintf("%s: %s", archout_target,
		    archive_error_string(archout_w));
		goto fail;
	}
	archive_write_free(archout_w);
	archout_w = NULL;
	if ((store_sync && fsync(archout_fd) != 0) || close(archout_fd) != 0) {
		saved = errno;
		archout_fd = -1;
		*cause = xprintf("%s/%s: %s", archout_dir, archout_tmp,
		    strerror(saved));
		(void)unlinkat(archout_dirfd, archout_tmp, 0);
		return -1;
	}
	archout_fd = -1;
	if (renameat(archout_dirfd, archout_tmp, archout_dirfd,
	    archout_base) != 0 || (store_sync && fsync(archout_dirfd) != 0)) {
		*cause = xprintf("--output-archive %s: %s", archout_target,
		    strerror(errno));
		(void)unlinkat(archout_dirfd, archout_tmp, 0);
		return -1;
	}
	log_notice("%s: %llu result%s", archout_target,
	    (unsigned long long)archout_n, archout_n == 1 ? "" : "s");
	return 0;
fail:
	archout_discard();
	return -1;
}

/* The results to remove, shared by the removing threads. */
struct archout_rm {
	pthread_mutex_t	 lock;
	const struct queue *q;
	uint64_t	 next;		/* the next job id to look at */
	uint64_t	 failed;
	char		*first;		/* the first failure */
};

/* A removing thread: take the next result in the state directory, remove it. */
static void *
archout_rm_main(void *arg)
{
	struct archout_rm	*rm = arg;
	const struct job	*j;
	char			*why = NULL;
	size_t			 rlen = strlen(archout_rdir);

	for (;;) {
		pthread_mutex_lock(&rm->lock);
		j = rm->next <= rm->q->njobs ? queue_get(rm->q, rm->next++) :
		    NULL;
		pthread_mutex_unlock(&rm->lock);
		if (j == NULL)
			return NULL;
		if (j->result == NULL || strncmp(j->result, archout_rdir,
		    rlen) != 0 || arch_remove(AT_FDCWD, j->result, &why) == 0)
			continue;
		pthread_mutex_lock(&rm->lock);
		rm->failed++;
		if (rm->first == NULL) {
			rm->first = why;
			why = NULL;
		}
		pthread_mutex_unlock(&rm->lock);
		free(why);
		why = NULL;
	}
}

/*
 * The archive is in place and the journal emptied, still locked: remove
 * the results kept in the state directory, then that directory (not -o
 * DIR's results).
 * ARCHOUT_RM_THREADS threads remove them at once: an unlink waits on the
 * file system (a freed extent, a discard), and several waits overlap.
 * Nothing runs meanwhile (the loop is over): the queue is only read.
 */
void
archout_clean(const struct queue *q)
{
	struct archout_rm	 rm;
	pthread_t		 t[ARCHOUT_RM_THREADS];
	int			 i, n = 0;

	if (!archout_own_rdir)
		return;
	memset(&rm, 0, sizeof rm);
	pthread_mutex_init(&rm.lock, NULL);
	rm.q = q;
	rm.next = 1;
	for (i = 1; i < ARCHOUT_RM_THREADS; i++)
		if (pthread_create(&t[n], NULL, archout_rm_main, &rm) == 0)
			n++;
	(void)archout_rm_main(&rm);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&rm.lock);
	if (rm.failed > 0) {
		log_warnx("--output-archive: %s%s", rm.first, rm.failed > 1 ?
		    " (and more)" : "");
		log_warnx("--output-archive: %llu result%s not removed",
		    (unsigned long long)rm.failed, rm.failed == 1 ? "" : "s");
	}
	free(rm.first);
	if (rmdir(archout_rdir) != 0 && errno != ENOENT)
		log_warnx("--output-archive: %s: %s", archout_rdir,
		    strerror(errno));
}

/* Free what archout_setup kept. */
void
archout_free(void)
{
	struct archout_item	*it;

	archout_join(1);
	archout_discard();
	while ((it = TAILQ_FIRST(&archout_todo)) != NULL) {
		TAILQ_REMOVE(&archout_todo, it, entry);
		archout_item_free(it);
	}
	archout_ntodo = 0;
	if (archout_dirfd >= 0)
		close(archout_dirfd);
	archout_dirfd = -1;
	free(archout_tmp);
	free(archout_err);
	archout_tmp = archout_err = NULL;
	free(archout_target);
	free(archout_dir);
	free(archout_base);
	free(archout_rdir);
	archout_target = archout_dir = archout_base = archout_rdir = NULL;
	archout_kind = NULL;
}
