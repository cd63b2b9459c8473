/*
 * commit.c: making results durable without stopping the event loop.
 *
 * A stored result costs an fdatasync of the file, a rename, an fsync of its
 * directory and an fdatasync of the journal: about 1-2 ms on a quiet disk,
 * seconds for a large result on a busy one.  Done in the event loop, that
 * time would stall every connection.  So one thread does it, and does it for
 * every result waiting at once: files synced and renamed one by one, each
 * directory fsync'd once, all journal records appended and synced once
 * (group commit).  The connection that sent the result holds its reply (and
 * every reply after it) until the loop hears back, then answers OK or ERR
 * IO: replies stay in order and the worker is told OK only once all of it is
 * on disk.  It reads further requests meanwhile (up to JQ_INFLIGHT_MAX in
 * flight), and the loop plugs the queue while it reads a connection's input
 * (commit_plug), so that results that arrived together wait for no sync but
 * the batch's own.
 *
 * A tree result (PUT kind=tree) is unpacked here too, off the loop, into
 * a directory beside its final name, synced and renamed into place
 * (store_commit_tree); a refused tree fails the PUT with ERR TREE.
 *
 * The thread touches only the commit records it is handed and the journal
 * (whose appends are serialised in journal.c); jobs are read, never changed.
 *
 * An ADD's data (a commit with add set) takes the same road: its spool file
 * is fdatasync'd, named by the id it gets and the spool directory fsync'd,
 * then the A records of the batch are appended and synced in one write
 * (spool.c has the order and why).  The ids are given here, one thread, in
 * the order of the batch, and only to adds that reach the journal, so they
 * stay dense whatever fails.  A file found in a watched directory (watch.c)
 * gets its id and its journal record the same way, with no data to sync.
 *
 * With --early-ok (commit_early_ok), a small result (up to JQ_INLINE_MAX
 * bytes, of a running job, not a tree, with syncing on) takes a shorter
 * road to its OK: its bytes are read back
 * from the temporary file and appended inside its journal record (I), and
 * the batch's one fdatasync of the journal makes them durable; the worker
 * is told OK then (commit->ack, in the loop).  Its file is put in place
 * after, off the OK's path, by a second thread (the flush thread): the
 * temporary file fdatasync'd, renamed, the directory fsync'd, then a D
 * record appended without a sync.  So one sync stands between a small PUT
 * and its OK, shared by its batch, instead of three, and a final name
 * still only ever holds a synced, whole file.  The job is done at the OK
 * (STAT counts it), but job->committing stays set until the file is in
 * place, and nothing reads the result before: its dependents, WAIT, the
 * output archive and the end of the run wait for it (jobs_flushed,
 * commit_flushing).  A restart puts an I record's result in place from
 * the journal's bytes if it is not (journal.c).  commit_stop flushes
 * everything before it returns; a result that cannot be put in place is
 * counted (commit_lost) and the journal kept for the next start.
 *
 * With --no-sync there is nothing to wait for: a commit is a close, a rename
 * and a journal write.  When the thread is idle and nothing waits for it,
 * such a commit is made at once in the loop (commit_inline) instead of
 * costing two thread switches and a pipe wake-up; it is still delivered
 * from the loop through the done list, after any the thread finished
 * before, so replies keep their order.  Tree results always go to the
 * thread: unpacking one may take long.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "jq.h"

static pthread_t		 commit_thread;
static pthread_mutex_t		 commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 commit_cond = PTHREAD_COND_INITIALIZER;
static TAILQ_HEAD(, commit)	 commit_todo = TAILQ_HEAD_INITIALIZER(commit_todo);
static struct commit_list	 commit_done = TAILQ_HEAD_INITIALIZER(commit_done);
static int			 commit_stopping, commit_running;
static int			 commit_busy;	/* the thread holds a batch */
static int			 commit_plugged, commit_held;
static int			 commit_pipe[2] = { -1, -1 };
static struct event		*commit_ev;
static void			(*commit_cb)(struct commit *);
/* the flush thread's: acknowledged small results to put in place */
static pthread_t		 commit_flush_thread;
static pthread_cond_t		 commit_flush_cond;	/* CLOCK_MONOTONIC */
#define COMMIT_FLUSH_LINGER_MS	5
#define COMMIT_FLUSH_BATCH	64
static TAILQ_HEAD(, commit)	 commit_flush_todo =
				    TAILQ_HEAD_INITIALIZER(commit_flush_todo);
static int			 commit_flush_stopping, commit_flush_running;
static int			 commit_flush_cond_ready;
static size_t			 commit_nflushing;	/* acked, not in place */
static size_t			 commit_nlost;	/* acked, never put in place */

/*
 * The fault tests' seam: with JQ_TEST_COMMIT_KILL=STEP:N the server kills
 * itself at the Nth time it reaches STEP: "synced" (a batch's I records
 * are synced, before the OK), "file" (an acknowledged result's temporary
 * file is synced, before its rename), "renamed" (a flush batch is renamed
 * and its directories synced, before its D records).
 */
enum commit_kill { COMMIT_KILL_SYNCED, COMMIT_KILL_FILE, COMMIT_KILL_RENAMED };
static const char		*commit_kill_names[] = { "synced", "file",
				    "renamed" };
static int			 commit_kill_step = -1;
static unsigned			 commit_kill_at, commit_kill_seen;

/* Read JQ_TEST_COMMIT_KILL (see commit_test_kill), at start. */
static void
commit_seam(void)
{
	const char	*env, *colon;
	size_t		 i;

	if ((env = getenv("JQ_TEST_COMMIT_KILL")) == NULL ||
	    (colon = strchr(env, ':')) == NULL)
		return;
	for (i = 0; i < sizeof commit_kill_names / sizeof *commit_kill_names;
	    i++)
		if (strlen(commit_kill_names[i]) == (size_t)(colon - env) &&
		    strncmp(env, commit_kill_names[i], (size_t)(colon - env)) == 0 &&
		    parse_uint(colon + 1, 1, UINT32_MAX, &commit_kill_at) == 0) {
			commit_kill_step = (int)i;
			log_warnx("JQ_TEST_COMMIT_KILL=%s: the server kills "
			    "itself there (a fault test)", env);
		}
}

/* Kill the server if the seam points at this step, this time. */
static void
commit_test_kill(enum commit_kill step)
{
	if ((int)step == commit_kill_step &&
	    __atomic_add_fetch(&commit_kill_seen, 1, __ATOMIC_SEQ_CST) ==
	    commit_kill_at)
		raise(SIGKILL);
}

/*
 * Make the adds of a batch durable and give them ids: each file synced,
 * each named by its id, the spool directory synced once, every A record
 * appended and synced at once.  What fails gives its id to the next.  A
 * watched file (add->watched) has no data here, only its W record, in the
 * same write and in the same id order.
 */
static void
commit_adds(struct commit_list *batch)
{
	struct commit		*cm;
	struct spool_add	**v = NULL;
	uint64_t		 id = spool_next_id(), k = 0, nspool = 0;
	char			*cause = NULL;

	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->add == NULL)
			continue;
		if (cm->add->watched)
			cm->add->id = id + k;
		else if (spool_commit_file(&cm->st, cm->add, &cm->cause) != 0 ||
		    spool_name_file(&cm->st, cm->add, id + k, &cm->cause) != 0) {
			cm->rc = -1;
			continue;
		} else
			nspool++;
		v = xreallocarray(v, (size_t)k + 1, sizeof *v);
		v[k++] = cm->add;
	}
	if (k == 0)
		return;
	if (nspool == 0 || spool_sync_dir(&cause) == 0) {
		if (nspool > 0)
			spool_test_kill();
		if (journal_add_jobs(v, (size_t)k, &cause) == 0) {
			spool_took_ids(k);
			TAILQ_FOREACH(cm, batch, entry)
				if (cm->add != NULL && cm->rc == 0 &&
				    !cm->add->watched)
					store_close(&cm->st);
			free(v);
			return;
		}
	}
	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->add == NULL || cm->rc != 0)
			continue;
		if (!cm->add->watched)
			spool_unname(&cm->st, cm->add);
		cm->rc = -1;
		cm->cause = xstrdup(cause);
	}
	free(cause);
	free(v);
}

/*
 * The journal is compacted only at start: a server that serves for long
 * (--keep, --watch) would grow it by every small result it stores.  Past
 * this many bytes of results inside it, results take the old road (file
 * synced and in place before the OK) until the next start.
 */
#define COMMIT_INLINE_TOTAL	(256ULL << 20)

static uint64_t			 commit_inlined;	/* the thread's */
int				 commit_early_ok;	/* --early-ok */

/* May cm's result travel inside its journal record (commit_inline_record)? */
static int
commit_small(const struct commit *cm)
{
	return cm->ack != NULL && cm->add == NULL && !cm->tree && store_sync &&
	    cm->size <= JQ_INLINE_MAX &&
	    commit_inlined + cm->size <= COMMIT_INLINE_TOTAL;
}

/*
 * Append cm's I record: its result's bytes, read back from the temporary
 * file (the page cache), inside it.  The file stays open under its
 * temporary name; commit_flush_batch puts it in place later.
 */
static int
commit_inline_record(struct commit *cm)
{
	char	*bytes;
	size_t	 got = 0;
	ssize_t	 n;
	int	 rc;

	bytes = xmalloc(cm->size > 0 ? (size_t)cm->size : 1);
	while (got < cm->size && (n = pread(cm->st.fd, bytes + got,
	    (size_t)cm->size - got, (off_t)got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cm->cause = xprintf("%s: reading it back: %s",
			    cm->st.final, strerror(errno));
			free(bytes);
			return -1;
		}
		got += (size_t)n;
	}
	if (got != cm->size) {
		cm->cause = xprintf("%s: reading it back: it shrank",
		    cm->st.final);
		free(bytes);
		return -1;
	}
	rc = journal_add_inline(cm->job, bytes, cm->size, &cm->cause);
	free(bytes);
	return rc;
}

/* Make one batch durable: files, then directories, then the journal. */
static void
commit_batch(struct commit_list *batch)
{
	struct commit	*cm, *other;
	struct stat	 st;
	char		*cause;
	int		 any = 0;

	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->add != NULL)
			continue;
		if (commit_small(cm)) {
			if (commit_inline_record(cm) != 0) {
				store_abort(&cm->st);
				cm->rc = -1;
			} else {
				cm->inlined = any = 1;
				commit_inlined += cm->size;
			}
			continue;
		}
		if (cm->tree) {
			if ((cm->rc = store_commit_tree(&cm->st,
			    &cli_tree_limits, &cm->cause)) == -2) {
				cm->refused = 1;
				cm->rc = -1;
			}
		} else if (store_commit_file(&cm->st, &cm->cause) != 0)
			cm->rc = -1;
		/* the directory's identity only serves to sync it once */
		if (cm->rc == 0 && store_sync && fstat(cm->st.dirfd, &st) == 0) {
			cm->dir_dev = st.st_dev;
			cm->dir_ino = st.st_ino;
		}
	}
	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->add != NULL || cm->rc != 0 || cm->dir_synced ||
		    !store_sync || cm->inlined)
			continue;
		if (store_sync_dir(&cm->st, &cm->cause) != 0) {
			cm->rc = -1;
			continue;
		}
		/* one fsync serves every result renamed in this directory */
		for (other = TAILQ_NEXT(cm, entry); other != NULL;
		    other = TAILQ_NEXT(other, entry))
			if (other->add == NULL && other->rc == 0 &&
			    !other->inlined && other->dir_dev == cm->dir_dev &&
			    other->dir_ino == cm->dir_ino)
				other->dir_synced = 1;
	}
	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->add != NULL || cm->inlined)
			continue;
		store_close(&cm->st);
		if (cm->rc == 0 && journal_add_done(cm->job, cm->size,
		    &cm->cause) != 0)
			cm->rc = -1;
		any |= cm->rc == 0;
	}
	if (any && journal_sync_now(&cause) != 0) {
		TAILQ_FOREACH(cm, batch, entry) {
			if (cm->add == NULL && cm->rc == 0) {
				if (cm->inlined)	/* told nothing: gone */
					store_abort(&cm->st);
				cm->inlined = 0;
				cm->rc = -1;
				cm->cause = xstrdup(cause);
			}
		}
		free(cause);
	}
	if (any)
		commit_test_kill(COMMIT_KILL_SYNCED);
	commit_adds(batch);
}

/*
 * The flush thread: put a batch of acknowledged small results in place
 * (their bytes are durable in the journal already): each file fdatasync'd
 * and renamed, each directory fsync'd once, then their D records appended
 * without a sync (the I records before them hold the data; the next sync
 * of the journal, or compaction at the next start, makes them durable).
 * So a final name only ever holds a synced, whole file.  A failure leaves
 * the file at no final name and its bytes in the journal (commit_lost).
 */
static void
commit_flush_batch(struct commit_list *batch)
{
	struct commit	*cm, *other;
	struct stat	 st;
	char		*cause;
	int		 renamed = 0;

	/*
	 * start every file's writeback first, so that their blocks are
	 * allocated in one filesystem transaction: the first fdatasync then
	 * commits it for all, and the others mostly wait for their data
	 * (a hint only: each file still gets its own fdatasync)
	 */
	if (store_sync)
		TAILQ_FOREACH(cm, batch, entry)
			(void)sync_file_range(cm->st.fd, 0, 0,
			    SYNC_FILE_RANGE_WRITE);
	TAILQ_FOREACH(cm, batch, entry) {
		cm->dir_synced = 0;
		if (store_sync && fdatasync(cm->st.fd) != 0) {
			cm->cause = xprintf("%s: fdatasync: %s", cm->st.final,
			    strerror(errno));
			store_abort(&cm->st);
			cm->rc = -1;
			continue;
		}
		cm->st.datasynced = 1;
		commit_test_kill(COMMIT_KILL_FILE);
		if (store_commit_file(&cm->st, &cm->cause) != 0) {
			cm->rc = -1;
			continue;
		}
		renamed = 1;
		if (fstat(cm->st.dirfd, &st) == 0) {
			cm->dir_dev = st.st_dev;
			cm->dir_ino = st.st_ino;
		}
	}
	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->rc != 0 || cm->dir_synced)
			continue;
		if (store_sync_dir(&cm->st, &cm->cause) != 0) {
			cm->rc = -1;
			continue;
		}
		for (other = TAILQ_NEXT(cm, entry); other != NULL;
		    other = TAILQ_NEXT(other, entry))
			if (other->rc == 0 && other->dir_dev == cm->dir_dev &&
			    other->dir_ino == cm->dir_ino)
				other->dir_synced = 1;
	}
	if (renamed)
		commit_test_kill(COMMIT_KILL_RENAMED);
	TAILQ_FOREACH(cm, batch, entry) {
		store_close(&cm->st);
		/* a D record that cannot be written costs nothing: the I
		 * record holds the result, and the next start compacts it */
		if (cm->rc == 0 && journal_add_done(cm->job, cm->size,
		    &cause) != 0)
			free(cause);
	}
}

/*
 * With the lock held and something to flush: let more come, up to
 * COMMIT_FLUSH_LINGER_MS or COMMIT_FLUSH_BATCH results, so that one
 * directory fsync (and one filesystem commit) serves many.  Nobody waits
 * on this: the OKs went out already; only the file's appearance is later.
 */
static void
commit_flush_linger(void)
{
	struct timespec	 end;
	struct commit	*cm;
	size_t		 n = 0;

	if (commit_flush_stopping)
		return;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += COMMIT_FLUSH_LINGER_MS * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		n = 0;
		TAILQ_FOREACH(cm, &commit_flush_todo, entry)
			if (++n >= COMMIT_FLUSH_BATCH)
				return;
		if (commit_flush_stopping || pthread_cond_timedwait(
		    &commit_flush_cond, &commit_lock, &end) != 0)
			return;
	}
}

/* The flush thread: take what waits to be put in place, flush it, hand it back. */
static void *
commit_flush_main(void *arg)
{
	struct commit_list	 batch;
	struct commit		*cm;
	char			 byte = 1;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&commit_lock);
		while (TAILQ_EMPTY(&commit_flush_todo) && !commit_flush_stopping)
			pthread_cond_wait(&commit_flush_cond, &commit_lock);
		commit_flush_linger();
		if (TAILQ_EMPTY(&commit_flush_todo)) {
			pthread_mutex_unlock(&commit_lock);
			return NULL;
		}
		TAILQ_INIT(&batch);
		TAILQ_CONCAT(&batch, &commit_flush_todo, entry);
		pthread_mutex_unlock(&commit_lock);

		commit_flush_batch(&batch);

		pthread_mutex_lock(&commit_lock);
		while ((cm = TAILQ_FIRST(&batch)) != NULL) {
			TAILQ_REMOVE(&batch, cm, entry);
			TAILQ_INSERT_TAIL(&commit_done, cm, entry);
		}
		pthread_mutex_unlock(&commit_lock);
		if (write(commit_pipe[1], &byte, 1) < 0 && errno != EAGAIN)
			abort();
	}
}

/* In the loop: hand an acknowledged small result to the flush thread. */
static void
commit_flush(struct commit *cm)
{
	pthread_mutex_lock(&commit_lock);
	TAILQ_INSERT_TAIL(&commit_flush_todo, cm, entry);
	pthread_cond_signal(&commit_flush_cond);
	pthread_mutex_unlock(&commit_lock);
}

/* The thread: take whatever waits, commit it, hand it back to the loop. */
static void *
commit_main(void *arg)
{
	struct commit_list	 batch;
	struct commit		*cm;
	char			 byte = 1;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&commit_lock);
		while (TAILQ_EMPTY(&commit_todo) && !commit_stopping)
			pthread_cond_wait(&commit_cond, &commit_lock);
		if (TAILQ_EMPTY(&commit_todo)) {
			pthread_mutex_unlock(&commit_lock);
			return NULL;
		}
		TAILQ_INIT(&batch);
		TAILQ_CONCAT(&batch, &commit_todo, entry);
		commit_busy = 1;
		pthread_mutex_unlock(&commit_lock);

		commit_batch(&batch);

		pthread_mutex_lock(&commit_lock);
		while ((cm = TAILQ_FIRST(&batch)) != NULL) {
			TAILQ_REMOVE(&batch, cm, entry);
			TAILQ_INSERT_TAIL(&commit_done, cm, entry);
		}
		commit_busy = 0;
		pthread_mutex_unlock(&commit_lock);
		/* a full pipe already holds a wake-up: nothing is lost */
		if (write(commit_pipe[1], &byte, 1) < 0 && errno != EAGAIN)
			abort();
	}
}

/*
 * In the loop: deliver finished commits.  A small result whose I record is
 * synced is acknowledged (cm->ack) and goes on to the flush thread; it
 * comes back here once in place, and is then done like any other.
 */
static void
commit_deliver(struct commit_list *done)
{
	struct commit	*cm;

	while ((cm = TAILQ_FIRST(done)) != NULL) {
		TAILQ_REMOVE(done, cm, entry);
		if (cm->inlined && !cm->acked && cm->rc == 0) {
			cm->acked = 1;
			commit_nflushing++;
			cm->ack(cm);
			commit_flush(cm);
			continue;
		}
		if (cm->acked) {
			commit_nflushing--;
			commit_nlost += cm->rc != 0;
		}
		(cm->done != NULL ? cm->done : commit_cb)(cm);	/* frees cm */
	}
}

/* In the loop: deliver finished commits to their connections. */
static void
commit_wake(evutil_socket_t fd, short what, void *arg)
{
	struct commit_list	 done;
	char			 buf[64];

	(void)arg;
	/* else made active by commit_inline; a short read emptied the pipe */
	if (what & EV_READ)
		while (read(fd, buf, sizeof buf) == (ssize_t)sizeof buf)
			;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&commit_lock);
	TAILQ_CONCAT(&done, &commit_done, entry);
	pthread_mutex_unlock(&commit_lock);
	commit_deliver(&done);
}

/* Start the commit thread; done is called in the loop for each commit. */
int
commit_start(struct event_base *base, void (*done)(struct commit *),
    char **cause)
{
	int	 rc;

	commit_cb = done;
	if (pipe2(commit_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		*cause = xprintf("pipe: %s", strerror(errno));
		return -1;
	}
	commit_ev = event_new(base, commit_pipe[0], EV_READ | EV_PERSIST,
	    commit_wake, NULL);
	event_add(commit_ev, NULL);
	commit_seam();
	commit_stopping = commit_flush_stopping = 0;
	if (!commit_flush_cond_ready) {
		pthread_condattr_t	 ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&commit_flush_cond, &ca);
		pthread_condattr_destroy(&ca);
		commit_flush_cond_ready = 1;
	}
	if ((rc = pthread_create(&commit_thread, NULL, commit_main, NULL)) != 0) {
		*cause = xprintf("cannot start the commit thread: %s",
		    strerror(rc));
		return -1;
	}
	commit_running = 1;
	if ((rc = pthread_create(&commit_flush_thread, NULL, commit_flush_main,
	    NULL)) != 0) {
		*cause = xprintf("cannot start the flush thread: %s",
		    strerror(rc));
		return -1;
	}
	commit_flush_running = 1;
	return 0;
}

/*
 * In the loop, with the lock held: make cm durable here if nothing needs
 * syncing (--no-sync), it is no tree and the thread has nothing (so the
 * journal, the spool's ids and the directories are ours alone meanwhile),
 * and queue it for delivery from the loop.  Returns 0 if it did, else -1.
 */
static int
commit_inline(struct commit *cm)
{
	struct commit_list	 batch;

	if (store_sync || cm->tree || commit_busy ||
	    !TAILQ_EMPTY(&commit_todo) || commit_ev == NULL)
		return -1;
	TAILQ_INIT(&batch);
	TAILQ_INSERT_TAIL(&batch, cm, entry);
	commit_batch(&batch);
	TAILQ_REMOVE(&batch, cm, entry);
	TAILQ_INSERT_TAIL(&commit_done, cm, entry);
	event_active(commit_ev, EV_TIMEOUT, 0);
	return 0;
}

/* Hand a result to the thread; the connection waits for commit_cb. */
void
commit_submit(struct commit *cm)
{
	pthread_mutex_lock(&commit_lock);
	if (commit_inline(cm) == 0) {
		pthread_mutex_unlock(&commit_lock);
		return;
	}
	TAILQ_INSERT_TAIL(&commit_todo, cm, entry);
	if (commit_plugged > 0)
		commit_held = 1;	/* commit_unplug wakes the thread */
	else
		pthread_cond_signal(&commit_cond);
	pthread_mutex_unlock(&commit_lock);
}

/* How many acknowledged results wait to be put in place (the loop's). */
size_t
commit_flushing(void)
{
	return commit_nflushing;
}

/*
 * How many acknowledged results could not be put in place: they are in
 * the journal only, which must be kept for the next start to place them.
 */
size_t
commit_lost(void)
{
	return commit_nlost;
}

/*
 * Hold back the thread's wake-up while the loop reads input that may hold
 * more results, so that they go in one batch.  (A thread busy with the
 * previous batch may still take part of them: that costs a sync, nothing
 * else.)
 */
void
commit_plug(void)
{
	commit_plugged++;
}

/* Wake the thread for what came while plugged. */
void
commit_unplug(void)
{
	if (--commit_plugged > 0 || !commit_held)
		return;
	commit_held = 0;
	pthread_mutex_lock(&commit_lock);
	pthread_cond_signal(&commit_cond);
	pthread_mutex_unlock(&commit_lock);
}

/*
 * Finish what was handed over (results keep their durability even when the
 * server stops on a signal), stop the thread, and settle what is left.
 */
void
commit_stop(void)
{
	if (commit_running) {
		pthread_mutex_lock(&commit_lock);
		commit_stopping = 1;
		pthread_cond_signal(&commit_cond);
		pthread_mutex_unlock(&commit_lock);
		pthread_join(commit_thread, NULL);
		commit_running = 0;
	}
	/* settles the jobs; acknowledged small results go on to be flushed */
	commit_deliver(&commit_done);
	if (commit_flush_running) {
		pthread_mutex_lock(&commit_lock);
		commit_flush_stopping = 1;
		pthread_cond_signal(&commit_flush_cond);
		pthread_mutex_unlock(&commit_lock);
		pthread_join(commit_flush_thread, NULL);
		commit_flush_running = 0;
	}
	commit_deliver(&commit_done);	/* every result is in place now */
	if (commit_ev != NULL)
		event_free(commit_ev);
	commit_ev = NULL;
	if (commit_pipe[0] >= 0) {
		close(commit_pipe[0]);
		close(commit_pipe[1]);
	}
	commit_pipe[0] = commit_pipe[1] = -1;
}
