/*
 * journal.c: the server's memory across crashes.
 *
 * One append-only file per job list, STATE_DIR/journal-HASH, where HASH
 * names the list (the resolved absolute path of every input and result, in
 * order), so the same list finds its own journal from any directory, and
 * no other.  An flock, taken before anything else is done with the file
 * and held until the run's last file operation (journal_unlock: a
 * finished run's journal is emptied, not removed, while what else it kept
 * is removed), keeps a second server off it; a state directory or journal
 * that another user could write is refused.
 *
 * Records are text lines, each ending in the CRC-32C of the bytes before it:
 *   D <id> <size> <enc-path> <linecrc>            result stored
 *   I <id> <size> <crc32c> <enc-path> <linecrc>   result stored, and
 *                                                 here: the line is followed
 *                                                 by exactly <size> raw bytes
 *                                                 (at most JQ_INLINE_MAX)
 *                                                 with that CRC-32C and an LF;
 *                                                 bytes short of that, or
 *                                                 with another CRC, are a
 *                                                 torn record, cut like a
 *                                                 torn line
 *   F <id> <enc-status> <enc-path> <enc-msg> <linecrc>   failed for good
 *   R <id> <enc-path> <linecrc>                   failed job runs again
 *   A <id> <enc-name> <size> <crc32c> [after=<id>,...] <linecrc>
 *                                                 a job added at run time
 *                                                 (spool.c): its data, size
 *                                                 bytes with that CRC-32C,
 *                                                 is STATE_DIR/spool-HASH/<id>;
 *                                                 it runs after the jobs
 *                                                 after= names (deps.c)
 *     [after=<id>[,<id>]...] [q=<queue>] [p=<priority>]
 *                                                 before <linecrc>: its
 *                                                 prerequisites, named queue
 *                                                 and priority, when any, not
 *                                                 default and not 0 (a record
 *                                                 without them loads as ever);
 *                                                 other key=value words are
 *                                                 ignored
 *   E <id> <prereq-id> <linecrc>                  job id runs after job
 *                                                 prereq-id too: an edge
 *                                                 added by ADD before=, in
 *                                                 the same write as the new
 *                                                 job's A record
 *   W <id> <enc-name> <linecrc>                   a file found in the watched
 *                                                 directory (watch.c): its
 *                                                 name there
 * A and W records come in id order, after the jobs of the list, and are
 * written only once the data they name is durable (spool.c has the order;
 * a watched file is its own data); replay adds the jobs again with the same
 * ids.  Only the journal of a watch server (jq-serve --watch, which has no
 * list: its name is the watched directory's, watchdir_identity) holds W
 * records.
 *   N <enc-pattern> <linecrc>                     workers matching it are
 *                                                 drained (drain.c)
 *   U <enc-pattern> <linecrc>                     that drain is undone
 *   X 0 <linecrc>                                 the run ended with every
 *                                                 job finished (kept for
 *                                                 its failures); the next
 *                                                 start's compaction drops it
 * N and U records name no job; a journal without them loads as before.  A
 * cancelled job is an F record whose status is "cancelled".  A journal
 * without after= words and E records (before dependencies) loads as
 * before; the states BLOCKED and "failed, dependency" are not recorded
 * but worked out again from the edges at start (deps_settle), and a job
 * that failed because its prerequisite did is an F record like any other.
 * The order of durable steps for a result is: result file fdatasync'd,
 * renamed, its directory fsync'd; then the D record written and
 * fdatasync'd; only then is the worker told OK.  So a job the server
 * acknowledged is never run again, and a crash between rename and record
 * costs one repeated run, whose result replaces the first atomically.
 * A small result (commit.c) goes another way: its I record, bytes and
 * all, is written and fdatasync'd, and the worker is told OK; then its
 * temporary file is fdatasync'd, renamed, its directory fsync'd, and a D
 * record appended (not synced: the I record before it holds the data).
 * At start an I record whose result is not in place with exactly its
 * bytes (a crash before the rename, or its directory's sync) has the
 * result written again from them, the durable way, before compaction
 * turns it into a D record; so what was acknowledged is in place after
 * any crash, and never run again.
 *
 * On start the journal is read and checked.  A torn or damaged last line
 * (a crash mid-append) is cut off; damage before the last line means the
 * file is not ours to trust, and the server refuses to start.  The file is
 * then rewritten holding one record per finished job, one A record per
 * added job, finished or not, so that ids are never given twice, one
 * E record per prerequisite of each unfinished job (after every A record,
 * since an edge may name a later job), and one N record per drain held
 * (compaction); it never grows past the size of the job list, their edges
 * and the drains.  After a run
 * in which every job succeeded, the journal is removed (jq-serve keeps it
 * when --keep: the queue outlives the run).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define JOURNAL_LINE_MAX	(3 * (JQ_NAME_MAX + JQ_MSG_KEEP) + 256)

static int	 journal_fd = -1;
static off_t	 journal_size = -1;	/* journal_fd's size, -1: ask lseek; set
					 * back to -1 wherever journal_fd
					 * changes or is cut */
static char	*journal_path;
static char	*journal_dir;
static int	 journal_sync = 1;
static int	 journal_resumed;	/* the journal held records at start */
static int	 journal_ended;		/* ... and its run had ended (X) */
static int	 journal_dropped;	/* emptied by journal_end, still locked */
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;
static char	*journal_extra;		/* more of the list's name, or NULL */

/* FNV-1a, 64 bits, over a byte range: names the job list. */
static uint64_t
journal_hash(uint64_t h, const void *buf, size_t len)
{
	const unsigned char	*p = buf;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * The seam for fault tests, after beanstalkd's swappable falloc: every
 * append writes through journal_write.  When JQ_TEST_JOURNAL_TEAR=N is set,
 * journal_open (once, at start) points it at journal_write_torn, which makes
 * the Nth append of the process (compaction at start included) write half
 * its bytes and fail with ENOSPC, as a filesystem filling up in the middle
 * of a record does.  Only tests set it; otherwise the seam costs one
 * indirect call.
 */
static int	(*journal_write)(int, const void *, size_t) = util_write_all;
static unsigned	 journal_tear_at;	/* the append to tear, from 1 */
static unsigned	 journal_appends;	/* appends since start */

/* Write like util_write_all, but tear append number journal_tear_at. */
static int
journal_write_torn(int fd, const void *buf, size_t len)
{
	if (++journal_appends != journal_tear_at)
		return util_write_all(fd, buf, len);
	(void)util_write_all(fd, buf, len / 2);
	errno = ENOSPC;
	return -1;
}

/* Read JQ_TEST_JOURNAL_TEAR, once, at start (journal_open). */
static void
journal_seam(void)
{
	const char	*env;

	if ((env = getenv("JQ_TEST_JOURNAL_TEAR")) != NULL &&
	    parse_uint(env, 1, UINT32_MAX, &journal_tear_at) == 0) {
		log_warnx("JQ_TEST_JOURNAL_TEAR=%u: append %u to the journal "
		    "will be torn (a fault test)", journal_tear_at,
		    journal_tear_at);
		journal_write = journal_write_torn;
	}
}

/*
 * Append whole lines (records with their CRC and LF) in one write, and
 * sync the journal if sync is set.  The commit thread and the loop both
 * append: one lock.
 *
 * A record that cannot be written whole (the disk filled up in the middle
 * of it) or synced is cut off again, so that the file always ends with a
 * whole record: the next good record must not land after half of one, or
 * the next start would refuse the journal.  If even the cut fails, further
 * appends try it first and fail until it succeeds; a torn last line is
 * what a restart drops anyway.
 */
static int
journal_append_bytes(const char *line, size_t len, int sync, char **cause)
{
	static off_t	 torn = -1;	/* where an uncut torn record starts */
	off_t		 end;
	int		 rc = 0;

	if (journal_fd < 0)
		return 0;
	pthread_mutex_lock(&journal_lock);
	if (torn >= 0 && ftruncate(journal_fd, torn) == 0)
		torn = -1;
	if (torn >= 0) {
		*cause = xprintf("journal %s: cannot cut off a torn record: %s",
		    journal_path, strerror(errno));
		rc = -1;
	} else if ((end = journal_size >= 0 ? journal_size :
	    lseek(journal_fd, 0, SEEK_END)) < 0) {
		*cause = xprintf("journal %s: %s", journal_path, strerror(errno));
		rc = -1;
	} else if (journal_write(journal_fd, line, len) != 0 ||
	    (sync && journal_sync && fdatasync(journal_fd) != 0)) {
		*cause = xprintf("journal %s: %s", journal_path, strerror(errno));
		if (ftruncate(journal_fd, end) != 0)
			torn = end;
		rc = -1;
	}
	/* known after a whole write; after a failure, lseek tells again */
	journal_size = rc == 0 ? end + (off_t)len : -1;
	pthread_mutex_unlock(&journal_lock);
	return rc;
}

/* Append whole text lines (NUL-terminated), as journal_append_bytes. */
static int
journal_append_lines(const char *line, int sync, char **cause)
{
	return journal_append_bytes(line, strlen(line), sync, cause);
}

/* A record (without CRC and LF) as a journal line: a new string. */
static char *
journal_line(const char *rec)
{
	return xprintf("%s %08x\n", rec, crc32c_update(0, rec, strlen(rec)));
}

/* Append one record (without its CRC and LF), as journal_append_lines. */
static int
journal_append(const char *rec, int sync, char **cause)
{
	char	*line;
	int	 rc;

	if (journal_fd < 0)
		return 0;
	line = journal_line(rec);
	rc = journal_append_lines(line, sync, cause);
	free(line);
	return rc;
}

/*
 * Make every record appended so far durable (group commit).  A failure is
 * not cut back: each D record says a result is stored, which was durable
 * before the record was written, so one that survives tells the truth.
 */
int
journal_sync_now(char **cause)
{
	if (journal_fd < 0 || !journal_sync)
		return 0;
	if (fdatasync(journal_fd) != 0) {
		*cause = xprintf("journal %s: %s", journal_path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Append the record that job j's result is stored, size bytes long; it is
 * durable after the next journal_sync_now.
 */
int
journal_add_done(const struct job *j, uint64_t size, char **cause)
{
	char	*enc, *rec;
	int	 rc;

	enc = proto_encode_dup(j->path, strlen(j->path));
	rec = xprintf("D %llu %llu %s", (unsigned long long)j->id,
	    (unsigned long long)size, enc);
	rc = journal_append(rec, 0, cause);
	free(enc);
	free(rec);
	return rc;
}

/*
 * Append the I record of job j's result, its size bytes (at most
 * JQ_INLINE_MAX) inside it, in one write; durable after the next
 * journal_sync_now.  For the commit thread.
 */
int
journal_add_inline(const struct job *j, const void *bytes, uint64_t size,
    char **cause)
{
	char	*enc, *rec, *line, *all;
	size_t	 l;
	int	 rc;

	if (journal_fd < 0)
		return 0;
	enc = proto_encode_dup(j->path, strlen(j->path));
	rec = xprintf("I %llu %llu %08x %s", (unsigned long long)j->id,
	    (unsigned long long)size, crc32c_update(0, bytes, (size_t)size),
	    enc);
	line = journal_line(rec);
	l = strlen(line);
	all = xmalloc(l + (size_t)size + 1);
	memcpy(all, line, l);
	memcpy(all + l, bytes, (size_t)size);
	all[l + (size_t)size] = '\n';
	rc = journal_append_bytes(all, l + (size_t)size + 1, 0, cause);
	free(all);
	free(line);
	free(enc);
	free(rec);
	return rc;
}

/* Record that job j failed for good. */
int
journal_failed(const struct job *j, char **cause)
{
	char	*path, *status, *msg, *rec;
	int	 rc;

	path = proto_encode_dup(j->path, strlen(j->path));
	status = proto_encode_dup(j->fail_status, strlen(j->fail_status));
	msg = proto_encode_dup(j->fail_msg ? j->fail_msg : "",
	    j->fail_msg ? j->fail_len : 0);
	rec = xprintf("F %llu %s %s %s", (unsigned long long)j->id, status,
	    path, msg);
	rc = journal_append(rec, 1, cause);
	free(path);
	free(status);
	free(msg);
	free(rec);
	return rc;
}

/* Record that failed job j runs again. */
int
journal_retry(const struct job *j, char **cause)
{
	char	*enc, *rec;
	int	 rc;

	enc = proto_encode_dup(j->path, strlen(j->path));
	rec = xprintf("R %llu %s", (unsigned long long)j->id, enc);
	rc = journal_append(rec, 1, cause);
	free(enc);
	free(rec);
	return rc;
}

/*
 * Record that the workers matching pattern are drained (on) or no longer
 * (off); made durable at once.
 */
int
journal_drain(const char *pattern, int on, char **cause)
{
	char	*enc, *rec;
	int	 rc;

	enc = proto_encode_dup(pattern, strlen(pattern));
	rec = xprintf("%c %s", on ? 'N' : 'U', enc);
	rc = journal_append(rec, 1, cause);
	free(enc);
	free(rec);
	return rc;
}

/*
 * The A record of added job: id, name (len bytes), size, crc, its n
 * prerequisites (after=, none if n is 0), its queue (NULL: the default)
 * and priority; a new string.
 */
static char *
journal_added_line(uint64_t id, const char *name, size_t len, uint64_t size,
    uint32_t crc, const uint32_t *after, uint32_t n, const char *queue,
    int prio)
{
	char	*enc, *rec, *line, *ids, qw[JQ_QUEUE_NAME_MAX + 4] = "";
	char	 pw[16] = "";
	size_t	 i, off;

	enc = proto_encode_dup(name, len);
	ids = xmalloc((size_t)n * 11 + sizeof " " KEY_AFTER "=");
	off = 0;
	ids[0] = '\0';
	for (i = 0; i < n; i++)
		off += (size_t)sprintf(ids + off, "%s%lu", i ? "," :
		    " " KEY_AFTER "=", (unsigned long)after[i]);
	if (queue != NULL && *queue != '\0' && strcmp(queue, QUEUE_DEFAULT) != 0)
		snprintf(qw, sizeof qw, " q=%s", queue);
	if (prio != 0)
		snprintf(pw, sizeof pw, " p=%d", prio);
	rec = xprintf("A %llu %s %llu %08x%s%s%s", (unsigned long long)id, enc,
	    (unsigned long long)size, crc, ids, qw, pw);
	line = journal_line(rec);
	free(ids);
	free(enc);
	free(rec);
	return line;
}

/*
 * The after=, q= and p= words of an A record (the rest of its line, p):
 * *after (the after= word, or NULL), *qix (the queue, made) and *prio; 0,
 * or -1 if one is malformed.  Other words are ignored: a later version's
 * fields.
 */
static int
journal_added_words(struct queue *q, char *p, uint16_t *qix, int *prio,
    char **after)
{
	char	*w, *cause = NULL;
	int	 ix;

	*qix = 0;
	*prio = 0;
	*after = NULL;
	while ((w = proto_word(&p)) != NULL) {
		if (strncmp(w, KEY_AFTER "=", sizeof KEY_AFTER) == 0)
			*after = w;
		else if (strncmp(w, "q=", 2) == 0) {
			if (!proto_queue_valid(w + 2, strlen(w + 2)))
				return -1;
			if ((ix = queue_named_get(q, w + 2, strlen(w + 2),
			    &cause)) < 0) {
				log_warnx("%s", cause);
				free(cause);
				return -1;
			}
			*qix = (uint16_t)ix;
		} else if (strncmp(w, "p=", 2) == 0 && parse_int(w + 2,
		    JQ_PRIORITY_MIN, JQ_PRIORITY_MAX, prio) != 0)
			return -1;
	}
	return 0;
	return 0;
}

/* The E record: job id runs after job prereq; a new string. */
static char *
journal_edge_line(uint64_t id, uint64_t prereq)
{
	char	*rec, *line;

	rec = xprintf("E %llu %llu", (unsigned long long)id,
	    (unsigned long long)prereq);
	line = journal_line(rec);
	free(rec);
	return line;
}

/* The W record of watched file name (its job's name; a new string). */
static char *
journal_watched_line(uint64_t id, const char *name)
{
	const char	*slash = strrchr(name, '/');
	char		*enc, *rec, *line;

	name = slash != NULL ? slash + 1 : name;
	enc = proto_encode_dup(name, strlen(name));
	rec = xprintf("W %llu %s", (unsigned long long)id, enc);
	line = journal_line(rec);
	free(enc);
	free(rec);
	return line;
}

/*
 * Record that the n adds in v (ids set, data durable) are jobs: their A
 * (or, for watched files, W) records in one write, made durable at once;
 * all or none (a failure cuts them off again).  For the commit thread.
 * A batch of archive entries only (add->unsynced) is appended without a
 * sync: the next sync of the journal covers it, and a crash before that
 * loses only such records, at the end, whose entries the restarted server
 * reads again from the archive under the same ids (archsrc.c).
 */
int
journal_add_jobs(struct spool_add *const *v, size_t n, char **cause)
{
	char	*all = NULL, *line;
	size_t	 len = 0, l, i;
	int	 rc, sync = 0;

	for (i = 0; i < n; i++)
		sync |= !v[i]->unsynced;
	for (i = 0; i < 2 * n; i++) {
		if (i % 2 == 1 && v[i / 2]->before == 0)
			continue;
		if (i % 2 == 1)		/* before=: the edge, in the same write */
			line = journal_edge_line(v[i / 2]->before, v[i / 2]->id);
		else
			line = v[i / 2]->watched ? journal_watched_line(
			    v[i / 2]->id, v[i / 2]->name) : journal_added_line(
			    v[i / 2]->id, v[i / 2]->name, v[i / 2]->namelen,
			    v[i / 2]->size, v[i / 2]->crc, v[i / 2]->after,
			    v[i / 2]->nafter, v[i / 2]->queue, v[i / 2]->priority);
		l = strlen(line);
		all = xreallocarray(all, len + l + 1, 1);
		memcpy(all + len, line, l + 1);
		len += l;
		free(line);
	}
	rc = all == NULL ? 0 : journal_append_lines(all, sync, cause);
	free(all);
	return rc;
}

/* Check a line's CRC and cut it off; 0 if the line is sound. */
static int
journal_check_line(char *line)
{
	char		*sp = strrchr(line, ' ');
	uint64_t	 want;
	char		 hex[9];

	if (sp == NULL || strlen(sp + 1) != 8)
		return -1;
	memcpy(hex, sp + 1, 9);
	*sp = '\0';
	want = strtoull(hex, NULL, 16);
	return crc32c_update(0, line, strlen(line)) == (uint32_t)want ? 0 : -1;
}

/*
 * The jobs of the list by name, for records whose id names another job:
 * built at the first such record, freed when the journal is loaded.
 */
static struct job	**journal_byname;

/* Order two jobs by name. */
static int
journal_cmp_name(const void *a, const void *b)
{
	const struct job	*const *x = a, *const *y = b;

	return strcmp((*x)->path, (*y)->path);
}

/* Compare a name (n bytes, perhaps holding a NUL) with a job's name. */
static int
journal_cmp_key(const char *name, size_t n, const struct job *j)
{
	size_t	 len = strlen(j->path);
	int	 c;

	if ((c = memcmp(name, j->path, n < len ? n : len)) != 0)
		return c;
	return n < len ? -1 : n > len;
}

/* The job named name (n bytes) in q, or NULL. */
static struct job *
journal_find_name(struct queue *q, const char *name, size_t n)
{
	size_t	 i, lo = 0, hi = q->njobs, mid;
	int	 c;

	if (journal_byname == NULL && q->njobs > 0) {
		journal_byname = xreallocarray(NULL, q->njobs,
		    sizeof *journal_byname);
		for (i = 0; i < q->njobs; i++)
			journal_byname[i] = queue_get(q, i + 1);
		qsort(journal_byname, q->njobs, sizeof *journal_byname,
		    journal_cmp_name);
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = journal_cmp_key(name, n, journal_byname[mid])) == 0)
			return journal_byname[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * Find the job a record names.  The name decides: a job is its name.  The
 * id is the job's number in the run that wrote the record, which is its
 * place in this list unless that run skipped inputs whose results were up
 * to date (serve_skip_current) and so numbered the rest without gaps; it
 * is looked at first, and must be a number.
 */
static struct job *
journal_job(struct queue *q, char *id, char *encpath)
{
	struct job	*j;
	uint64_t	 num;
	ssize_t		 n;

	if (id == NULL || encpath == NULL ||
	    parse_u64(id, 1, UINT64_MAX, &num) != 0 ||
	    (n = proto_decode(encpath)) < 0)
		return NULL;
	if ((j = queue_find(q, id)) != NULL && journal_cmp_key(encpath,
	    (size_t)n, j) == 0)
		return j;
	return journal_find_name(q, encpath, (size_t)n);
}

/*
 * Apply an A record's after=<ids> word to job j, added by it: its
 * prerequisites, all older jobs.  As journal_apply returns.
 */
static int
journal_apply_after(struct queue *q, struct job *j, const char *word,
    char **cause)
{
	uint32_t	*v, n, i;
	char		*why;
	struct job	*p;

	if (strncmp(word, KEY_AFTER "=", sizeof KEY_AFTER) != 0 ||
	    deps_parse_ids(word + sizeof KEY_AFTER, &v, &n, &why) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((p = queue_get(q, v[i])) == NULL || p == j) {
			free(v);
			return -1;
		}
		if (deps_link(j, p, &why) < 0) {
			*cause = xprintf("journal %s: %s", journal_path, why);
			free(why);
			free(v);
			return -2;
		}
	}
	free(v);
	return 0;
}

/*
 * Apply one sound record to the queue; -1 if it does not fit the list, -2
 * with *cause if it cannot be applied (the start must stop).
 */
static int
journal_apply(struct queue *q, char *line, int retry_failed, char **cause)
{
	char		*p = line, *kind, *id, *a, *c, *d;
	struct job	*j;
	struct stat	 st;
	uint64_t	 size;
	ssize_t		 n;
	uint16_t	 qix;
	int		 prio, rc, here;
	char		*after;

	kind = proto_word(&p);
	id = proto_word(&p);
	if (kind == NULL || strlen(kind) != 1)
		return -1;
	switch (kind[0]) {
	case 'D':
		a = proto_word(&p);	/* size */
		c = proto_word(&p);	/* path */
		if ((j = journal_job(q, id, c)) == NULL || a == NULL ||
		    parse_u64(a, 0, UINT64_MAX, &size) != 0)
			return -1;
		j->journaled = 1;
		j->result_size = size;
		/*
		 * trust the record only while the result is still there (a
		 * tree result is a directory: its size was the stream's, so
		 * being there is all that is checked); an added job's data or
		 * a watched file that is gone as well (not pinned) leaves
		 * nothing to run again
		 */
		here = stat(j->result, &st) == 0 && (S_ISDIR(st.st_mode) ||
		    (uint64_t)st.st_size == size);
		if (!here && (j->origin == JOB_SPOOL || watchdir_active()) &&
		    j->in_name == NULL) {
			if (j->origin == JOB_SPOOL)
				log_warnx("job %llu %s: its stored result %s is "
				    "gone or changed, and its data with it; it "
				    "stays done", (unsigned long long)j->id,
				    j->path, j->result);
			else	/* the drop folder was emptied: as it should be */
				log_info("job %llu %s: its file and its result %s "
				    "are gone; it stays done",
				    (unsigned long long)j->id, j->path,
				    j->result);
			queue_recover(q, j, JOB_DONE);
		} else if (!here) {
			log_warnx("job %llu %s: its stored result %s is gone or "
			    "changed; it runs again", (unsigned long long)j->id,
			    j->path, j->result);
			queue_recover(q, j, JOB_WAITING);
		} else
			queue_recover(q, j, JOB_DONE);
		return 0;
	case 'F':
		a = proto_word(&p);	/* status */
		c = proto_word(&p);	/* path */
		d = proto_word(&p);	/* message, may be empty */
		if ((j = journal_job(q, id, c)) == NULL || a == NULL ||
		    proto_decode(a) < 0)
			return -1;
		j->journaled = 1;
		free(j->fail_status);
		free(j->fail_msg);
		j->fail_status = xstrdup(a);
		j->fail_msg = xstrdup("");
		j->fail_len = 0;
		if (d != NULL && (n = proto_decode(d)) >= 0) {
			free(j->fail_msg);
			j->fail_msg = xmalloc((size_t)n + 1);
			memcpy(j->fail_msg, d, (size_t)n + 1);
			j->fail_len = (size_t)n;
		}
		queue_recover(q, j, retry_failed ? JOB_WAITING : JOB_FAILED);
		return 0;
	case 'R':
		c = proto_word(&p);
		if ((j = journal_job(q, id, c)) == NULL)
			return -1;
		j->journaled = 1;
		queue_recover(q, j, JOB_WAITING);
		return 0;
	case 'A':
		c = proto_word(&p);	/* name */
		a = proto_word(&p);	/* size */
		d = proto_word(&p);	/* crc */
		if (journal_added_words(q, p, &qix, &prio, &after) != 0)
			return -1;
		if ((rc = spool_recover(q, id, c, a, d, qix, prio, cause)) != 0)
			return rc;
		if (after == NULL)
			return 0;	/* no after=: as before dependencies */
		return journal_apply_after(q, queue_get(q, q->njobs), after,
		    cause);
	case 'E':
		a = proto_word(&p);	/* the prerequisite's id */
		if (id == NULL || a == NULL ||
		    parse_u64(id, 1, q->njobs, &size) != 0 ||
		    (j = queue_get(q, size)) == NULL ||
		    parse_u64(a, 1, q->njobs, &size) != 0)
			return -1;
		if (deps_link(j, queue_get(q, size), cause) < 0) {
			*cause = xprintf("journal %s: %s", journal_path,
			    (d = *cause));
			free(d);
			return -2;
		}
		return 0;
	case 'W':
		c = proto_word(&p);	/* name in the watched directory */
		return watchdir_recover(q, id, c, cause);
	case 'N':
	case 'U':
		/* id is the pattern; one beyond JQ_DRAIN_MAX is dropped */
		if (id == NULL || (n = proto_decode(id)) <= 0 ||
		    memchr(id, '\0', (size_t)n) != NULL)
			return -1;
		if (kind[0] == 'U')
			(void)drain_remove(id);
		else if (drain_add(id) < 0)
			log_warnx("journal %s: more than %d drains; %s dropped",
			    journal_path, JQ_DRAIN_MAX, id);
		return 0;
	case 'X':
		/* the run ended, every job finished: no crash to fear */
		if (id == NULL || strcmp(id, "0") != 0)
			return -1;
		journal_ended = 1;
		return 0;
	}
	return -1;
}

/*
 * Is job j's result in place holding exactly these size bytes (crc their
 * CRC-32C)?  A file of another size or other bytes is not.
 */
static int
journal_result_in_place(const struct job *j, uint64_t size, uint32_t crc)
{
	char		 buf[8192];
	struct stat	 st;
	uint32_t	 c = 0;
	uint64_t	 left = size;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(j->result, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size) {
		close(fd);
		return 0;
	}
	while (left > 0 && (n = read(fd, buf, left < sizeof buf ?
	    (size_t)left : sizeof buf)) > 0) {
		c = crc32c_update(c, buf, (size_t)n);
		left -= (uint64_t)n;
	}
	close(fd);
	return left == 0 && c == crc;
}

/*
 * Write job j's result again from an I record's bytes, the durable way
 * (temporary file, fdatasync, rename, directory fsync: store.c).
 */
static int
journal_result_rewrite(const struct job *j, const char *bytes, uint64_t size,
    char **cause)
{
	struct store	 st;

	if (store_open(&st, j->result, j->rdir_dev, j->rdir_ino, cause) != 0)
		return -1;
	if (store_write(&st, bytes, (size_t)size, cause) < 0) {
		store_abort(&st);
		return -1;
	}
	if (store_commit_file(&st, cause) != 0)
		return -1;
	if (store_sync_dir(&st, cause) != 0) {
		store_close(&st);
		return -1;
	}
	store_close(&st);
	return 0;
}

/* The journal held I records: compaction turns them into D records. */
static int	journal_inlined;

/*
 * An I record (line: its words, CRC checked and cut off): read its size
 * bytes and the LF after them from f and check their CRC; a short or
 * damaged read is a torn record (-1).  A result that is not in place with
 * those bytes is written again from them; then the job is done.  Returns
 * 0 with *used, the bytes read after the line; -1; -2 with *cause.
 */
static int
journal_load_inline(struct queue *q, FILE *f, char *line, size_t *used,
    char **cause)
{
	char		*p = line, *id, *a, *c, *path, *bytes, *why = NULL;
	struct job	*j;
	uint64_t	 size;
	unsigned int	 crc;

	(void)proto_word(&p);		/* I */
	id = proto_word(&p);
	a = proto_word(&p);		/* size */
	c = proto_word(&p);		/* crc */
	path = proto_word(&p);
	if (a == NULL || c == NULL || strlen(c) != 8 ||
	    parse_u64(a, 0, JQ_INLINE_MAX, &size) != 0 ||
	    sscanf(c, "%8x", &crc) != 1)
		return -1;
	bytes = xmalloc((size_t)size + 1);
	if (fread(bytes, 1, (size_t)size + 1, f) != (size_t)size + 1 ||
	    bytes[size] != '\n' ||
	    crc32c_update(0, bytes, (size_t)size) != (uint32_t)crc) {
		free(bytes);
		return -1;
	}
	*used = (size_t)size + 1;
	/* after the bytes are read: the file position is the next record's */
	if ((j = journal_job(q, id, path)) == NULL) {
		free(bytes);
		return -1;
	}
	j->journaled = 1;
	j->result_size = size;
	journal_inlined = 1;
	if (!journal_result_in_place(j, size, (uint32_t)crc)) {
		if (journal_result_rewrite(j, bytes, size, &why) != 0) {
			log_warnx("job %llu %s: its result %s, acknowledged, "
			    "cannot be written again from the journal: %s; it "
			    "runs again", (unsigned long long)j->id, j->path,
			    j->result, why);
			free(why);
			free(bytes);
			queue_recover(q, j, JOB_WAITING);
			return 0;
		}
		log_info("job %llu %s: its result %s written again from the "
		    "journal", (unsigned long long)j->id, j->path, j->result);
	}
	free(bytes);
	queue_recover(q, j, JOB_DONE);
	(void)cause;
	return 0;
}

/* Read the journal, applying sound records; cut a torn tail. */
static int
journal_load(struct queue *q, int retry_failed, size_t *nrec, char **cause)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0, lineno = 0, used;
	ssize_t	 n;
	off_t	 good = 0;
	int	 bad = 0, rc;

	if ((f = fdopen(dup(journal_fd), "r")) == NULL) {
		*cause = xprintf("journal %s: %s", journal_path, strerror(errno));
		return -1;
	}
	*nrec = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (bad) {		/* damage with sound-looking data after it */
			*cause = xprintf("journal %s: line %zu is damaged and is "
			    "not the last; remove the file (or use --fresh) to "
			    "start over", journal_path, lineno - 1);
			free(line);
			fclose(f);
			free(journal_byname);
			journal_byname = NULL;
			return -1;
		}
		if (line[n - 1] != '\n' || n > JOURNAL_LINE_MAX) {
			bad = 1;
			continue;
		}
		line[n - 1] = '\0';
		used = 0;
		if (journal_check_line(line) != 0 ||
		    (rc = strncmp(line, "I ", 2) == 0 ?
		    journal_load_inline(q, f, line, &used, cause) :
		    journal_apply(q, line, retry_failed, cause)) == -1) {
			bad = 1;
			continue;
		}
		if (rc != 0) {
			free(line);
			fclose(f);
			return -1;
		}
		good += n + (off_t)used;
		(*nrec)++;
	}
	free(line);
	fclose(f);
	free(journal_byname);
	journal_byname = NULL;
	if (bad) {
		log_warnx("journal %s: dropped a torn last record (line %zu)",
		    journal_path, lineno);
		journal_size = -1;
		if (ftruncate(journal_fd, good) != 0) {
			*cause = xprintf("journal %s: %s", journal_path,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Write the A record of added job j, or the W of a watched one (compaction). */
static int
journal_add_jobs_compact(const struct queue *q, const struct job *j,
    char **cause)
{
	char	*line;
	int	 rc;

	line = j->origin == JOB_SPOOL ? journal_added_line(j->id, j->path,
	    strlen(j->path), j->in_size, j->data_crc, NULL, 0,
	    queue_named_name(q, j), j->priority) :
	    journal_watched_line(j->id, j->path);
	rc = journal_append_lines(line, 0, cause);
	free(line);
	return rc;
}

/* Write the E records of job j's prerequisites, if j is unfinished. */
static int
journal_edges_compact(const struct job *j, char **cause)
{
	char	*line;
	uint32_t i;
	int	 rc = 0;

	if (j->state == JOB_DONE || j->state == JOB_FAILED)
		return 0;
	for (i = 0; i < deps_peek(j)->nprereq && rc == 0; i++) {
		line = journal_edge_line(j->id, deps_peek(j)->prereq[i]);
		rc = journal_append_lines(line, 0, cause);
		free(line);
	}
	return rc;
}

/*
 * Rewrite the journal as one record per finished job, one per added job
 * and one per edge of an unfinished job, atomically.
 */
static int
journal_compact(struct queue *q, char **cause)
{
	char	*tmp = xprintf("%s.new", journal_path);
	int	 fd, oldfd = journal_fd, rc = 0;
	size_t	 i;
	struct stat st;

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0) {
		*cause = xprintf("%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	journal_fd = fd;
	journal_size = -1;
	for (i = 1; i <= q->njobs && rc == 0; i++) {
		struct job *j = queue_get(q, i);
		/* a watch server's file jobs are all watched ones */
		if (j->origin == JOB_SPOOL || watchdir_active())
			rc = journal_add_jobs_compact(q, j, cause);
		if (rc != 0)
			break;
		if (j->state == JOB_DONE)
			rc = journal_add_done(j, stat(j->result, &st) == 0 ?
			    (uint64_t)st.st_size : 0, cause);
		else if (j->state == JOB_FAILED)
			rc = journal_failed(j, cause);
	}
	for (i = 1; i <= q->njobs && rc == 0; i++)	/* edges: after every A */
		rc = journal_edges_compact(queue_get(q, i), cause);
	for (i = 0; i < drain_count() && rc == 0; i++)
		rc = journal_drain(drain_get(i), 1, cause);
	if (rc == 0 && (fsync(fd) != 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 ||
	    rename(tmp, journal_path) != 0)) {
		*cause = xprintf("%s: %s", journal_path, strerror(errno));
		rc = -1;
	}
	if (rc != 0) {
		close(fd);
		unlink(tmp);
		journal_fd = oldfd;
	} else {
		close(oldfd);	/* drops its lock; fd holds the new one */
		util_fsync_dir(journal_dir);
	}
	journal_size = -1;	/* the size of the one kept: asked again */
	free(tmp);
	return rc;
}

/* Remove temp files that a crashed server left in a result directory. */
static void
journal_sweep(const char *dir)
{
	DIR		*d;
	struct dirent	*e;
	long		 pid;
	unsigned	 serial;
	int		 end;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		/* exactly store.c's ".jq-PID-SERIAL.tmp", nothing after it */
		end = -1;
		if (sscanf(e->d_name, ".jq-%ld-%u.tmp%n", &pid, &serial, &end) != 2 ||
		    end < 0 || e->d_name[end] != '\0' || pid <= 0 ||
		    (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			log_info("removed %s/%s, left by a server that died",
			    dir, e->d_name);
	}
	closedir(d);
}

/*
 * The journal names its list by the absolute, resolved path of every input
 * and result (realpath of the directory, then the name), so that two
 * directories served with the same relative names never share a journal and
 * a list named by absolute paths from elsewhere finds its own.  A directory
 * that cannot be resolved (only in tests: jq-serve checked them all) is
 * hashed as given.  *lastdir and *lastreal keep the last directory
 * resolved, so a list of files in one directory costs one realpath (the
 * inputs and the results keep one each: with --output-dir they differ).
 */
static uint64_t
journal_hash_path(uint64_t h, const char *path, char **lastdir,
    char **lastreal)
{
	const char	*slash = strrchr(path, '/'), *base;
	char		*dir, *real;

	dir = slash == NULL ? xstrdup(".") : slash == path ? xstrdup("/") :
	    xstrndup(path, (size_t)(slash - path));
	base = slash == NULL ? path : slash + 1;
	if (*lastdir == NULL || strcmp(*lastdir, dir) != 0) {
		if ((real = realpath(dir, NULL)) == NULL)
			real = xstrdup(dir);
		free(*lastdir);
		free(*lastreal);
		*lastdir = dir;
		*lastreal = real;
	} else
		free(dir);
	h = journal_hash(h, *lastreal, strlen(*lastreal));
	h = journal_hash(h, "/", 1);
	return journal_hash(h, base, strlen(base) + 1);
}

/*
 * The hash that names the list in q (STATE_DIR/journal-HASH).  A server
 * with no files is named by where its added jobs' results go instead
 * (spool_identity), so that two of them keep apart; a watch server also by
 * the directory it watches and what it takes from there (watchdir_identity).
 */
static uint64_t
journal_name(const struct queue *q)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;
	char		*lastdir = NULL, *lastreal = NULL;
	char		*rlastdir = NULL, *rlastreal = NULL;
	const struct job *j;
	size_t		 i;

	for (i = 1; i <= q->njobs; i++) {
		j = queue_get(q, i);
		h = journal_hash_path(h, j->path, &lastdir, &lastreal);
		h = journal_hash_path(h, j->result, &rlastdir, &rlastreal);
	}
	free(lastdir);
	free(lastreal);
	free(rlastdir);
	free(rlastreal);
	/* the archives of --archive, whatever else is served */
	if (journal_extra != NULL)
		h = journal_hash(h, journal_extra, strlen(journal_extra) + 1);
	if (q->njobs == 0) {
		lastdir = spool_identity();
		h = journal_hash(h, lastdir, strlen(lastdir));
		free(lastdir);
		if ((lastdir = watchdir_identity()) != NULL) {
			h = journal_hash(h, lastdir, strlen(lastdir) + 1);
			free(lastdir);
		}
	}
	return h;
}

/*
 * Refuse a state directory or journal that someone else could change under
 * us, as ssh's StrictModes does: it must be ours (or root's) and writable by
 * nobody else.  what names it in the message.
 */
static int
journal_check_owner(const struct stat *st, const char *what, const char *path,
    char **cause)
{
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		*cause = xprintf("%s %s is owned by uid %lu, not by us (uid "
		    "%lu); refusing to trust it", what, path,
		    (unsigned long)st->st_uid, (unsigned long)geteuid());
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		*cause = xprintf("%s %s is writable by %s; chmod go-w %s", what,
		    path, (st->st_mode & S_IWOTH) ? "others" : "its group", path);
		return -1;
	}
	return 0;
}

/* Make the state directory if it is missing, and check that it is safe. */
static int
journal_check_dir(const char *dir, char **cause)
{
	struct stat	 st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*cause = xprintf("state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	errno = 0;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*cause = xprintf("state directory %s: %s", dir, errno ?
		    strerror(errno) : "not a directory");
		return -1;
	}
	return journal_check_owner(&st, "state directory", dir, cause);
}

/*
 * Open and lock the journal at journal_path, before anything in it is read
 * or removed: a second server on the list is refused here, --fresh or not.
 * A journal replaced by its server between our open and our lock
 * (compaction renames a new one in; a finished run removes it) is opened
 * again, so that the lock we hold is on the file the name holds.
 */
static int
journal_lock_file(char **cause)
{
	struct stat	 fst, pst;
	int		 tries;

	for (tries = 0; tries < 10; tries++) {
		journal_size = -1;
		journal_fd = open(journal_path, O_RDWR | O_CREAT | O_APPEND |
		    O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
		if (journal_fd < 0) {
			*cause = xprintf("journal %s: %s", journal_path,
			    errno == ELOOP ? "is a symbolic link; refusing to "
			    "follow it" : strerror(errno));
			return -1;
		}
		if (flock(journal_fd, LOCK_EX | LOCK_NB) != 0) {
			*cause = xprintf("journal %s: %s", journal_path, errno ==
			    EWOULDBLOCK ? "another jq-serve is serving this "
			    "list" : strerror(errno));
			return -1;
		}
		if (fstat(journal_fd, &fst) != 0) {
			*cause = xprintf("journal %s: %s", journal_path,
			    strerror(errno));
			return -1;
		}
		if (lstat(journal_path, &pst) == 0 && pst.st_dev == fst.st_dev &&
		    pst.st_ino == fst.st_ino) {
			if (!S_ISREG(fst.st_mode)) {
				*cause = xprintf("journal %s: not a regular "
				    "file", journal_path);
				return -1;
			}
			if (journal_check_owner(&fst, "journal", journal_path,
			    cause) != 0)
				return -1;
			return 0;
		}
		close(journal_fd);	/* replaced meanwhile: again */
		journal_fd = -1;
	}
	*cause = xprintf("journal %s: keeps being replaced; is another "
	    "jq-serve starting on this list?", journal_path);
	return -1;
}

/*
 * Open (or create) the journal of this job list in dir and bring the queue
 * up to date from it.  fresh: start over; retry_failed: failed jobs run
 * again; sync 0: no fdatasync (faster, not crash-safe).  The lock is taken
 * first: nothing is read, truncated or swept before it is held.
 */
int
journal_open(struct queue *q, const char *dir, int fresh, int retry_failed,
    int sync, char **cause)
{
	size_t		 i, nrec = 0, nfinished, nadded = 0, nlost;
	char		*lastdir = NULL, *rdir, *spool;
	const char	*slash, *result;
	struct stat	 st;
	uint64_t	 h;
	int		 existed;

	journal_sync = sync;
	journal_seam();
	if (journal_check_dir(dir, cause) != 0)
		return -1;
	journal_dir = xstrdup(dir);
	h = journal_name(q);
	journal_path = xprintf("%s/journal-%016llx", dir, (unsigned long long)h);
	if (journal_lock_file(cause) != 0) {
		if (journal_fd >= 0)
			close(journal_fd);
		journal_fd = -1;
		return -1;
	}
	spool = xprintf("%s/spool-%016llx", dir, (unsigned long long)h);
	existed = spool_open(spool, cause);
	free(spool);
	if (existed != 0)
		return -1;
	journal_size = -1;
	if (fresh && ftruncate(journal_fd, 0) != 0) {
		*cause = xprintf("journal %s: %s", journal_path, strerror(errno));
		return -1;
	}
	existed = fstat(journal_fd, &st) == 0 && st.st_size > 0;
	if (existed && journal_load(q, retry_failed, &nrec, cause) != 0)
		return -1;
	nlost = spool_settle(q) + watchdir_settle(q);
	nlost += deps_settle(q);	/* after: a lost job's dependents fail */
	for (i = 1; i <= q->njobs; i++) {	/* once per result directory */
		result = queue_get(q, i)->result;
		slash = strrchr(result, '/');
		rdir = slash ? xstrndup(result, (size_t)(slash - result +
		    (slash == result))) : xstrdup(".");
		if (lastdir == NULL || strcmp(lastdir, rdir) != 0) {
			journal_sweep(rdir);
			free(lastdir);
			lastdir = rdir;
		} else
			free(rdir);
	}
	free(lastdir);
	if (!existed)
		return util_fsync_dir(dir) == 0 ? 0 :
		    (*cause = xprintf("%s: %s", dir, strerror(errno)), -1);
	journal_resumed = 1;
	nfinished = q->count[JOB_DONE] + q->count[JOB_FAILED];
	for (i = 1; i <= q->njobs; i++)
		nadded += queue_get(q, i)->origin == JOB_SPOOL ||
		    watchdir_active();	/* A and W records */
	if (nrec != nfinished + nadded + drain_count() || retry_failed ||
	    nlost > 0 || journal_inlined)
		return journal_compact(q, cause);
	return 0;
}

/* Did start-up resume a journal that held records (an interrupted run)? */
int
journal_was_resumed(void)
{
	return journal_resumed;
}

/*
 * Did that journal's run end, every job finished (its X record), rather
 * than stop in the middle?
 */
int
journal_run_ended(void)
{
	return journal_resumed && journal_ended;
}

/*
 * Say what the journal brought back, if it held anything, once start-up
 * has settled which jobs this run serves.
 */
void
journal_log_resume(const struct queue *q)
{
	if (!journal_resumed)
		return;
	log_info("resuming from %s: %zu done, %zu failed, %zu to run",
	    journal_path, q->count[JOB_DONE], q->count[JOB_FAILED],
	    q->njobs - q->count[JOB_DONE] - q->count[JOB_FAILED]);
}

/*
 * More that names the list, besides its files (jq-serve --archive: the
 * archives, archsrc_identity); the journal takes the string over.  Before
 * journal_open.
 */
void
journal_name_extra(char *extra)
{
	free(journal_extra);
	journal_extra = extra;
}

/* The journal's path, once open (archsrc.c keeps a file beside it). */
const char *
journal_filename(void)
{
	return journal_path;
}

/*
 * The run is over: end the journal, keeping its lock.  If every job
 * succeeded, or the start failed (started 0: say, it could not listen) and
 * the journal holds no record, the run is dropped: the journal is emptied
 * in place (made durable), so that a crash from here on costs a run from
 * scratch, and its spool removed; the file itself stays, locked, so that a
 * second server is refused until journal_unlock, while the caller removes
 * what else the run kept (archout_clean).  Else the journal is kept, with
 * an X record when every job finished.
 */
void
journal_end(const struct queue *q, int success, int started)
{
	struct stat	 st;
	char		*cause = NULL;
	int		 empty;

	if (journal_fd < 0 || journal_dropped)
		return;
	empty = !started && fstat(journal_fd, &st) == 0 && st.st_size == 0;
	if ((success && q->count[JOB_DONE] == q->njobs) || empty) {
		if (ftruncate(journal_fd, 0) != 0 ||
		    (journal_sync && fsync(journal_fd) != 0))
			log_warnx("journal %s: %s", journal_path,
			    strerror(errno));
		journal_size = -1;	/* cut: asked again */
		spool_close(1);
		journal_dropped = 1;
	} else {
		/*
		 * kept with every job finished (some failed): say the run
		 * ended, so that the next start need not fear a crash between
		 * a result's rename and its record, and leaves out inputs
		 * whose results are up to date (serve_skip_current)
		 */
		if (started && q->njobs > 0 &&
		    q->count[JOB_DONE] + q->count[JOB_FAILED] == q->njobs &&
		    journal_append("X 0", 1, &cause) != 0) {
			log_warnx("%s", cause);
			free(cause);
		}
		spool_close(0);
	}
}

/*
 * The last file operation of the run: remove the journal if journal_end
 * dropped it (and the state directory, if nothing else is there), then
 * release the lock.  A second server started before this is refused.
 */
void
journal_unlock(void)
{
	if (journal_fd < 0)
		return;
	if (journal_dropped) {
		unlink(journal_path);
		rmdir(journal_dir);	/* only if nothing else is there */
	}
	close(journal_fd);
	journal_fd = -1;
	journal_size = -1;
	journal_dropped = 0;
	free(journal_extra);
	journal_extra = NULL;
}

/* journal_end then journal_unlock: a run that kept nothing else. */
void
journal_close(const struct queue *q, int success, int started)
{
	journal_end(q, success, started);
	journal_unlock();
}
