/*
 * spool.c: jobs added at run time (ADD): their data, kept in the state
 * directory; their names, which are their identity; where their results
 * go; and the limits on what the spool holds.
 *
 * The data of an added job lives in STATE_DIR/spool-HASH/<id> (HASH is the
 * journal's, so one spool belongs to one journal and is covered by its
 * lock), mode 0600.  It arrives in a temporary file ".add-PID-N.tmp" opened
 * relative to the spool's directory descriptor with O_EXCL | O_NOFOLLOW,
 * and becomes the job only through these durable steps, run by the commit
 * thread (commit.c) in this order:
 *
 *   1. the file is fdatasync'd (spool_commit_file);
 *   2. it is renamed to the next id (spool_name_file), and the directory is
 *      fsync'd (spool_sync_dir);
 *   3. the journal's "A" record is appended and fdatasync'd;
 *   4. only then is the job made in the queue (spool_adopt) and the adder
 *      told its id.
 *
 * An archive entry's data (archsrc.c, add->unsynced) skips the fdatasync
 * of 1, the fsync of 2 and, in a batch of such entries only, the fdatasync
 * of 3 (journal_add_jobs): the archive holds it durably.  So with
 * --archive, spool_settle checks the CRC-32C of every unfinished job's
 * file, and a job whose data is lost or damaged fails until archsrc.c
 * finds its entry again and spool_refill puts the data back.
 *
 * A crash before 3 leaves a temporary file or a file named by an id that no
 * record names: both are removed at the next start (spool_settle), so an
 * ADD that was not acknowledged leaves nothing.  The commit thread alone
 * gives out ids (spool_next), one per durable record, so ids stay dense even
 * when an add fails half-way: a failed add gives its id to the next one.
 *
 * The data is sent to workers exactly as an input file is (input.c opens
 * it, pinned: the job's in_dirfd is the spool's directory, in_name its
 * id), and the CRC-32C recorded at ADD is checked against what was sent.
 * A job's data is removed once its result is stored durably; the data of a
 * failed job is kept, so that RETRY and --retry-failed can run it again.
 *
 * Results of added jobs go to the result directory of the server (-o DIR,
 * else the directory jq-serve started in), pinned at start, under the name
 * made safe (spool_safe_name) and passed through the result template.  A
 * result must not be another job's result or an input there: an index of
 * the results and inputs in that directory (built at the first ADD) finds
 * a clash, and the ADD is refused.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define SPOOL_TMP_PREFIX	".add-"
#define SPOOL_VERIFY_BUF	(64 * 1024)

TAILQ_HEAD(spool_add_list, spool_add);

static struct spool_limits	 spool_lim;
static const char		*spool_outdir;	/* -o DIR, or NULL: "." */
static const char		*spool_tmpl = "{name}.result";
static char			*spool_rdir_err;	/* why results cannot go there */
static dev_t			 spool_rdev;	/* the result directory, pinned */
static ino_t			 spool_rino;
static long			 spool_name_max = NAME_MAX;
static char			*spool_dir;	/* STATE_DIR/spool-HASH */
static int			 spool_dirfd = -1;
static unsigned			 spool_serial;	/* temporary file names */
static long			 spool_pid;	/* in them; asked once */
static uint64_t			 spool_bytes;	/* data held for jobs */
static uint64_t			 spool_files;
static uint64_t			 spool_pending_bytes;	/* adds in flight */
static uint64_t			 spool_npending;
static struct spool_add_list	 spool_pending =
    TAILQ_HEAD_INITIALIZER(spool_pending);
static struct queue_index	 spool_results;	/* base name -> id << 1 | input */
static int			 spool_indexed;
static uint64_t			 spool_next;	/* the next id; commit thread */
static unsigned			 spool_kill_at;	/* JQ_TEST_SPOOL_KILL */
static unsigned			 spool_commits;
static int			 spool_dir_dirty;	/* a synced add named;
							 * commit thread */
static int			 spool_verify;	/* check CRCs at settle */
static uint64_t			*spool_lost;	/* ids failed at settle */
static size_t			 spool_nlost;

/*
 * Where results of added jobs go (outdir, or NULL for the directory we
 * started in), their template, and the limits.  The directory is pinned
 * here, once; if it cannot be, every ADD is refused saying why.
 */
void
spool_setup(const char *outdir, const char *tmpl,
    const struct spool_limits *lim)
{
	const char	*dir = outdir ? outdir : ".";
	struct stat	 st;
	long		 max;
	int		 fd;

	spool_outdir = outdir;
	if (tmpl != NULL)
		spool_tmpl = tmpl;
	spool_lim = *lim;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		spool_rdir_err = xprintf("result directory %s: %s", dir,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	spool_rdev = st.st_dev;
	spool_rino = st.st_ino;
	if ((max = fpathconf(fd, _PC_NAME_MAX)) > 0)
		spool_name_max = max;
	close(fd);
}

/*
 * What names the queue of a server with no files, for the journal: the
 * resolved result directory and the result template (a new string).
 */
char *
spool_identity(void)
{
	char	*real, *id;

	if ((real = realpath(spool_outdir ? spool_outdir : ".", NULL)) == NULL)
		real = xstrdup(spool_outdir ? spool_outdir : ".");
	id = xprintf("added jobs: %s/%s", real, spool_tmpl);
	free(real);
	return id;
}

/* Read JQ_TEST_SPOOL_KILL, the fault tests' seam (see spool_test_kill). */
static void
spool_seam(void)
{
	const char	*env;

	if ((env = getenv("JQ_TEST_SPOOL_KILL")) != NULL &&
	    parse_uint(env, 1, UINT32_MAX, &spool_kill_at) == 0)
		log_warnx("JQ_TEST_SPOOL_KILL=%u: the server kills itself when "
		    "add %u is spooled but not journaled (a fault test)",
		    spool_kill_at, spool_kill_at);
}

/*
 * Open the spool directory spool_dir, making it first (mode 0700, its
 * name synced in the state directory) if make is set; it must be ours and
 * writable by nobody else.  0, or -1 with *cause (a missing directory
 * without make is not an error: 0, and no spool yet).
 */
static int
spool_dir_open(int make, char **cause)
{
	const char	*dir = spool_dir;
	struct stat	 st;
	char		*parent;

	if (make) {
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			*cause = xprintf("spool directory %s: %s", dir,
			    strerror(errno));
			return -1;
		}
		parent = xstrndup(dir, (size_t)(strrchr(dir, '/') - dir));
		if (store_sync && util_fsync_dir(parent) != 0) {
			*cause = xprintf("%s: fsync: %s", parent,
			    strerror(errno));
			free(parent);
			return -1;
		}
		free(parent);
	}
	if ((spool_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 && errno == ENOENT && !make)
		return 0;
	if (spool_dirfd < 0 || fstat(spool_dirfd, &st) != 0) {
		*cause = xprintf("spool directory %s: %s", dir, errno == ELOOP ?
		    "is a symbolic link; refusing to follow it" :
		    strerror(errno));
		if (spool_dirfd >= 0)
			close(spool_dirfd);
		spool_dirfd = -1;
		return -1;
	}
	if ((st.st_uid != geteuid() && st.st_uid != 0) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		*cause = xprintf("spool directory %s is owned by uid %lu or "
		    "writable by others; refusing to trust it", dir,
		    (unsigned long)st.st_uid);
		close(spool_dirfd);
		spool_dirfd = -1;
		return -1;
	}
	return 0;
}

/*
 * The spool of this journal is the directory dir (a path with a '/'):
 * opened now if it exists, made at the first ADD otherwise, so that a
 * server that is never sent one leaves nothing behind.  Called with the
 * journal's lock held.
 */
int
spool_open(const char *dir, char **cause)
{
	spool_seam();
	free(spool_dir);
	spool_dir = xstrdup(dir);
	return spool_dir_open(0, cause);
}

/*
 * The name of an added job made safe as a file name: '/', '%', control
 * bytes and a leading '.' become %XX (so no two names give one result,
 * and none leaves the directory or hides in it).  A new string.
 */
char *
spool_safe_name(const char *name, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;
	char			*out = xmalloc(3 * len + 1), *p = out;
	size_t			 i;

	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (c == '/' || c == '%' || c < 0x20 || c == 0x7f ||
		    (i == 0 && c == '.')) {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else
			*p++ = (char)c;
	}
	*p = '\0';
	return out;
}

/*
 * The result path of an added job named name (len bytes), or NULL with
 * *why (for ERR BADNAME) when no safe result name comes of it.
 */
static char *
spool_result_path(const char *name, size_t len, char **why)
{
	char	*safe, *base, *cause = NULL, *path;

	safe = spool_safe_name(name, len);
	base = serve_result_name(spool_tmpl, safe, &cause);
	free(safe);
	if (base == NULL) {
		*why = cause;
		return NULL;
	}
	if (strlen(base) > (size_t)spool_name_max) {
		*why = xprintf("its result name would be %zu bytes, longer "
		    "than the %ld its directory allows", strlen(base),
		    spool_name_max);
		free(base);
		return NULL;
	}
	path = spool_outdir ? xprintf("%s/%s", spool_outdir, base) :
	    xstrdup(base);
	free(base);
	return path;
}

/* The final name in a path. */
static const char *
spool_base(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Whether index entry v of queue arg is the file named key there. */
static int
spool_result_eq(void *arg, uint32_t v, const void *key)
{
	const struct job	*j = queue_get(arg, v >> 1);

	if (j == NULL)
		return 0;
	if (v & 1)
		return j->in_name != NULL && strcmp(j->in_name, key) == 0;
	return strcmp(spool_base(j->result), key) == 0;
}

/* Put job j's result (and input, if in the result directory) in the index. */
static void
spool_index_job(const struct job *j, dev_t *ldev, ino_t *lino, int *lfd)
{
	struct stat	 st;

	if (j->rdir_dev == spool_rdev && j->rdir_ino == spool_rino)
		queue_index_put(&spool_results, queue_hash(spool_base(j->result),
		    strlen(spool_base(j->result))), (uint32_t)j->id << 1);
	if (j->origin != JOB_FILE || j->in_name == NULL || j->in_dirfd < 0)
		return;
	if (j->in_dirfd != *lfd) {	/* jobs in one directory share its fd */
		if (fstat(j->in_dirfd, &st) != 0)
			return;
		*lfd = j->in_dirfd;
		*ldev = st.st_dev;
		*lino = st.st_ino;
	}
	if (*ldev == spool_rdev && *lino == spool_rino)
		queue_index_put(&spool_results, queue_hash(j->in_name,
		    strlen(j->in_name)), (uint32_t)j->id << 1 | 1);
}

/*
 * Build the index of results and inputs in the result directory, at the
 * first ADD; make room for n more.  0, or -1 with errno.
 */
static int
spool_index(struct queue *q, size_t n)
{
	uint64_t	 id;
	dev_t		 ldev = 0;
	ino_t		 lino = 0;
	int		 lfd = -1;

	if (queue_index_reserve(&spool_results, (spool_indexed ? 0 :
	    2 * q->njobs) + n) != 0)
		return -1;
	if (spool_indexed)
		return 0;
	for (id = 1; id <= q->njobs; id++)
		spool_index_job(queue_get(q, id), &ldev, &lino, &lfd);
	spool_indexed = 1;
	return 0;
}

/* The add in flight named name, or NULL. */
static struct spool_add *
spool_pending_name(const char *name, size_t len)
{
	struct spool_add	*a;

	TAILQ_FOREACH(a, &spool_pending, entry)
		if (a->namelen == len && memcmp(a->name, name, len) == 0)
			return a;
	return NULL;
}

/* A new add of name (len bytes, no NUL), for spool_check. */
struct spool_add *
spool_add_new(const char *name, size_t len, int if_new)
{
	struct spool_add	*a = xcalloc(1, sizeof *a);

	a->name = xmalloc(len + 1);
	memcpy(a->name, name, len);
	a->name[len] = '\0';
	a->namelen = len;
	a->if_new = if_new;
	/* the default queue, priority 0, until ADD's queue= says otherwise */
	snprintf(a->queue, sizeof a->queue, "%s", QUEUE_DEFAULT);
	return a;
}

/* Free an add (never one in flight). */
void
spool_add_free(struct spool_add *a)
{
	if (a == NULL)
		return;
	free(a->name);
	free(a->result);
	free(a->after);
	free(a);
}

/*
 * May add a be made, size bytes long (UINT64_MAX: not known yet)?  Works
 * out its result path.  SPOOL_OK; SPOOL_EXISTS with *existing, a job by
 * that name; SPOOL_PENDING with *pending, an add of that name in flight;
 * or SPOOL_REFUSED with *err (an ERR_* code) and *errmsg.  Asked when the
 * ADD comes and again when its data is in, since either may have changed.
 */
enum spool_verdict
spool_check(struct queue *q, struct spool_add *a, uint64_t size,
    struct job **existing, struct spool_add **pending, const char **err,
    char **errmsg)
{
	struct spool_add	*p;
	struct job		*j;
	const char		*base;
	uint64_t		 held;
	uint32_t		 v;
	char			*why = NULL;
	int			 e;

	*err = NULL;
	if (spool_dir == NULL) {
		*err = ERR_IO;
		*errmsg = xstrdup("this server keeps no spool for added jobs");
		return SPOOL_REFUSED;
	}
	if (spool_dirfd < 0 && spool_dir_open(1, &why) != 0) {
		*err = ERR_IO;
		*errmsg = xprintf("cannot keep added jobs: %s", why);
		free(why);
		return SPOOL_REFUSED;
	}
	if (spool_rdir_err != NULL) {
		*err = ERR_IO;
		*errmsg = xstrdup(spool_rdir_err);
		return SPOOL_REFUSED;
	}
	if (watchdir_owns_name(a->name, a->namelen)) {
		*err = ERR_BADNAME;
		*errmsg = xprintf("names under the watched directory %s are "
		    "its files'", watchdir_real());
		return SPOOL_REFUSED;
	}
	if ((*existing = queue_find_name(q, a->name, a->namelen, &e)) != NULL)
		return SPOOL_EXISTS;
	if ((*pending = spool_pending_name(a->name, a->namelen)) != NULL)
		return SPOOL_PENDING;
	if (e != 0 || spool_index(q, spool_npending + 1) != 0 ||
	    queue_reserve(q, spool_npending + 1) != 0) {
		*err = ERR_FULL;
		*errmsg = xprintf("cannot add a job: %s", strerror(e ? e : errno));
		return SPOOL_REFUSED;
	}
	if (a->result == NULL &&
	    (a->result = spool_result_path(a->name, a->namelen, &why)) == NULL) {
		*err = ERR_BADNAME;
		*errmsg = xprintf("no safe result name: %s", why);
		free(why);
		return SPOOL_REFUSED;
	}
	base = spool_base(a->result);
	if ((v = queue_index_find(&spool_results, queue_hash(base,
	    strlen(base)), spool_result_eq, q, base)) != 0) {
		j = queue_get(q, v >> 1);
		*err = ERR_EXISTS;
		*errmsg = xprintf("its result %s would %s of job %llu (%s)",
		    a->result, (v & 1) ? "overwrite the input" : "be the result",
		    (unsigned long long)j->id, j->path);
		return SPOOL_REFUSED;
	}
	TAILQ_FOREACH(p, &spool_pending, entry)
		if (strcmp(spool_base(p->result), base) == 0) {
			*err = ERR_EXISTS;
			*errmsg = xprintf("its result %s would be the result of "
			    "a job being added", a->result);
			return SPOOL_REFUSED;
		}
	if (size != UINT64_MAX && size > spool_lim.max_add) {
		*err = ERR_TOOBIG;
		*errmsg = xprintf("%llu bytes is over the limit of %llu for an "
		    "added job (--max-add-size); nothing added",
		    (unsigned long long)size,
		    (unsigned long long)spool_lim.max_add);
		return SPOOL_REFUSED;
	}
	if (spool_files + spool_npending >= spool_lim.max_files) {
		*err = ERR_FULL;
		*errmsg = xprintf("the spool holds %llu jobs' data, its limit "
		    "(--max-spool-jobs); nothing added", (unsigned long long)
		    (spool_files + spool_npending));
		return SPOOL_REFUSED;
	}
	held = spool_bytes + spool_pending_bytes;
	if (size != UINT64_MAX && (held > spool_lim.max_bytes ||
	    size > spool_lim.max_bytes - held)) {
		*err = ERR_FULL;
		*errmsg = xprintf("the spool holds %llu bytes; %llu more would "
		    "pass its limit of %llu (--max-spool); nothing added",
		    (unsigned long long)(spool_bytes + spool_pending_bytes),
		    (unsigned long long)size,
		    (unsigned long long)spool_lim.max_bytes);
		return SPOOL_REFUSED;
	}
	return SPOOL_OK;
}

/* The most bytes one added job may hold (--max-add-size). */
uint64_t
spool_max_add(void)
{
	return spool_lim.max_add;
}

/* Add a is in flight: its name and result are taken until it lands. */
void
spool_pend(struct spool_add *a)
{
	TAILQ_INSERT_TAIL(&spool_pending, a, entry);
	spool_npending++;
	spool_pending_bytes += a->size;
}

/* Add a has landed (or failed): it is no longer in flight. */
void
spool_unpend(struct spool_add *a)
{
	TAILQ_REMOVE(&spool_pending, a, entry);
	spool_npending--;
	spool_pending_bytes -= a->size;
}

/* The add in flight after a (NULL: the first), or NULL (deps.c walks them). */
const struct spool_add *
spool_pending_next(const struct spool_add *a)
{
	return a == NULL ? TAILQ_FIRST(&spool_pending) : TAILQ_NEXT(a, entry);
}

/* Adds in flight (their jobs are not in the queue yet). */
uint64_t
spool_inflight(void)
{
	return spool_npending;
}

/*
 * Open a temporary file for an ADD's data in the spool: st as store.c's
 * (its own descriptor of the directory), so store_write and store_abort
 * work on it.  0, or -1 with *cause.
 */
int
spool_begin(struct store *st, char **cause)
{
	int	 tries;

	memset(st, 0, sizeof *st);
	st->fd = -1;
	if ((st->dirfd = fcntl(spool_dirfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		*cause = xprintf("spool %s: %s", spool_dir, strerror(errno));
		return -1;
	}
	if (spool_pid == 0)
		spool_pid = (long)getpid();
	for (tries = 0; tries < 100; tries++) {
		snprintf(st->tmpname, sizeof st->tmpname, SPOOL_TMP_PREFIX
		    "%ld-%u.tmp", spool_pid, spool_serial++);
		st->fd = openat(st->dirfd, st->tmpname, O_WRONLY | O_CREAT |
		    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (st->fd >= 0 || errno != EEXIST)
			break;
	}
	if (st->fd < 0) {
		*cause = xprintf("spool %s: %s", spool_dir, strerror(errno));
		close(st->dirfd);
		st->dirfd = -1;
		return -1;
	}
	st->final = st->tmpname;
	return 0;
}

/*
 * Commit thread: make an add's data durable (fdatasync) and note the
 * file's identity in a.  On failure the file is removed.
 */
int
spool_commit_file(struct store *st, struct spool_add *a, char **cause)
{
	struct stat	 sb;
	const char	*what = "fdatasync";

	if (store_sync && !a->unsynced && fdatasync(st->fd) != 0)
		goto fail;
	what = "fstat";
	if (fstat(st->fd, &sb) != 0)
		goto fail;
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	a->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
	    sb.st_mtim.tv_nsec;
	what = "close";
	if (close(st->fd) != 0) {
		st->fd = -1;
		goto fail;
	}
	st->fd = -1;
	return 0;
fail:
	*cause = xprintf("spooling the data: %s: %s", what, strerror(errno));
	store_abort(st);
	return -1;
}

/* Commit thread: the id the next durable add gets. */
uint64_t
spool_next_id(void)
{
	return spool_next;
}

/* Commit thread: n adds were journaled; their ids are given. */
void
spool_took_ids(uint64_t n)
{
	spool_next += n;
}

/*
 * Commit thread: give an add's file its final name, the id it gets.  On
 * failure the file is removed.
 */
int
spool_name_file(struct store *st, struct spool_add *a, uint64_t id,
    char **cause)
{
	a->id = id;
	if (!a->unsynced)
		spool_dir_dirty = 1;
	snprintf(a->idname, sizeof a->idname, "%llu", (unsigned long long)id);
	if (renameat2(st->dirfd, st->tmpname, st->dirfd, a->idname,
	    RENAME_NOREPLACE) != 0) {
		*cause = xprintf("spooling the data: naming it %s: %s",
		    a->idname, strerror(errno));
		store_abort(st);
		return -1;
	}
	return 0;
}

/*
 * Commit thread: make the names given so far durable (fsync the spool);
 * nothing to do when they are all unsynced archive entries'.
 */
int
spool_sync_dir(char **cause)
{
	if (!spool_dir_dirty)
		return 0;
	spool_dir_dirty = 0;
	if (store_sync && fsync(spool_dirfd) != 0) {
		*cause = xprintf("spool %s: fsync: %s", spool_dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Commit thread: an add named by spool_name_file failed after all. */
void
spool_unname(struct store *st, struct spool_add *a)
{
	unlinkat(st->dirfd, a->idname, 0);
	store_close(st);
}

/*
 * The fault tests' seam: with JQ_TEST_SPOOL_KILL=N, the commit thread kills
 * the server (SIGKILL, as a crash) when the Nth add's data is durable and
 * named, before its journal record: the moment between spool and journal.
 */
void
spool_test_kill(void)
{
	if (spool_kill_at != 0 && ++spool_commits == spool_kill_at)
		raise(SIGKILL);
}

/* Pin job j's data: the spool file named by its id, now identified by st. */
static void
spool_pin(struct job *j, const struct stat *st)
{
	free(j->in_name);
	j->in_name = xprintf("%llu", (unsigned long long)j->id);
	j->in_dirfd = spool_dirfd;
	j->in_dev = st->st_dev;
	j->in_ino = st->st_ino;
	j->in_size = (uint64_t)st->st_size;
	j->in_mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
}

/*
 * The job j (just made from add a, its id a->id) is an added one: pin its
 * data, index its result, count its bytes.
 */
void
spool_adopt(struct job *j, const struct spool_add *a)
{
	struct stat	 st;
	dev_t		 ldev = 0;
	ino_t		 lino = 0;
	int		 lfd = -1;

	memset(&st, 0, sizeof st);
	st.st_dev = a->dev;
	st.st_ino = a->ino;
	st.st_size = (off_t)a->size;
	st.st_mtim.tv_sec = (time_t)(a->mtime_ns / 1000000000);
	st.st_mtim.tv_nsec = (long)(a->mtime_ns % 1000000000);
	j->origin = JOB_SPOOL;
	j->data_crc = a->crc;
	j->rdir_dev = spool_rdev;
	j->rdir_ino = spool_rino;
	spool_pin(j, &st);
	spool_bytes += a->size;
	spool_files++;
	if (spool_indexed)
		spool_index_job(j, &ldev, &lino, &lfd);
}

/*
 * Journal replay: the record "A id encname size crc" adds a job to q, in
 * named queue qix with priority prio (its q= and p=, journal.c).
 * Its data is pinned if the spool file is there with that size; if not,
 * spool_settle decides what that means once every record is read.  0, or
 * -1 if the record does not fit (the id is not the next one, a field is
 * malformed); -2 with *cause when the name gives no result any more.
 */
int
spool_recover(struct queue *q, const char *id, char *encname,
    const char *size, const char *crc, uint16_t qix, int prio, char **cause)
{
	struct stat	 st;
	struct job	*j;
	uint64_t	 n, sz, c;
	ssize_t		 len;
	char		*name, *result, *why = NULL, file[PROTO_U64_LEN];

	if (id == NULL || encname == NULL || size == NULL || crc == NULL ||
	    parse_u64(id, 1, UINT64_MAX, &n) != 0 || n != q->njobs + 1 ||
	    parse_u64(size, 0, UINT64_MAX, &sz) != 0 || strlen(crc) != 8 ||
	    strspn(crc, "0123456789abcdef") != 8 ||
	    (len = proto_decode(encname)) <= 0 ||
	    memchr(encname, '\0', (size_t)len) != NULL)
		return -1;
	c = strtoull(crc, NULL, 16);
	if ((result = spool_result_path(encname, (size_t)len, &why)) == NULL) {
		*cause = xprintf("job %llu %s, added earlier: no safe result "
		    "name with this --result: %s", (unsigned long long)n,
		    encname, why);
		free(why);
		return -2;
	}
	name = xstrndup(encname, (size_t)len);
	j = queue_add_in(q, name, result, qix, prio);
	j->origin = JOB_SPOOL;
	j->data_crc = (uint32_t)c;
	j->in_size = sz;
	j->rdir_dev = spool_rdev;
	j->rdir_ino = spool_rino;
	snprintf(file, sizeof file, "%llu", (unsigned long long)n);
	if (spool_dirfd >= 0 && fstatat(spool_dirfd, file, &st,
	    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == sz)
		spool_pin(j, &st);
	return 0;
}

/* Why the data of unpinned added job j is not usable (a new string). */
static char *
spool_lost_why(const struct job *j)
{
	struct stat	 st;
	char		 id[PROTO_U64_LEN];

	snprintf(id, sizeof id, "%llu", (unsigned long long)j->id);
	if (spool_dirfd < 0)
		return xprintf("its data is gone with the spool directory %s",
		    spool_dir);
	if (fstatat(spool_dirfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return xprintf("its data %s/%s is gone: %s", spool_dir, id,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return xprintf("its data %s/%s is %s", spool_dir, id,
		    input_kind(st.st_mode));
	return xprintf("its data %s/%s is damaged: %llu bytes, %llu when "
	    "added", spool_dir, id, (unsigned long long)st.st_size,
	    (unsigned long long)j->in_size);
}

/* Remove what a server left in the spool that no unfinished job needs. */
static void
spool_sweep(const struct queue *q)
{
	DIR		*d;
	struct dirent	*e;
	struct job	*j;
	uint64_t	 id;
	int		 fd;

	if ((fd = fcntl(spool_dirfd, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, SPOOL_TMP_PREFIX,
		    strlen(SPOOL_TMP_PREFIX)) == 0) {
			/* the journal's lock is ours: nobody writes here */
			if (unlinkat(dirfd(d), e->d_name, 0) == 0)
				log_info("removed %s/%s, an add that was never "
				    "journaled", spool_dir, e->d_name);
			continue;
		}
		if (parse_u64(e->d_name, 1, UINT64_MAX, &id) != 0)
			continue;
		j = queue_get(q, id);
		if (j != NULL && j->origin == JOB_SPOOL && j->in_name != NULL &&
		    j->state != JOB_DONE)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0 && j == NULL)
			log_info("removed %s/%s, an add that was never "
			    "journaled", spool_dir, e->d_name);
	}
	closedir(d);
}

/*
 * --archive: at the next start, the data of unfinished added jobs is
 * checked against its CRC-32C (spool_settle), as an archive entry's is not
 * fdatasync'd and may be damaged by a crash of the machine.
 */
void
spool_verify_on_settle(void)
{
	spool_verify = 1;
}

/* Whether pinned job j's spool file holds the data its CRC-32C recorded. */
static int
spool_intact(const struct job *j)
{
	char		*buf;
	uint64_t	 total = 0;
	uint32_t	 crc = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = openat(j->in_dirfd, j->in_name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC | O_NONBLOCK)) < 0)
		return 0;
	buf = xmalloc(SPOOL_VERIFY_BUF);
	while ((n = read(fd, buf, SPOOL_VERIFY_BUF)) > 0) {
		crc = crc32c_update(crc, buf, (size_t)n);
		total += (uint64_t)n;
	}
	free(buf);
	close(fd);
	return n == 0 && total == j->in_size && crc == j->data_crc;
}

/*
 * Whether job j failed at this start because its data was gone or damaged
 * (spool_settle), so that data found again may run it again (archsrc.c).
 */
int
spool_was_lost(const struct job *j)
{
	size_t	 lo = 0, hi = spool_nlost, mid;

	while (lo < hi) {		/* spool_lost is in id order */
		mid = lo + (hi - lo) / 2;
		if (spool_lost[mid] == j->id)
			return 1;
		if (spool_lost[mid] < j->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * The data of job j, lost in a crash, spooled again in st (from
 * spool_begin; size bytes, CRC-32C crc) from the archive it came from:
 * it must be the data first recorded.  Named by the job's id and pinned,
 * as spool_adopt does, unsynced like any archive entry's.  0, or -1 with
 * *cause (st is aborted).
 */
int
spool_refill(struct job *j, struct store *st, uint64_t size, uint32_t crc,
    char **cause)
{
	struct stat	 sb;
	char		 id[PROTO_U64_LEN];

	if (size != j->in_size || crc != j->data_crc) {
		*cause = xprintf("its data read again differs from the data "
		    "first read (%llu bytes, CRC-32C %08x; now %llu, %08x)",
		    (unsigned long long)j->in_size, j->data_crc,
		    (unsigned long long)size, crc);
		store_abort(st);
		return -1;
	}
	snprintf(id, sizeof id, "%llu", (unsigned long long)j->id);
	if (fstat(st->fd, &sb) != 0 || close(st->fd) != 0) {
		st->fd = -1;
		*cause = xprintf("spooling its data again: %s", strerror(errno));
		store_abort(st);
		return -1;
	}
	st->fd = -1;
	if (renameat(st->dirfd, st->tmpname, st->dirfd, id) != 0) {
		*cause = xprintf("spooling its data again: naming it %s: %s",
		    id, strerror(errno));
		store_abort(st);
		return -1;
	}
	store_close(st);
	spool_pin(j, &sb);
	spool_bytes += size;
	spool_files++;
	return 0;
}

/*
 * After the journal is read: an unfinished added job whose data is gone or
 * damaged fails, saying so; the data of finished jobs and of adds that were
 * never journaled is removed; ids go on after the last job.  Returns how
 * many jobs failed here (the journal must record them).
 */
size_t
spool_settle(struct queue *q)
{
	struct job	*j;
	uint64_t	 id;
	size_t		 failed = 0;

	spool_bytes = spool_files = 0;
	for (id = 1; id <= q->njobs; id++) {
		j = queue_get(q, id);
		if (j->origin != JOB_SPOOL)
			continue;
		if (spool_verify && j->in_name != NULL &&
		    j->state != JOB_DONE && !spool_intact(j)) {
			log_warnx("job %llu %s: its data %s/%s is damaged (its "
			    "CRC-32C is not the one recorded)",
			    (unsigned long long)j->id, j->path, spool_dir,
			    j->in_name);
			free(j->in_name);
			j->in_name = NULL;
		}
		if (j->in_name != NULL && j->state != JOB_DONE) {
			spool_bytes += j->in_size;
			spool_files++;
		} else if (j->in_name == NULL && j->state == JOB_WAITING) {
			free(j->fail_status);
			free(j->fail_msg);
			j->fail_status = xstrdup(STATUS_FAILED);
			j->fail_msg = spool_lost_why(j);
			j->fail_len = strlen(j->fail_msg);
			log_warnx("job %llu %s: %s; it fails",
			    (unsigned long long)j->id, j->path, j->fail_msg);
			queue_recover(q, j, JOB_FAILED);
			failed++;
			spool_lost = xreallocarray(spool_lost, spool_nlost + 1,
			    sizeof *spool_lost);
			spool_lost[spool_nlost++] = j->id;
		}
	}
	if (spool_dirfd >= 0)
		spool_sweep(q);
	for (id = 1; id <= q->njobs; id++) {	/* swept: unpin the done */
		j = queue_get(q, id);
		if (j->origin == JOB_SPOOL && j->state == JOB_DONE &&
		    j->in_name != NULL) {
			free(j->in_name);
			j->in_name = NULL;
		}
	}
	spool_next = q->njobs + 1;
	return failed;
}

/*
 * Job j's result is stored durably: its data is no longer needed.  (The
 * name is dropped even if unlink fails; the next start sweeps it.)
 */
void
spool_remove(struct job *j)
{
	if (j->origin != JOB_SPOOL || j->in_name == NULL)
		return;
	if (unlinkat(spool_dirfd, j->in_name, 0) != 0 && errno != ENOENT)
		log_warnx("job %llu %s: cannot remove its data %s/%s: %s",
		    (unsigned long long)j->id, j->path, spool_dir, j->in_name,
		    strerror(errno));
	free(j->in_name);
	j->in_name = NULL;
	spool_bytes -= j->in_size < spool_bytes ? j->in_size : spool_bytes;
	if (spool_files > 0)
		spool_files--;
}

/*
 * Is base taken in the result directory: the result or the input there of
 * a job, or the result of an add in flight (a watched file's too)?  0 if
 * not; 1 with *why (a new string) if so; -1 with errno if the index cannot
 * be built.  For a file found at run time (watch.c), whose result goes to
 * this directory.
 */
int
spool_result_clash(struct queue *q, const char *base, char **why)
{
	struct spool_add	*p;
	struct job		*j;
	uint32_t		 v;

	/* room for the result and the input of each file in flight */
	if (spool_index(q, 2 * (spool_npending + 1)) != 0)
		return -1;
	if ((v = queue_index_find(&spool_results, queue_hash(base,
	    strlen(base)), spool_result_eq, q, base)) != 0) {
		j = queue_get(q, v >> 1);
		*why = xprintf("%s of job %llu (%s)", (v & 1) ? "the input" :
		    "the result", (unsigned long long)j->id, j->path);
		return 1;
	}
	TAILQ_FOREACH(p, &spool_pending, entry)
		if (strcmp(spool_base(p->result), base) == 0) {
			*why = xprintf("the result of %s, being added", p->name);
			return 1;
		}
	return 0;
}

/* A file job j was made at run time (watch.c): index its result and input. */
void
spool_index_file(const struct job *j)
{
	dev_t	 ldev = 0;
	ino_t	 lino = 0;
	int	 lfd = -1;

	if (spool_indexed)
		spool_index_job(j, &ldev, &lino, &lfd);
}

/*
 * The server ends.  gone: the journal was removed, so the spool (empty by
 * then) goes too.
 */
void
spool_close(int gone)
{
	if (spool_dirfd >= 0)
		close(spool_dirfd);
	spool_dirfd = -1;
	if (gone && spool_dir != NULL)
		rmdir(spool_dir);	/* only if empty */
	free(spool_dir);
	spool_dir = NULL;
	free(spool_rdir_err);
	spool_rdir_err = NULL;
	queue_index_free(&spool_results);
	spool_indexed = 0;
	free(spool_lost);
	spool_lost = NULL;
	spool_nlost = 0;
}
