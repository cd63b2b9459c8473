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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jq.h"

static pthread_t		 commit_thread;
static pthread_mutex_t		 commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 commit_cond = PTHREAD_COND_INITIALIZER;
static TAILQ_HEAD(, commit)	 commit_todo = TAILQ_HEAD_INITIALIZER(commit_todo);
static TAILQ_HEAD(, commit)	 commit_done = TAILQ_HEAD_INITIALIZER(commit_done);
static int			 commit_stopping, commit_running;
static int			 commit_busy;	/* the thread holds a batch */
static int			 commit_plugged, commit_held;
static int			 commit_pipe[2] = { -1, -1 };
static struct event		*commit_ev;
static void			(*commit_cb)(struct commit *);

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
		    !store_sync)
			continue;
		if (store_sync_dir(&cm->st, &cm->cause) != 0) {
			cm->rc = -1;
			continue;
		}
		/* one fsync serves every result renamed in this directory */
		for (other = TAILQ_NEXT(cm, entry); other != NULL;
		    other = TAILQ_NEXT(other, entry))
			if (other->add == NULL && other->rc == 0 &&
			    other->dir_dev == cm->dir_dev &&
			    other->dir_ino == cm->dir_ino)
				other->dir_synced = 1;
	}
	TAILQ_FOREACH(cm, batch, entry) {
		if (cm->add != NULL)
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
				cm->rc = -1;
				cm->cause = xstrdup(cause);
			}
		}
		free(cause);
	}
	commit_adds(batch);
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

/* In the loop: deliver finished commits to their connections. */
static void
commit_wake(evutil_socket_t fd, short what, void *arg)
{
	struct commit_list	 done;
	struct commit		*cm;
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
	while ((cm = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, cm, entry);
		(cm->done != NULL ? cm->done : commit_cb)(cm);	/* frees cm */
	}
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
	if ((rc = pthread_create(&commit_thread, NULL, commit_main, NULL)) != 0) {
		*cause = xprintf("cannot start the commit thread: %s",
		    strerror(rc));
		return -1;
	}
	commit_running = 1;
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
	struct commit	*cm;

	if (commit_running) {
		pthread_mutex_lock(&commit_lock);
		commit_stopping = 1;
		pthread_cond_signal(&commit_cond);
		pthread_mutex_unlock(&commit_lock);
		pthread_join(commit_thread, NULL);
		commit_running = 0;
	}
	while ((cm = TAILQ_FIRST(&commit_done)) != NULL) {
		TAILQ_REMOVE(&commit_done, cm, entry);
		/* settles the job; frees cm */
		(cm->done != NULL ? cm->done : commit_cb)(cm);
	}
	if (commit_ev != NULL)
		event_free(commit_ev);
	commit_ev = NULL;
	if (commit_pipe[0] >= 0) {
		close(commit_pipe[0]);
		close(commit_pipe[1]);
	}
	commit_pipe[0] = commit_pipe[1] = -1;
}
