/*
 * test_journal.c: unit tests for journal.c (the server's memory across
 * crashes): a new journal; done, failed and retry records read back by the
 * next run, also when a run that skipped inputs numbered its jobs
 * otherwise (matched by name); a torn or damaged last record dropped;
 * damage before the last record refusing the start; compaction; the lock;
 * the sweep of temporary files a dead server left; removal after a run in
 * which every job succeeded; the W records of a watch server (watchdir.c):
 * its journal found under another spelling of the directory, its jobs
 * back with their ids, pinned to the files there, a waiting job whose file
 * left failing, a done one whose file and result left staying done; and
 * which names in a watched directory are not served.
 *
 * The journal is one per process (module state, as in jq-serve), so every
 * run of the "server" is a child process, as it is in real life: it prints
 * its own TAP lines, numbered on from ours, and hands its counts back (see
 * as_server).  Each test has its own temporary directory.  Prints TAP; exits
 * 1 when any test fails.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

/* The job at 0-based index i of queue q (its id is i + 1). */
#define JOBAT(q, i)	(*queue_get((q), (uint64_t)(i) + 1))
#include "tap.h"

#define NJOBS	4

/* A job list in a directory of its own: D/in/..., results in D/out/. */
struct fixture {
	char	*dir;
	char	*state;			/* D/state, the journal's directory */
	char	*out;			/* D/out */
	char	*path[NJOBS];
	char	*result[NJOBS];
	char	*log;			/* D/log: stderr of the last server run */
};

/* Make a fixture; job 2's name holds a blank, a newline and a '%'. */
static void
fixture_init(struct fixture *fx)
{
	static const char *const names[NJOBS] = {
		"a1.wav", "b 2\n%.wav", "c3.wav", "d4.wav"
	};
	int	 i;

	fx->dir = t_tmpdir("journal");
	fx->state = xprintf("%s/state", fx->dir);
	fx->out = xprintf("%s/out", fx->dir);
	fx->log = xprintf("%s/log", fx->dir);
	mkdir(fx->out, 0755);
	for (i = 0; i < NJOBS; i++) {
		fx->path[i] = xprintf("%s/in/%s", fx->dir, names[i]);
		fx->result[i] = xprintf("%s/%c.res", fx->out, 'a' + i);
	}
}

/* Remove a fixture and its directory. */
static void
fixture_free(struct fixture *fx)
{
	int	 i;

	for (i = 0; i < NJOBS; i++) {
		free(fx->path[i]);
		free(fx->result[i]);
	}
	free(fx->state);
	free(fx->out);
	free(fx->log);
	t_rmtree(fx->dir);
}

/*
 * Run fn(fx) in a child process, the way jq-serve runs: a new process, a
 * new queue, the journal's module state fresh.  The child's TAP lines follow
 * ours; its counts come back through a pipe.  A child that dies is a failure.
 */
static void
as_server(void (*fn)(struct fixture *), struct fixture *fx, const char *what)
{
	int	 p[2], counts[2], status = 0;
	pid_t	 pid;
	ssize_t	 n;

	fflush(stdout);
	if (pipe(p) != 0 || (pid = fork()) < 0) {
		printf("Bail out! %s: %s\n", what, strerror(errno));
		exit(2);
	}
	if (pid == 0) {
		close(p[0]);
		fn(fx);
		counts[0] = t_count;
		counts[1] = t_failed;
		fflush(stdout);
		if (write(p[1], counts, sizeof counts) != sizeof counts)
			_exit(3);
		exit(0);
	}
	close(p[1]);
	n = read(p[0], counts, sizeof counts);
	close(p[0]);
	waitpid(pid, &status, 0);
	if (n == (ssize_t)sizeof counts && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0) {
		t_count = counts[0];
		t_failed = counts[1];
	} else
		OK(0, "%s: the server process died (status 0x%x)", what, status);
}

/* The fixture's job list, ready, in q. */
static void
fixture_queue(struct fixture *fx, struct queue *q)
{
	int	 i;

	queue_init(q);
	for (i = 0; i < NJOBS; i++)
		queue_add(q, xstrdup(fx->path[i]), xstrdup(fx->result[i]));
}

/*
 * Open the fixture's journal as jq-serve does (logging warnings into
 * fx->log); return journal_open's result.
 */
static int
fixture_open(struct fixture *fx, struct queue *q, int fresh, int retry,
    char **cause)
{
	int	 fd;

	fixture_queue(fx, q);
	log_init("jq-serve", 1);
	fd = open(fx->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	return journal_open(q, fx->state, fresh, retry, 1, cause);
}

/* Read a whole file into a new NUL-terminated string; NULL if it cannot. */
static char *
slurp(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "re");
	char	*buf = NULL;
	size_t	 cap = 0, n = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (n + 4096 + 1 > cap)
			buf = xreallocarray(buf, (cap = n + 8192), 1);
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

/* Append text to a file. */
static void
append(const char *path, const char *text, size_t len)
{
	int	 fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0 || util_write_all(fd, text, len) != 0 || close(fd) != 0)
		printf("# append to %s: %s\n", path, strerror(errno));
}

/* Replace a file's contents. */
static void
overwrite(const char *path, const char *text, size_t len)
{
	int	 fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0 || util_write_all(fd, text, len) != 0 || close(fd) != 0)
		printf("# overwrite %s: %s\n", path, strerror(errno));
}

/* The path of the one journal in fx->state (new string), or NULL. */
static char *
journal_file(struct fixture *fx)
{
	DIR		*d = opendir(fx->state);
	struct dirent	*e;
	char		*path = NULL;
	int		 n = 0;

	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "journal-", 8) == 0) {
			n++;
			free(path);
			path = xprintf("%s/%s", fx->state, e->d_name);
		}
	closedir(d);
	if (n != 1) {
		free(path);
		return NULL;
	}
	return path;
}

/*
 * The journal's records as "D 1|F 2|R 3" (kind and id of each line), or
 * "?" for a line that does not end in " XXXXXXXX" (its CRC), "none" for no
 * journal; a static buffer.
 */
static const char *
records(struct fixture *fx)
{
	static char	 buf[256];
	char		*path = journal_file(fx), *text, *line, *next, *sp;
	size_t		 n = 0;

	if (path == NULL || (text = slurp(path, NULL)) == NULL) {
		free(path);
		return "none";
	}
	buf[0] = '\0';
	for (line = text; *line != '\0' && n + 16 < sizeof buf; line = next) {
		if ((next = strchr(line, '\n')) == NULL)
			next = line + strlen(line);
		else
			*next++ = '\0';
		sp = strrchr(line, ' ');
		if (sp == NULL || strlen(sp + 1) != 8 ||
		    strspn(sp + 1, "0123456789abcdef") != 8)
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s?",
			    n > 0 ? "|" : "");
		else
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%c %.*s",
			    n > 0 ? "|" : "", line[0], (int)strcspn(line + 2, " "),
			    line + 2);
	}
	free(text);
	free(path);
	return buf;
}

/* Store a result of size bytes for job j (the file the D record vouches for). */
static void
store_result(struct job *j, size_t size)
{
	char	 buf[64];
	int	 fd = open(j->result, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	memset(buf, 'r', sizeof buf);
	if (fd < 0 || size > sizeof buf || util_write_all(fd, buf, size) != 0 ||
	    close(fd) != 0)
		printf("# result %s: %s\n", j->result, strerror(errno));
}

/* Take job j, store its result of size bytes, and journal it: 0 or -1. */
static int
job_done(struct queue *q, struct job *j, size_t size)
{
	char	*cause = NULL;
	int	 rc;

	store_result(j, size);
	queue_finish(q, j, JOB_DONE);
	rc = journal_add_done(j, size, &cause) == 0 &&
	    journal_sync_now(&cause) == 0 ? 0 : -1;
	if (rc != 0)
		printf("# journal_add_done: %s\n", cause);
	free(cause);
	return rc;
}

/* Fail job j for good with status and message, and journal it: 0 or -1. */
static int
job_failed(struct queue *q, struct job *j, const char *status, const char *msg)
{
	char	*cause = NULL;
	int	 rc;

	free(j->fail_status);
	free(j->fail_msg);
	j->fail_status = xstrdup(status);
	j->fail_msg = msg != NULL ? xstrdup(msg) : NULL;
	j->fail_len = msg != NULL ? strlen(msg) : 0;
	queue_finish(q, j, JOB_FAILED);
	if ((rc = journal_failed(j, &cause)) != 0)
		printf("# journal_failed: %s\n", cause);
	free(cause);
	return rc;
}

/* Let failed job j run again, and journal it: 0 or -1. */
static int
job_retry(struct queue *q, struct job *j)
{
	char	*cause = NULL;
	int	 rc;

	queue_requeue(q, j);
	if ((rc = journal_retry(j, &cause)) != 0)
		printf("# journal_retry: %s\n", cause);
	free(cause);
	return rc;
}

/* The states of the jobs as "DFWW" (Waiting, Running, Done, Failed). */
static const char *
states(const struct queue *q)
{
	static char	 buf[NJOBS + 1];
	size_t		 i;

	for (i = 0; i < NJOBS && i < q->njobs; i++)
		buf[i] = "WRDF"[JOBAT(q, i).state];
	buf[i] = '\0';
	return buf;
}

/* Whether the last server run's log holds text. */
static int
logged(struct fixture *fx, const char *text)
{
	char	*log = slurp(fx->log, NULL);
	int	 found = log != NULL && strstr(log, text) != NULL;

	free(log);
	return found;
}

/* ---- a first run, and the next one recovering from its journal ---- */

/* First run: a new journal, then done, failed and retry records. */
static void
run_first(struct fixture *fx)
{
	struct queue	 q;
	struct job	*j;
	char		*cause = NULL, *path;
	struct stat	 st;
	int		 r, ok = 1;

	r = fixture_open(fx, &q, 0, 0, &cause);
	path = journal_file(fx);
	OK(r == 0 && path != NULL && stat(path, &st) == 0 && st.st_size == 0 &&
	    (st.st_mode & 0777) == 0600 && q.count[JOB_WAITING] == NJOBS,
	    "a new journal: created empty, mode 0600, every job waits (%s)",
	    cause ? cause : "no error");
	free(path);
	free(cause);
	if (r != 0)
		goto out;
	j = queue_take(&q, NULL, 0, NULL, NULL);
	ok &= job_done(&q, j, 5) == 0;
	j = queue_take(&q, NULL, 0, NULL, NULL);
	ok &= job_failed(&q, j, "exit:3", "it broke\nbadly 100%") == 0;
	j = queue_take(&q, NULL, 0, NULL, NULL);
	ok &= job_failed(&q, j, "signal:9", NULL) == 0;
	ok &= job_retry(&q, j) == 0;
	OK(ok, "done, failed and retry records appended");
	OK(strcmp(records(fx), "D 1|F 2|F 3|R 3") == 0,
	    "the journal holds them in order, each with its CRC (%s)",
	    records(fx));
	journal_close(&q, 0, 1);
	OK(strcmp(records(fx), "D 1|F 2|F 3|R 3") == 0,
	    "journal_close after an unfinished run keeps the journal");
out:
	queue_free(&q);
}

/* Next run: the states come back, and the journal is compacted. */
static void
run_recover(struct fixture *fx)
{
	struct queue	 q;
	struct job	*j2;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && strcmp(states(&q), "DFWW") == 0 &&
	    q.count[JOB_DONE] == 1 && q.count[JOB_FAILED] == 1 &&
	    q.count[JOB_WAITING] == 2 && q.count[JOB_RUNNING] == 0,
	    "the next run recovers done, failed, retried (states %s; %s)",
	    states(&q), cause ? cause : "no error");
	free(cause);
	j2 = &JOBAT(&q, 1);
	OK(r == 0 && j2->fail_status != NULL &&
	    strcmp(j2->fail_status, "exit:3") == 0 && j2->fail_msg != NULL &&
	    j2->fail_len == 19 && memcmp(j2->fail_msg, "it broke\nbadly 100%", 20) == 0,
	    "a failed job's status and message come back, newline and %% too");
	OK(JOBAT(&q, 2).fail_status != NULL && JOBAT(&q, 2).fail_msg != NULL &&
	    JOBAT(&q, 2).fail_len == 0, "an empty failure message comes back empty");
	OK(strcmp(records(fx), "D 1|F 2") == 0,
	    "the journal is compacted to one record per finished job (%s)",
	    records(fx));
	journal_log_resume(&q);
	OK(logged(fx, "resuming from ") &&
	    logged(fx, ": 1 done, 1 failed, 2 to run"),
	    "the log says what was recovered");
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run with retry_failed: failed jobs wait again. */
static void
run_retry_failed(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 1, &cause);
	OK(r == 0 && strcmp(states(&q), "DWWW") == 0,
	    "with retry_failed the failed job waits again (states %s; %s)",
	    states(&q), cause ? cause : "no error");
	free(cause);
	OK(strcmp(records(fx), "D 1") == 0,
	    "and its record is compacted away (%s)", records(fx));
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run after a stored result changed size: the job runs again. */
static void
run_result_changed(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && strcmp(states(&q), "WWWW") == 0,
	    "a done job whose result changed size runs again (states %s; %s)",
	    states(&q), cause ? cause : "no error");
	free(cause);
	OK(logged(fx, "is gone or changed; it runs again"),
	    "and the log says so");
	OK(strcmp(records(fx), "") == 0, "its record is compacted away (%s)",
	    records(fx));
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A journal written by one run is read back by the next. */
static void
test_recover(void)
{
	struct fixture	 fx;

	fixture_init(&fx);
	as_server(run_first, &fx, "first run");
	as_server(run_recover, &fx, "recovering run");
	as_server(run_retry_failed, &fx, "retry-failed run");
	if (truncate(fx.result[0], 2) != 0)
		printf("# truncate: %s\n", strerror(errno));
	as_server(run_result_changed, &fx, "run with a changed result");
	fixture_free(&fx);
}

/* ---- records of a run that skipped inputs ---- */

/*
 * A run that skipped jobs 1 and 2 (their results were up to date) and so
 * numbered c3 and d4 as jobs 1 and 2: c3 done, d4 failed, under those ids.
 */
static void
run_renumbered(struct fixture *fx)
{
	struct queue	 q;
	struct job	 c3, d4;
	char		*cause = NULL;
	int		 r, ok;

	r = fixture_open(fx, &q, 0, 0, &cause);
	c3 = *queue_get(&q, 3);
	c3.id = 1;
	d4 = *queue_get(&q, 4);
	d4.id = 2;
	d4.fail_status = xstrdup("exit:1");
	d4.fail_msg = NULL;
	store_result(&c3, 3);
	ok = r == 0 && journal_add_done(&c3, 3, &cause) == 0 &&
	    journal_sync_now(&cause) == 0 && journal_failed(&d4, &cause) == 0;
	OK(ok && strcmp(records(fx), "D 1|F 2") == 0,
	    "a skipping run journals its jobs under its own ids (%s)",
	    cause ? cause : records(fx));
	free(d4.fail_status);
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* The next run of the whole list finds those records by name. */
static void
run_after_renumbered(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && strcmp(states(&q), "WWDF") == 0,
	    "records whose id names another job are matched by name "
	    "(states %s; %s)", states(&q), cause ? cause : "no error");
	free(cause);
	OK(!queue_get(&q, 1)->journaled && !queue_get(&q, 2)->journaled &&
	    queue_get(&q, 3)->journaled && queue_get(&q, 4)->journaled,
	    "the jobs with records, and only those, are marked journaled");
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* Records of a run that skipped inputs fit the whole list. */
static void
test_renumbered(void)
{
	struct fixture	 fx;

	fixture_init(&fx);
	as_server(run_renumbered, &fx, "skipping run");
	as_server(run_after_renumbered, &fx, "run of the whole list");
	fixture_free(&fx);
}

/* ---- a torn or damaged last record ---- */

/* A run that finishes jobs 1 and 2. */
static void
run_two_done(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && job_done(&q, &JOBAT(&q, 0), 1) == 0 &&
	    job_done(&q, &JOBAT(&q, 1), 2) == 0 &&
	    strcmp(records(fx), "D 1|D 2") == 0, "two jobs done (%s)",
	    cause ? cause : records(fx));
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run after half a record was written: it is cut off. */
static void
run_after_tear(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL, *path = journal_file(fx), *text;
	size_t		 len = 0;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	text = path != NULL ? slurp(path, &len) : NULL;
	OK(r == 0 && strcmp(states(&q), "DDWW") == 0,
	    "half a last record is dropped; the rest recover (states %s; %s)",
	    states(&q), cause ? cause : "no error");
	free(cause);
	OK(text != NULL && len > 0 && text[len - 1] == '\n' &&
	    strcmp(records(fx), "D 1|D 2") == 0,
	    "the journal is cut back to its last whole record (%s)", records(fx));
	OK(logged(fx, "dropped a torn last record (line 3)"),
	    "the log names the dropped line");
	OK(r == 0 && job_done(&q, &JOBAT(&q, 2), 3) == 0 &&
	    strcmp(records(fx), "D 1|D 2|D 3") == 0,
	    "a record appended next starts on a line of its own (%s)",
	    records(fx));
	free(text);
	free(path);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run that expects jobs 1 to 3 done. */
static void
run_three_done(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && strcmp(states(&q), "DDDW") == 0 &&
	    strcmp(records(fx), "D 1|D 2|D 3") == 0,
	    "the run after sees all three (states %s, records %s; %s)",
	    states(&q), records(fx), cause ? cause : "no error");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

static const char	*tail_damage;	/* for run_tail_dropped's messages */

/* A run after the last record was damaged: it is dropped, job 3 done again. */
static void
run_tail_dropped(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && strcmp(states(&q), "DDWW") == 0 &&
	    strcmp(records(fx), "D 1|D 2") == 0,
	    "a last record %s is dropped, its job runs again (states %s, "
	    "records %s; %s)", tail_damage, states(&q), records(fx),
	    cause ? cause : "no error");
	free(cause);
	OK(logged(fx, "dropped a torn last record (line 3)"),
	    "the log names the dropped line");
	OK(r == 0 && job_done(&q, &JOBAT(&q, 2), 3) == 0, "job 3 done again");
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A torn or damaged last record is dropped, the rest kept. */
static void
test_torn(void)
{
	struct fixture	 fx;
	char		*path, *text = NULL;
	size_t		 len = 0;

	fixture_init(&fx);
	as_server(run_two_done, &fx, "first run");
	if ((path = journal_file(&fx)) == NULL) {
		OK(0, "no journal after the first run");
		goto out;
	}
	/* half a record, as a crash in the middle of a write leaves it */
	append(path, "D 3 3 half", 10);
	as_server(run_after_tear, &fx, "run after a torn write");
	as_server(run_three_done, &fx, "run after that");

	/* the last record cut short by a few bytes */
	text = slurp(path, &len);
	overwrite(path, text, len - 4);
	tail_damage = "cut short";
	as_server(run_tail_dropped, &fx, "run after a cut record");

	/* a whole last line whose CRC is wrong */
	free(text);
	text = slurp(path, &len);
	text[len - 2] = text[len - 2] == '0' ? '1' : '0';
	overwrite(path, text, len);
	tail_damage = "with a wrong CRC";
	as_server(run_tail_dropped, &fx, "run after a wrong CRC");
	as_server(run_three_done, &fx, "run after that");
out:
	free(text);
	free(path);
	fixture_free(&fx);
}

/* ---- damage before the last record ---- */

/* A run that must refuse to start: line 2 is damaged. */
static void
run_refused(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == -1 && cause != NULL &&
	    strstr(cause, "line 2 is damaged and is not the last") != NULL &&
	    strstr(cause, "--fresh") != NULL,
	    "a damaged record before the last one refuses the start (%s)",
	    cause ? cause : "accepted");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run with fresh set: the journal starts over. */
static void
run_fresh(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL, *path;
	struct stat	 st;
	int		 r;

	r = fixture_open(fx, &q, 1, 0, &cause);
	path = journal_file(fx);
	OK(r == 0 && strcmp(states(&q), "WWWW") == 0 && path != NULL &&
	    stat(path, &st) == 0 && st.st_size == 0,
	    "fresh: the damaged journal is replaced, every job waits (%s)",
	    cause ? cause : "no error");
	free(cause);
	free(path);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run that finishes jobs 1 to 3. */
static void
run_three(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && job_done(&q, &JOBAT(&q, 0), 1) == 0 &&
	    job_done(&q, &JOBAT(&q, 1), 2) == 0 && job_done(&q, &JOBAT(&q, 2), 3) == 0,
	    "three jobs done (%s)", cause ? cause : "no error");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* Damage before the last record refuses the start and leaves the file alone. */
static void
test_damaged(void)
{
	struct fixture	 fx;
	char		*path, *text, *again, *line2, *line3, *rec, *extra = NULL;
	size_t		 len = 0, len2 = 0;

	fixture_init(&fx);
	as_server(run_three, &fx, "first run");
	path = journal_file(&fx);
	text = path != NULL ? slurp(path, &len) : NULL;
	if (text == NULL || (line2 = strchr(text, '\n')) == NULL) {
		OK(0, "no journal after the first run");
		goto out;
	}
	line2[3] = line2[3] == '2' ? '9' : '2';	/* "D 2 ..." names another id */
	overwrite(path, text, len);
	as_server(run_refused, &fx, "run on a damaged journal");
	again = slurp(path, &len2);
	OK(again != NULL && len2 == len && memcmp(again, text, len) == 0,
	    "a refused journal is left exactly as it was");
	free(again);

	/* a record with a good CRC that does not fit the list is damage too */
	rec = xprintf("D 9 1 %s", "x");
	extra = xprintf("%s %08x\n", rec, crc32c_update(0, rec, strlen(rec)));
	free(rec);
	if ((line3 = strchr(line2 + 1, '\n')) == NULL) {
		OK(0, "the journal has three lines");
		goto out;
	}
	overwrite(path, text, (size_t)(line2 + 1 - text));
	append(path, extra, strlen(extra));
	append(path, line3 + 1, strlen(line3 + 1));
	as_server(run_refused, &fx, "run on a journal of another list");

	as_server(run_fresh, &fx, "fresh run");
out:
	free(extra);
	free(text);
	free(path);
	fixture_free(&fx);
}

/* ---- compaction ---- */

/* A run that writes several records for some jobs. */
static void
run_repeats(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r, ok;

	r = fixture_open(fx, &q, 0, 0, &cause);
	free(cause);
	/* a result stored twice (a crash between rename and record), a job
	 * that failed, ran again and failed again */
	ok = r == 0 && job_done(&q, &JOBAT(&q, 0), 4) == 0 &&
	    job_done(&q, &JOBAT(&q, 0), 5) == 0 &&
	    job_failed(&q, &JOBAT(&q, 1), "exit:1", "one") == 0 &&
	    job_retry(&q, &JOBAT(&q, 1)) == 0 &&
	    job_failed(&q, &JOBAT(&q, 1), "exit:2", "two") == 0 &&
	    job_done(&q, &JOBAT(&q, 3), 6) == 0;
	OK(ok && strcmp(records(fx), "D 1|D 1|F 2|R 2|F 2|D 4") == 0,
	    "six records for three finished jobs (%s)", records(fx));
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* The run after compacts them to one per finished job. */
static void
run_compacted(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL, *path, *newpath;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	path = journal_file(fx);
	newpath = path != NULL ? xprintf("%s.new", path) : NULL;
	OK(r == 0 && strcmp(states(&q), "DFWD") == 0 &&
	    strcmp(JOBAT(&q, 1).fail_status, "exit:2") == 0,
	    "the last word on each job wins (states %s; %s)", states(&q),
	    cause ? cause : "no error");
	free(cause);
	OK(strcmp(records(fx), "D 1|F 2|D 4") == 0 && newpath != NULL &&
	    access(newpath, F_OK) != 0,
	    "compaction leaves one record per finished job, no temporary file "
	    "(%s)", records(fx));
	OK(r == 0 && job_done(&q, &JOBAT(&q, 2), 7) == 0 &&
	    strcmp(records(fx), "D 1|F 2|D 4|D 3") == 0,
	    "the compacted journal takes new records (%s)", records(fx));
	free(path);
	free(newpath);
	/* not started: no X record, so the journal stays compact */
	journal_close(&q, 0, 0);
	queue_free(&q);
}

/* A compact journal is opened as it is. */
static void
run_no_rewrite(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL, *path = journal_file(fx);
	struct stat	 before, after;
	int		 r;

	if (path == NULL || stat(path, &before) != 0) {
		OK(0, "a journal to reopen");
		free(path);
		return;
	}
	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && strcmp(states(&q), "DFDD") == 0 &&
	    stat(path, &after) == 0 && after.st_ino == before.st_ino,
	    "a journal with one record per finished job is not rewritten "
	    "(%s)", cause ? cause : "no error");
	free(cause);
	free(path);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* Compaction: one record per finished job, the last word winning. */
static void
test_compaction(void)
{
	struct fixture	 fx;

	fixture_init(&fx);
	as_server(run_repeats, &fx, "run with repeated records");
	as_server(run_compacted, &fx, "compacting run");
	as_server(run_no_rewrite, &fx, "run on a compact journal");
	fixture_free(&fx);
}

/* ---- drains and cancelled jobs (W and U records; an F record) ---- */

/* A run that drains two patterns, undrains one, and cancels job 1. */
static void
run_drains(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r, ok;

	r = fixture_open(fx, &q, 0, 0, &cause);
	free(cause);
	cause = NULL;
	ok = r == 0 && journal_drain("w1", 1, &cause) == 0 &&
	    journal_drain("gpu *", 1, &cause) == 0 &&
	    journal_drain("w1", 0, &cause) == 0 &&
	    job_failed(&q, &JOBAT(&q, 0), "cancelled", "cancelled by x") == 0;
	OK(ok && strcmp(records(fx), "N w1|N gpu%20*|U w1|F 1") == 0,
	    "drain, undrain and cancel records appended (%s; %s)", records(fx),
	    cause ? cause : "no error");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* The next run: the drain held comes back, the journal is compacted. */
static void
run_drains_back(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0 && drain_count() == 1 && strcmp(drain_get(0), "gpu *") == 0 &&
	    drain_matches("gpu 7/2") && !drain_matches("w1/1") &&
	    !drain_matches("gpu"),
	    "the drain held comes back; the undone one does not (%s)",
	    cause ? cause : "no error");
	free(cause);
	OK(strcmp(states(&q), "FWWW") == 0 &&
	    strcmp(JOBAT(&q, 0).fail_status, "cancelled") == 0,
	    "the cancelled job stays failed, status cancelled (%s)", states(&q));
	OK(strcmp(records(fx), "F 1|N gpu%20*") == 0,
	    "compaction keeps one N record per drain held (%s)", records(fx));
	journal_close(&q, 0, 1);
	queue_free(&q);
	drain_free();
}

/* Drains survive restarts until undone; a cancel is an F record. */
static void
test_drains(void)
{
	struct fixture	 fx;

	fixture_init(&fx);
	as_server(run_drains, &fx, "run that drains");
	as_server(run_drains_back, &fx, "run after the drains");
	as_server(run_drains_back, &fx, "run on the compacted journal");
	fixture_free(&fx);
}

/* ---- the end of a run ---- */

static int	 close_success;	/* what run_all_done passes to journal_close */
static int	 fail_one;	/* run_all_done fails job 4 instead */

/* A run that finishes every job and closes with close_success. */
static void
run_all_done(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r, i, ok;

	r = fixture_open(fx, &q, 0, 0, &cause);
	free(cause);
	ok = r == 0;
	for (i = 0; i < NJOBS - fail_one; i++)
		ok &= job_done(&q, &JOBAT(&q, i), (size_t)i + 1) == 0;
	if (fail_one)
		ok &= job_failed(&q, &JOBAT(&q, NJOBS - 1), "exit:1", "") == 0;
	OK(ok && queue_all_finished(&q), "every job finished (%s)",
	    fail_one ? "one failed" : "all done");
	journal_close(&q, close_success, 1);
	queue_free(&q);
}

/* The journal goes away only after a run in which every job succeeded. */
static void
test_removal(void)
{
	struct fixture	 fx;
	char		*other;

	fixture_init(&fx);
	close_success = 0;
	as_server(run_all_done, &fx, "a run that did not end well");
	OK(strcmp(records(&fx), "D 1|D 2|D 3|D 4|X 0") == 0,
	    "without success the journal stays, saying the run ended (%s)",
	    records(&fx));
	t_rmtree(xstrdup(fx.state));

	fail_one = 1;
	close_success = 1;
	as_server(run_all_done, &fx, "a run with a failed job");
	OK(strcmp(records(&fx), "D 1|D 2|D 3|F 4|X 0") == 0,
	    "with a failed job the journal stays, saying the run ended (%s)",
	    records(&fx));
	t_rmtree(xstrdup(fx.state));

	fail_one = 0;
	as_server(run_all_done, &fx, "a run in which every job succeeded");
	OK(access(fx.state, F_OK) != 0 && errno == ENOENT,
	    "after a run in which every job succeeded the journal and its "
	    "directory are removed");

	mkdir(fx.state, 0700);
	other = xprintf("%s/keep", fx.state);
	close(open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	as_server(run_all_done, &fx, "the same, with another file there");
	OK(strcmp(records(&fx), "none") == 0 && access(other, F_OK) == 0,
	    "a state directory holding something else is kept, the journal "
	    "is not (%s)", records(&fx));
	free(other);
	fixture_free(&fx);
}

/* ---- the lock, and temporary files of dead servers ---- */

/* A second server on the same list, while the first holds it. */
static void
run_locked_out(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == -1 && cause != NULL &&
	    strstr(cause, "another jq-serve is serving this list") != NULL,
	    "a second server on the same list is refused (%s)",
	    cause ? cause : "accepted");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/*
 * A second server with --fresh is refused too: journal_open takes the lock
 * before it truncates anything (jq-serve.1: "Only one jq-serve at a time
 * serves a list; a second one refuses to start").
 */
static void
run_fresh_locked_out(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 1, 0, &cause);
	OK(r == -1 && cause != NULL &&
	    strstr(cause, "another jq-serve is serving this list") != NULL,
	    "a second server with fresh set is refused too (%s)",
	    cause ? cause : "accepted");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* One server at a time serves a list. */
static void
test_lock(void)
{
	struct fixture	 fx;
	struct queue	 q;
	int		 up[2], down[2], status = -1;
	char		 c = 0, *cause = NULL;
	pid_t		 pid;

	fixture_init(&fx);
	fflush(stdout);
	if (pipe(up) != 0 || pipe(down) != 0 || (pid = fork()) < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		exit(2);
	}
	if (pid == 0) {		/* the first server: holds the list, then ends */
		c = fixture_open(&fx, &q, 0, 0, &cause) == 0 ? 'y' : 'n';
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(3);
		journal_close(&q, 0, 1);
		queue_free(&q);
		free(cause);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	if (read(up[0], &c, 1) == 1 && c == 'y') {
		as_server(run_locked_out, &fx, "a second server");
		as_server(run_fresh_locked_out, &fx, "a second server, fresh");
	} else
		OK(0, "the first server could not open its journal");
	if (write(down[1], &c, 1) != 1)
		printf("# cannot end the first server: %s\n", strerror(errno));
	waitpid(pid, &status, 0);
	close(up[0]);
	close(down[1]);
	as_server(run_three, &fx, "a server once the first has ended");
	OK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the first server ran to its end");
	fixture_free(&fx);
}

/* A run that starts with temporary files in the result directory. */
static void
run_sweep(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = fixture_open(fx, &q, 0, 0, &cause);
	OK(r == 0, "open with temporary files about (%s)",
	    cause ? cause : "no error");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* Temporary files of dead servers are removed at start, others kept. */
static void
test_sweep(void)
{
	struct fixture	 fx;
	char		*dead, *live, *other;
	pid_t		 pid;

	fixture_init(&fx);
	/* a pid that was just in use and is not now */
	if ((pid = fork()) == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	dead = xprintf("%s/.jq-%ld-7.tmp", fx.out, (long)pid);
	live = xprintf("%s/.jq-%ld-7.tmp", fx.out, (long)getpid());
	other = xprintf("%s/.jq-%ld-7.tmpx", fx.out, (long)pid);
	close(open(dead, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	close(open(live, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	close(open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	as_server(run_sweep, &fx, "run with temporary files about");
	OK(access(dead, F_OK) != 0 && logged(&fx, "left by a server that died"),
	    "a temporary file of a server that died is removed, and logged");
	OK(access(live, F_OK) == 0,
	    "a temporary file of a live server is kept");
	OK(access(other, F_OK) == 0,
	    "a name that only begins like a temporary file is kept");
	free(dead);
	free(live);
	free(other);
	fixture_free(&fx);
}

/* ---- a watch server (jq-serve --watch): W records ---- */

/* Write a file with text in it. */
static void
put_file(const char *dir, const char *name, const char *text)
{
	char	*path = xprintf("%s/%s", dir, name);
	int	 fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || util_write_all(fd, text, strlen(text)) != 0 ||
	    close(fd) != 0)
		printf("# %s: %s\n", path, strerror(errno));
	free(path);
}

/*
 * Set up watching fx->dir/in (spelt as spelling, relative to fx->dir) as
 * jq-serve --watch does, with outdir (or NULL) and template tmpl, and open
 * its journal (logging into fx->log).  journal_open's result.
 */
static int
watch_open(struct fixture *fx, struct queue *q, const char *spelling,
    const char *outdir, const char *tmpl, char **cause)
{
	static const struct spool_limits lim = { 1 << 20, 1 << 20, 100 };
	struct watchdir_config	 cfg;
	int			 fd, rc;

	memset(&cfg, 0, sizeof cfg);
	if (chdir(fx->dir) != 0)
		printf("# chdir %s: %s\n", fx->dir, strerror(errno));
	cfg.dir = spelling;
	cfg.outdir = outdir;
	cfg.tmpl = tmpl;
	queue_init(q);
	log_init("jq-serve", 1);
	fd = open(fx->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if ((rc = watchdir_setup(&cfg, cause)) != 0)
		return -1;
	spool_setup(outdir != NULL ? outdir : watchdir_real(), tmpl, &lim);
	return journal_open(q, fx->state, 0, 0, 1, cause);
}

/* Journal the watched files named (in order) as jobs, as commit.c does. */
static int
watch_add(struct queue *q, const char *const *names, size_t n)
{
	struct spool_add	*v[4];
	struct job		*j;
	struct stat		 st;
	char			*cause = NULL, *path, *result;
	size_t			 i;
	int			 rc, fd;

	for (i = 0; i < n && i < 4; i++) {
		path = watchdir_job_name(names[i]);
		v[i] = spool_add_new(path, strlen(path), 0);
		v[i]->watched = 1;
		v[i]->id = q->njobs + 1 + i;
		free(path);
	}
	rc = journal_add_jobs(v, i, &cause);
	if (rc != 0)
		printf("# journal_add_jobs: %s\n", cause);
	free(cause);
	for (i = 0; i < n && i < 4; i++) {
		result = watchdir_result(names[i], &cause);
		j = queue_add(q, v[i]->name, result);
		v[i]->name = NULL;
		if ((fd = input_openat_file(watchdir_fd(), names[i], &st)) >= 0) {
			watchdir_pin(j, names[i], &st);
			close(fd);
		}
		spool_add_free(v[i]);
	}
	return rc;
}

/* First watch run: a.txt and b.txt become jobs 1 and 2; a is done. */
static void
run_watch_first(struct fixture *fx)
{
	static const char *const names[] = { "a.txt", "b.txt" };
	struct queue	 q;
	char		*cause = NULL, *in = xprintf("%s/in", fx->dir), *name;
	int		 r;

	r = watch_open(fx, &q, "in", NULL, NULL, &cause);
	OK(r == 0 && q.njobs == 0, "a watch server opens a journal with no "
	    "list (%s)", cause ? cause : "no error");
	free(cause);
	OK(watch_add(&q, names, 2) == 0 && q.njobs == 2,
	    "two watched files are journaled as jobs");
	name = xprintf("%s/a.txt", in);
	OK(strcmp(JOBAT(&q, 0).path, name) == 0 &&
	    strcmp(JOBAT(&q, 0).result, "a.txt.result") != 0 &&
	    strstr(JOBAT(&q, 0).result, "/in/a.txt.result") != NULL,
	    "a watched job is named DIR/NAME and its result is beside it "
	    "(%s, %s)", JOBAT(&q, 0).path, JOBAT(&q, 0).result);
	free(name);
	OK(job_done(&q, &JOBAT(&q, 0), 5) == 0, "job 1 is done");
	OK(strcmp(records(fx), "W 1|W 2|D 1") == 0,
	    "the journal holds W records, then the D (%s)", records(fx));
	journal_close(&q, 1, 1);
	OK(strcmp(records(fx), "W 1|W 2|D 1") == 0,
	    "and is kept when the server ends (--keep) (%s)", records(fx));
	queue_free(&q);
	free(in);
}

/*
 * The next run, with the directory spelt otherwise: b.txt left while the
 * server was down, c.txt came; the jobs come back by their W records.
 */
static void
run_watch_again(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = watch_open(fx, &q, "./in/", NULL, NULL, &cause);
	OK(r == 0 && q.njobs == 2 && strcmp(states(&q), "DF") == 0,
	    "the journal is found under another spelling; job 1 is done, "
	    "job 2, whose file left, fails (states %s; %s)", states(&q),
	    cause ? cause : "no error");
	free(cause);
	OK(logged(fx, "input gone") && JOBAT(&q, 1).fail_msg != NULL &&
	    strstr(JOBAT(&q, 1).fail_msg, "left the watched directory") != NULL,
	    "and says why");
	OK(JOBAT(&q, 0).in_name != NULL &&
	    strcmp(JOBAT(&q, 0).in_name, "a.txt") == 0 &&
	    JOBAT(&q, 0).in_dirfd == watchdir_fd(),
	    "a job whose file is there is pinned to it in the directory");
	OK(strcmp(records(fx), "W 1|D 1|W 2|F 2") == 0,
	    "the journal is compacted: each W, then its job's end (%s)",
	    records(fx));
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A run after a.txt and its result were both taken away: it stays done. */
static void
run_watch_emptied(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	int		 r;

	r = watch_open(fx, &q, "in", NULL, NULL, &cause);
	OK(r == 0 && strcmp(states(&q), "DF") == 0 &&
	    logged(fx, "are gone; it stays done") &&
	    !logged(fx, "runs again"),
	    "a done job whose file and result are gone stays done (states "
	    "%s; %s)", states(&q), cause ? cause : "no error");
	free(cause);
	journal_close(&q, 0, 1);
	queue_free(&q);
}

/* A W record in the journal of a server that does not watch does not fit. */
static void
run_watch_not(struct fixture *fx)
{
	struct queue	 q;
	char		*cause = NULL;
	char		 id[] = "5", name[] = "x";

	queue_init(&q);
	OK(watchdir_recover(&q, id, name, &cause) == -1 && q.njobs == 0,
	    "a W record without --watch is not one of ours");
	(void)fx;
}

/* Which names of a watched directory are served (watchdir_unwanted). */
static void
run_watch_unwanted(struct fixture *fx)
{
	static const struct {
		const char	*name;
		int		 served;
	} beside[] = {
		{ "a.wav", 1 }, { ".a.wav", 0 }, { ".jq-123-4.tmp", 0 },
		{ "a.wav~", 0 }, { "a.tmp", 0 }, { "a.part", 0 },
		{ "a.wav.result", 0 }, { "x.result", 0 }, { "resultx", 1 },
		{ "jobs.log", 0 }, { "addr", 0 }, { "addr.tmp-Xy12ab", 0 },
		{ "jobs.log.1", 1 }
	};
	struct watchdir_config	 cfg;
	const char		*own[3];
	char			*cause = NULL, *log, *addr;
	char			 g1[] = "*.wav", g2[] = "*.log";
	char			*match[] = { g1, g2, NULL };
	size_t			 i;
	int			 ok = 1, rc;

	if (chdir(fx->dir) != 0)
		printf("# chdir: %s\n", strerror(errno));
	log = xprintf("%s/in/jobs.log", fx->dir);
	addr = xprintf("in/addr");
	own[0] = log;
	own[1] = addr;
	own[2] = NULL;
	memset(&cfg, 0, sizeof cfg);
	cfg.dir = "in";
	cfg.own = own;
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == 0, "watch in, results beside (%s)", cause ? cause : "no error");
	for (i = 0; i < sizeof beside / sizeof beside[0]; i++)
		if ((watchdir_unwanted(beside[i].name) == NULL) !=
		    beside[i].served) {
			printf("# %s: %s\n", beside[i].name,
			    watchdir_unwanted(beside[i].name));
			ok = 0;
		}
	OK(ok, "dot files, ~ .tmp .part, names like results, the server's "
	    "own files are not served; others are");
	watchdir_free();
	cfg.outdir = "out";
	cfg.tmpl = "{stem}.{ext}";
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == 0 && watchdir_unwanted("x.result") == NULL &&
	    watchdir_unwanted("x.wav") == NULL,
	    "with -o elsewhere, names like results are served (%s)",
	    cause ? cause : "no error");
	watchdir_free();
	cfg.match = match;
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == 0 && watchdir_unwanted("x.result") != NULL &&
	    watchdir_unwanted("x.wav") == NULL &&
	    watchdir_unwanted("x.log") == NULL,
	    "--watch-match chooses: a name any glob matches is served");
	watchdir_free();
	cfg.match = NULL;
	cfg.outdir = NULL;
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == JQ_EXIT_USAGE && cause != NULL &&
	    strstr(cause, "names any file could have") != NULL,
	    "a template of only placeholders and dots writing into the watched "
	    "directory is refused (%s)", cause ? cause : "no error");
	watchdir_free();
	free(cause);
	cause = NULL;
	cfg.tmpl = "{{x}}{name}*";
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == 0 && watchdir_unwanted("{x}a.wav*") != NULL &&
	    watchdir_unwanted("{x}a.wavX") == NULL,
	    "a template's braces and glob characters are taken literally");
	watchdir_free();
	free(cause);
	cause = NULL;
	cfg.dir = "in/a.wav";
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == JQ_EXIT_USAGE, "--watch of a file is a usage error (%s)",
	    cause ? cause : "");
	free(cause);
	cause = NULL;
	cfg.dir = "nothere";
	rc = watchdir_setup(&cfg, &cause);
	OK(rc == JQ_EXIT_IO, "--watch of a missing directory is an I/O error "
	    "(%s)", cause ? cause : "");
	free(cause);
	free(log);
	free(addr);
}

/* A watch server's journal across restarts, and what it serves. */
static void
test_watch(void)
{
	struct fixture	 fx;
	char		*in, *res;

	fixture_init(&fx);
	in = xprintf("%s/in", fx.dir);
	mkdir(in, 0755);
	put_file(in, "a.txt", "alpha");
	put_file(in, "b.txt", "beta");
	as_server(run_watch_first, &fx, "a first watch server");
	put_file(in, "c.txt", "gamma");
	res = xprintf("%s/b.txt", in);
	unlink(res);
	free(res);
	as_server(run_watch_again, &fx, "the watch server again");
	res = xprintf("%s/a.txt", in);
	unlink(res);
	free(res);
	res = xprintf("%s/a.txt.result", in);
	unlink(res);
	free(res);
	as_server(run_watch_emptied, &fx, "the watch server, emptied");
	as_server(run_watch_not, &fx, "a server that does not watch");
	put_file(in, "a.wav", "x");
	as_server(run_watch_unwanted, &fx, "names in a watched directory");
	free(in);
	fixture_free(&fx);
}

/* Run the tests and print the plan. */
int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_recover();
	test_renumbered();
	test_torn();
	test_damaged();
	test_compaction();
	test_drains();
	test_removal();
	test_lock();
	test_sweep();
	test_watch();
	return t_done();
}
