/*
 * watch.c: jq-serve --watch DIR, the drop folder without polling.
 *
 * An inotify watch on DIR, read through the event loop, reports each file
 * closed after writing (IN_CLOSE_WRITE) and each one moved in
 * (IN_MOVED_TO); nothing else, so a file still being written is never
 * seen.  A file that watchdir.c wants (watchdir_unwanted: not a dot file,
 * not named like a result...) and that is a regular file (never a symbolic
 * link) is pinned as it is now, as input.c pins a command-line FILE, and
 * goes to the commit thread
 * as an add without data: it gets the next id and its W record in the
 * journal, durably, in the same order as the ADDs around it; then it
 * becomes a job through jobs_add, the one way jobs come in at run time.
 * The job is a file job: its data is the file, sent from where it is, and
 * its result goes beside it (or to -o DIR).
 *
 * A file found by a scan or moved in may still be open for writing: one
 * that some process holds so (input_writers) waits for its close event.
 * Not so a file reported closed: the kernel queues IN_CLOSE_WRITE before
 * it lets go of the writer's hold, so the test could see the closing
 * writer itself; the event is taken at its word.
 *
 * The watch is made before the journal is read (watch_setup) and the
 * directory is scanned once the loop runs (watch_start), so no file slips
 * between the two: a file both scanned and reported is found the second
 * time by its name.  The scan serves the files already there by the rerun
 * rule of serve.c (one whose result is up to date is left out, unless
 * --redo), and the events the same rule.  When the kernel's event queue
 * overflows (IN_Q_OVERFLOW), events were lost: the directory is scanned
 * again, which finds whatever they reported.
 *
 * A name is one job (as for jq-put --add).  A file closed or moved in
 * under the name of a job:
 *   waiting   the job is pinned to it again: it serves the newest version;
 *   failed    pinned again and run again, as jq-put --retry would;
 *   running, done   not served again; the log says so.  A new file is
 *             served again under a new name; this one after a restart
 *             with --fresh (the rerun rule), or that finds its result
 *             gone.
 *
 * Bounds: at most WATCH_INFLIGHT_MAX files (and one read's events past
 * that) are on their way to the journal at once.  At the limit the watch
 * stops reading events (the kernel holds them, and an overflow costs a
 * rescan) and a scan pauses, until half have become jobs.  A scan looks at
 * WATCH_SCAN_STEP entries per turn of the loop, and one turn reads at most
 * WATCH_READS_MAX buffers of events, so connections are served between.
 *
 * The directory removed, moved away or unmounted: the watch ends and the
 * server shuts down as after jq-put --shutdown (running jobs may finish,
 * waiting ones stay in the journal); jq-serve exits JQ_EXIT_IO then
 * (watch_lost).  The directory's own IN_DELETE_SELF comes only once nobody
 * holds it open, and we do (its jobs' files are opened in it): so its
 * parent is watched too, for its name going away (IN_DELETE, IN_MOVED_FROM
 * with IN_ISDIR), and a move of the parent (IN_MOVE_SELF) is checked by
 * looking the name up again.
 *
 * Calls run one way: server.c -> watch.c -> jobs.c, commit.c, spool.c,
 * watchdir.c, input.c.
 */
#include <sys/inotify.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jq.h"

#define WATCH_INFLIGHT_MAX	1024	/* files on their way to the journal */
#define WATCH_SCAN_STEP		256	/* directory entries per turn */
#define WATCH_READS_MAX		16	/* event buffers read per turn */
#define WATCH_READ_BUF		(64 * 1024)
#define WATCH_MASK		(IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | \
	IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define WATCH_PARENT_MASK	(IN_DELETE | IN_MOVED_FROM | IN_MOVE_SELF | \
	IN_ONLYDIR | IN_DONT_FOLLOW)
#define WATCH_WHO		"--watch"

/* A file on its way to the journal, and from there to the queue. */
struct watch_file {
	TAILQ_ENTRY(watch_file)	 entry;
	struct spool_add	*add;	/* its name and result; the commit's */
	struct stat		 st;	/* the file as last seen */
};

/* How a name came to the watch's notice. */
enum watch_how {
	WATCH_SCANNED,		/* found by a scan */
	WATCH_CLOSED,		/* IN_CLOSE_WRITE: a writer closed it */
	WATCH_MOVED		/* IN_MOVED_TO */
};

/* What the watch made of a name. */
enum watch_verdict {
	WATCH_IGNORED,		/* not served, or not now */
	WATCH_NEW,		/* on its way to being a job */
	WATCH_CURRENT,		/* its result is up to date: not served */
	WATCH_WRITING,		/* open for writing: served once closed */
	WATCH_KNOWN		/* a job, or on its way */
};

static TAILQ_HEAD(, watch_file)	 watch_files =
    TAILQ_HEAD_INITIALIZER(watch_files);
static size_t			 watch_ninflight;
static int			 watch_ifd = -1;	/* inotify */
static int			 watch_wd = -1;
static int			 watch_pwd = -1;	/* its parent's */
static char			*watch_base;	/* its name in the parent */
static struct event		*watch_ev;	/* events to read */
static int			 watch_reading;	/* watch_ev is added */
static struct event		*watch_scan_ev;	/* the scan's next step */
static DIR			*watch_dirp;
static int			 watch_scanning, watch_first;
static size_t			 watch_nnew, watch_ncurrent, watch_nwriting;
static int			 watch_redo;
static int			 watch_gone;	/* the directory is gone */

/*
 * Watch the parent of the watched directory for the directory's name going
 * away (see the top of this file).  Without it (watching "/", or a parent
 * we may not read) only the directory's own events tell.
 */
static void
watch_watch_parent(void)
{
	const char	*real = watchdir_real(), *slash = strrchr(real, '/');
	char		*parent;

	if (slash == NULL || slash[1] == '\0')
		return;			/* "/" */
	parent = slash == real ? xstrdup("/") :
	    xstrndup(real, (size_t)(slash - real));
	if ((watch_pwd = inotify_add_watch(watch_ifd, parent,
	    WATCH_PARENT_MASK)) < 0)
		log_warnx("--watch %s: cannot watch its parent %s (%s): its "
		    "removal is noticed late", watchdir_path(), parent,
		    strerror(errno));
	else
		watch_base = xstrdup(slash + 1);
	free(parent);
}

/*
 * Set up the watch of cfg's directory (watchdir_setup) before the journal
 * is read, so that a file arriving from now on is reported.  redo: serve
 * files whose results are up to date too.  0, or a JQ_EXIT_* status with
 * *cause.
 */
int
watch_setup(const struct watchdir_config *cfg, int redo, char **cause)
{
	struct stat	 a, b;
	int		 rc, e;

	if ((rc = watchdir_setup(cfg, cause)) != 0)
		return rc;
	watch_redo = redo;
	/* a writer breaking input_writers' read lease signals SIGIO */
	signal(SIGIO, SIG_IGN);
	if ((watch_ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		e = errno;
		*cause = xprintf("--watch %s: inotify: %s%s", cfg->dir,
		    strerror(e), e == EMFILE ? " (the limit is "
		    "fs.inotify.max_user_instances)" : "");
		return JQ_EXIT_IO;
	}
	if ((watch_wd = inotify_add_watch(watch_ifd, watchdir_real(),
	    WATCH_MASK)) < 0) {
		e = errno;
		*cause = xprintf("--watch %s: %s%s", cfg->dir, strerror(e),
		    e == ENOSPC ? " (the limit is "
		    "fs.inotify.max_user_watches)" : "");
		return JQ_EXIT_IO;
	}
	/* the name must still lead to the directory opened */
	if (stat(watchdir_real(), &a) != 0 || fstat(watchdir_fd(), &b) != 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		*cause = xprintf("--watch %s: replaced while starting", cfg->dir);
		return JQ_EXIT_IO;
	}
	watch_watch_parent();
	return 0;
}

/* Whether the watched directory went away (jq-serve exits JQ_EXIT_IO). */
int
watch_lost(void)
{
	return watch_gone;
}

/* Stop reading events (too many files in flight, or the end). */
static void
watch_pause(void)
{
	if (watch_reading)
		event_del(watch_ev);
	watch_reading = 0;
}

/* Read events and scan again, if paused, once in-flight files allow. */
static void
watch_resume(void)
{
	if (watch_gone || watch_ninflight > WATCH_INFLIGHT_MAX / 2)
		return;
	if (!watch_reading && watch_ev != NULL) {
		event_add(watch_ev, NULL);
		watch_reading = 1;
	}
	if (watch_scanning)
		event_active(watch_scan_ev, EV_TIMEOUT, 0);
}

/*
 * The directory is gone (how: "removed"...): no more files are watched, and
 * the server shuts down.
 */
static void
watch_end(const char *how)
{
	if (watch_gone)
		return;
	watch_gone = 1;
	watch_pause();
	watch_scanning = 0;
	log_warnx("the watched directory %s was %s: no more files are "
	    "watched; shutting down (exit status %d once no job runs)",
	    watchdir_path(), how, JQ_EXIT_IO);
	jobs_shutdown(WATCH_WHO " (its directory is gone)");
}

/* Whether st is the file job j was pinned to. */
static int
watch_same(const struct job *j, const struct stat *st)
{
	return j->in_name != NULL && j->in_dev == st->st_dev &&
	    j->in_ino == st->st_ino && j->in_size == (uint64_t)st->st_size &&
	    j->in_mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
}

/*
 * File name (now st) is there again under the name of job j: what that
 * means for j (see the top of this file).  how: as watch_consider.
 */
static void
watch_again(struct job *j, const char *name, const struct stat *st,
    enum watch_how how)
{
	char	*cause = NULL;

	if (j->origin != JOB_FILE || watch_same(j, st))
		return;
	switch (j->state) {
	case JOB_WAITING:
		watchdir_pin(j, name, st);
		log_info("job %llu %s: written again before it was served; it "
		    "serves the new version", (unsigned long long)j->id,
		    j->path);
		break;
	case JOB_FAILED:
		watchdir_pin(j, name, st);
		if (jobs_retry(j, WATCH_WHO " (its file came again)",
		    &cause) != 0) {
			log_warnx("job %llu %s: cannot run it again: %s",
			    (unsigned long long)j->id, j->path, cause);
			free(cause);
		}
		break;
	default:
		if (how != WATCH_SCANNED)
			log_notice("%s: written again after job %llu %s; not "
			    "served again (a name is one job: give a new file "
			    "a new name, or start jq-serve again with "
			    "--fresh)", j->path,
			    (unsigned long long)j->id,
			    j->state == JOB_DONE ? "was done" : "was taken");
		break;
	}
}

/* The file of that name on its way to the journal, or NULL. */
static struct watch_file *
watch_inflight(const char *path)
{
	struct watch_file	*wf;

	TAILQ_FOREACH(wf, &watch_files, entry)
		if (strcmp(wf->add->name, path) == 0)
			return wf;
	return NULL;
}

/*
 * Whether the result at path is up to date for input st (make's rule, as
 * serve.c's: a regular file not older than the input); -1, with *why,
 * when something that is not a file is in the way.
 */
static int
watch_result_current(const char *path, const struct stat *in, char **why)
{
	struct stat	 st;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
		*why = xprintf("its result %s is %s; a result can replace only "
		    "a file", path, input_kind(st.st_mode));
		return -1;
	}
	return S_ISREG(st.st_mode) && (st.st_mtim.tv_sec > in->st_mtim.tv_sec ||
	    (st.st_mtim.tv_sec == in->st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec >= in->st_mtim.tv_nsec));
}

static void	watch_landed(struct commit *);

/*
 * File name (st), job name path, result result: a new job; hand it to the
 * commit thread for its id and W record (watch_landed takes over).  Takes
 * path and result over.
 */
static void
watch_submit(char *path, char *result, const struct stat *st)
{
	struct watch_file	*wf = xcalloc(1, sizeof *wf);
	struct commit		*cm = xcalloc(1, sizeof *cm);

	wf->add = spool_add_new(path, strlen(path), 0);
	wf->add->watched = 1;
	wf->add->result = result;
	wf->st = *st;
	free(path);
	spool_pend(wf->add);	/* its name and result are taken */
	TAILQ_INSERT_TAIL(&watch_files, wf, entry);
	watch_ninflight++;
	cm->add = wf->add;
	cm->arg = wf;
	cm->done = watch_landed;
	commit_submit(cm);
}

/*
 * The commit thread is done with a watched file: it is a job now (its id
 * and W record are durable), or it could not be journaled.
 */
static void
watch_landed(struct commit *cm)
{
	struct watch_file	*wf = cm->arg;
	struct spool_add	*a = wf->add;
	struct job		*j;
	const char		*name;

	spool_unpend(a);
	TAILQ_REMOVE(&watch_files, wf, entry);
	watch_ninflight--;
	if (cm->rc == 0) {
		/* the id is given: the job is made, even while stopping */
		j = jobs_add(a->name, a->result, 0, 0, WATCH_WHO);
		a->name = a->result = NULL;	/* the job's from now on */
		name = strrchr(j->path, '/') + 1;
		watchdir_pin(j, name, &wf->st);
		spool_index_file(j);
	} else {
		log_warnx("%s: not served: %s (the next start serves it)",
		    a->name, cm->cause);
	}
	spool_add_free(a);
	free(wf);
	free(cm->cause);
	free(cm);
	watch_resume();
}

/*
 * Look at the file name in the watched directory (how it came to notice:
 * how) and make it a job if it is one.
 */
static enum watch_verdict
watch_consider(const char *name, enum watch_how how)
{
	struct queue		*q = &server.queue;
	struct watch_file	*wf;
	struct stat		 st;
	struct job		*j;
	const char		*why, *base;
	char			*path, *result, *cause = NULL;
	int			 fd, e, rc;

	if (watch_gone || jobs_stopping())
		return WATCH_IGNORED;
	if ((why = watchdir_unwanted(name)) != NULL) {
		log_debug("watch: %s: %s; not served", name, why);
		return WATCH_IGNORED;
	}
	if ((fd = input_openat_file(watchdir_fd(), name, &st)) < 0) {
		if (errno != ENOENT)	/* gone already: nothing to say */
			log_debug("watch: %s: %s; not served", name,
			    errno == ELOOP ? "a symbolic link" : strerror(errno));
		return WATCH_IGNORED;
	}
	rc = !S_ISREG(st.st_mode) ? -1 : how == WATCH_CLOSED ? 0 :
	    input_writers(fd);
	close(fd);
	if (rc < 0) {
		log_debug("watch: %s: %s; only regular files are served", name,
		    input_kind(st.st_mode));
		return WATCH_IGNORED;
	}
	if (rc > 0) {
		log_debug("watch: %s: still open for writing; served once "
		    "closed", name);
		return WATCH_WRITING;
	}
	path = watchdir_job_name(name);
	if ((wf = watch_inflight(path)) != NULL) {
		wf->st = st;		/* pinned to the newest */
		free(path);
		return WATCH_KNOWN;
	}
	if ((j = queue_find_name(q, path, strlen(path), &e)) != NULL ||
	    e != 0) {
		if (j != NULL)
			watch_again(j, name, &st, how);
		else
			log_warnx("%s: not served: %s", path, strerror(e));
		free(path);
		return j != NULL ? WATCH_KNOWN : WATCH_IGNORED;
	}
	if ((result = watchdir_result(name, &cause)) == NULL ||
	    (rc = watch_result_current(result, &st, &cause)) < 0) {
		log_warnx("%s: not served: %s", path, cause);
		free(cause);
		free(path);
		free(result);
		return WATCH_IGNORED;
	}
	if (rc > 0 && !watch_redo) {
		log_info("%s: its result %s is up to date; not served", path,
		    result);
		free(path);
		free(result);
		return WATCH_CURRENT;
	}
	base = strrchr(result, '/') + 1;
	if ((rc = spool_result_clash(q, base, &cause)) != 0 ||
	    queue_reserve(q, spool_inflight() + 1) != 0) {
		if (rc > 0)
			log_warnx("%s: not served: its result %s would be %s",
			    path, result, cause);
		else
			log_warnx("%s: not served: %s", path, strerror(errno));
		free(cause);
		free(path);
		free(result);
		return WATCH_IGNORED;
	}
	watch_submit(path, result, &st);
	return WATCH_NEW;
}

/* A scan is over: say what it found. */
static void
watch_scan_end(void)
{
	char	 more[160] = "";
	size_t	 len = 0;

	watch_scanning = 0;
	if (watch_ncurrent > 0)
		len += (size_t)snprintf(more + len, sizeof more - len, "; %zu "
		    "already %s results (--redo serves them again)",
		    watch_ncurrent, watch_ncurrent == 1 ? "has" : "have");
	if (watch_nwriting > 0 && len < sizeof more)
		snprintf(more + len, sizeof more - len, "; %zu still open for "
		    "writing (served once closed)", watch_nwriting);
	if (watch_first)
		log_notice("watching %s: %zu file%s to serve%s",
		    watchdir_path(), watch_nnew, watch_nnew == 1 ? "" : "s",
		    more);
	else
		log_notice("watch %s: scanned again: %zu new file%s%s",
		    watchdir_path(), watch_nnew, watch_nnew == 1 ? "" : "s",
		    more);
	watch_first = 0;
}

/* The next step of a scan: WATCH_SCAN_STEP entries, unless paused. */
static void
watch_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dirent	*e;
	int		 i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < WATCH_SCAN_STEP; i++) {
		if (!watch_scanning || watch_gone ||
		    watch_ninflight >= WATCH_INFLIGHT_MAX)
			return;		/* watch_resume goes on */
		errno = 0;
		if ((e = readdir(watch_dirp)) == NULL) {
			if (errno != 0)
				log_warn("watch %s: reading the directory",
				    watchdir_path());
			watch_scan_end();
			return;
		}
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;	/* never a link, a directory... */
		switch (watch_consider(e->d_name, WATCH_SCANNED)) {
		case WATCH_NEW:
			watch_nnew++;
			break;
		case WATCH_CURRENT:
			watch_ncurrent++;
			break;
		case WATCH_WRITING:
			watch_nwriting++;
			break;
		default:
			break;
		}
	}
	event_active(watch_scan_ev, EV_TIMEOUT, 0);
}

/*
 * Scan the directory (again, from its start): at start (first), and after
 * events were lost.
 */
static void
watch_scan_begin(int first)
{
	int	 fd;

	if (watch_gone)
		return;
	if (watch_dirp != NULL)
		rewinddir(watch_dirp);
	else if ((fd = openat(watchdir_fd(), ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 || (watch_dirp = fdopendir(fd)) == NULL) {
		log_warn("watch %s: cannot scan the directory", watchdir_path());
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!watch_scanning) {
		watch_nnew = watch_ncurrent = watch_nwriting = 0;
		watch_first = first;
	}
	watch_scanning = 1;
	event_active(watch_scan_ev, EV_TIMEOUT, 0);
}

/* One inotify event. */
static void
watch_event(const struct inotify_event *ev)
{
	struct stat	 a, b;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_notice("watch %s: the kernel's event queue overflowed; "
		    "scanning the directory again", watchdir_path());
		watch_scan_begin(0);
		return;
	}
	if (ev->wd == watch_pwd && watch_pwd >= 0) {
		if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) &&
		    (ev->mask & IN_ISDIR) && ev->len > 0 &&
		    strcmp(ev->name, watch_base) == 0)
			watch_end(ev->mask & IN_DELETE ? "removed" :
			    "moved away");
		else if (!(ev->mask & IN_MOVE_SELF))
			return;
	} else if (ev->wd != watch_wd)
		return;
	if (ev->mask & IN_MOVE_SELF) {
		/* moved away (or its parent), unless its name leads to it */
		if (stat(watchdir_real(), &a) != 0 ||
		    fstat(watchdir_fd(), &b) != 0 || a.st_dev != b.st_dev ||
		    a.st_ino != b.st_ino)
			watch_end("moved away");
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_IGNORED | IN_UNMOUNT)) {
		watch_end(ev->mask & IN_UNMOUNT ? "unmounted" : "removed");
		return;
	}
	if ((ev->mask & IN_ISDIR) || ev->len == 0)
		return;		/* subdirectories are not watched */
	if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
		(void)watch_consider(ev->name, (ev->mask & IN_MOVED_TO) ?
		    WATCH_MOVED : WATCH_CLOSED);
}

/* inotify has events: read and handle them, a few buffers a turn. */
static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	union {
		struct inotify_event	 ev;
		char			 buf[WATCH_READ_BUF];
	} u;
	const struct inotify_event *ev;
	ssize_t		 n;
	size_t		 off;
	int		 reads;

	(void)what;
	(void)arg;
	for (reads = 0; reads < WATCH_READS_MAX; reads++) {
		if (watch_ninflight >= WATCH_INFLIGHT_MAX) {
			watch_pause();	/* watch_landed resumes */
			return;
		}
		if ((n = read(fd, u.buf, sizeof u.buf)) < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				log_warn("watch %s: reading events",
				    watchdir_path());
			return;
		}
		for (off = 0; off + sizeof *ev <= (size_t)n;
		    off += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)(u.buf + off);
			watch_event(ev);
			if (watch_gone)
				return;
		}
	}
}

/* The loop runs: read events through it, and scan the files there. */
void
watch_start(struct event_base *base)
{
	if (!watchdir_active())
		return;
	watch_ev = event_new(base, watch_ifd, EV_READ | EV_PERSIST,
	    watch_read_cb, NULL);
	watch_scan_ev = event_new(base, -1, 0, watch_scan_cb, NULL);
	if (watch_ev == NULL || watch_scan_ev == NULL) {
		log_warnx("--watch %s: cannot add the watch to the loop",
		    watchdir_path());
		exit(JQ_EXIT_IO);
	}
	event_add(watch_ev, NULL);
	watch_reading = 1;
	watch_scan_begin(1);
}

/* The loop is over (and the commit thread stopped): free the watch. */
void
watch_stop(void)
{
	struct watch_file	*wf;

	if (watch_ev != NULL)
		event_free(watch_ev);
	if (watch_scan_ev != NULL)
		event_free(watch_scan_ev);
	watch_ev = watch_scan_ev = NULL;
	watch_reading = watch_scanning = 0;
	if (watch_dirp != NULL)
		closedir(watch_dirp);
	watch_dirp = NULL;
	if (watch_ifd >= 0)
		close(watch_ifd);
	watch_ifd = watch_wd = watch_pwd = -1;
	free(watch_base);
	watch_base = NULL;
	while ((wf = TAILQ_FIRST(&watch_files)) != NULL) {	/* none left */
		TAILQ_REMOVE(&watch_files, wf, entry);
		free(wf);
	}
	watch_ninflight = 0;
	watchdir_free();
}
