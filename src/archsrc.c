/*
 * archsrc.c: jq-serve --archive: every regular entry of an archive is a
 * job, named by its path inside the archive.
 *
 * Entries stream from the archive (libarchive, any tar, zip, cpio, 7-Zip,
 * ar, ISO 9660, RAR, xar, cab or LHa archive, plain or compressed with
 * gzip, bzip2, xz, lzma, zstd, lz4 or compress; only built-in filters: no
 * external program is run) into the spool of added jobs (spool.c), one
 * entry at a time, and become jobs as an ADD's data does: the spool file
 * is named by the job's id and the journal's A record (size, CRC-32C)
 * written and synced (commit.c) before the job exists.  Unlike an ADD's,
 * the file is not fdatasync'd nor the spool directory fsync'd (the
 * spool_add is "unsynced"): the archive is the durable copy.  Nothing is unpacked anywhere
 * else, and the spool holds only the entries handed out and not finished
 * plus a read-ahead of ARCHSRC_AHEAD waiting ones: the next entry is read
 * only when fewer than ARCHSRC_AHEAD jobs wait.  A job's spool file is
 * removed once its result is durable (spool.c), so a lost job (its worker
 * gone, its lease over) is served again from its spool file, never by
 * reading the archive again.  The reading runs in the event loop, in
 * slices of ARCHSRC_SLICE bytes, so a huge entry never stalls the server;
 * memory is one buffer whatever the archive's size.
 *
 * Job names: the entry's path with any leading "./" dropped.  With more
 * than one archive, each name is prefixed by its archive's base name and a
 * colon ("photos.zip:dir/a.jpg"), and two archives with one base name are
 * refused at start.  An entry whose path is empty, absolute, has a ".."
 * component or is longer than a job name may be is refused (logged, and
 * the run ends with status 1); a second entry of the same path in one
 * archive is skipped with a warning (the first one is the job).  Results
 * follow the rules of added jobs (spool.c): '/' and the like become %XX,
 * so every result lands flat in the result directory, never outside it.
 *
 * Restart: the journal (named by the resolved paths of the archives, see
 * archsrc_identity) replays the A records, so every entry already spooled
 * is a job again, done or not, under its name.  The archive is then read
 * once more from the start, and an entry whose name is a job already is
 * skipped: jobs are found by name, never by position.  A crash of the
 * machine may lose or damage an unsynced spool file: at that start
 * spool_settle checks every unfinished job's file against its size and
 * CRC-32C and fails the jobs whose data is not intact; when the reread
 * reaches such a job's entry (failed, unpinned) the entry is spooled again,
 * must match the recorded size and CRC (spool_refill), and the job runs
 * again (jobs_retry) if it failed for that loss at this start.  So that a changed
 * archive cannot put results under wrong names, the identity of each
 * archive (size, modification time, and the CRC-32C of its first and last
 * ARCHSRC_ID_SPAN bytes) is kept beside the journal (JOURNAL.archives); a
 * restart that finds an archive changed refuses to start (--fresh starts
 * over).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <event2/event.h>

#include "jq.h"

#define ARCHSRC_AHEAD	16		/* entries spooled ahead of the TAKEs */
#define ARCHSRC_SLICE	(1024 * 1024)	/* bytes read per turn of the loop */
#define ARCHSRC_BUF	(1024 * 1024)	/* an archive read, a spool write */
#define ARCHSRC_ID_SPAN	(64 * 1024)	/* bytes at each end in the identity */
#define ARCHSRC_MAX	256		/* archives at most */

struct archsrc_file {
	char		*path;		/* as given */
	char		*real;		/* resolved */
	char		*prefix;	/* "BASE:" with several archives, else "" */
	char		 ident[96];	/* size mtime crc: see the top */
};

static struct archsrc_file	*archsrc_files;
static size_t			 archsrc_n;
static size_t			 archsrc_cur;	/* the archive being read */
static struct archive		*archsrc_ar;	/* open on archsrc_cur, or NULL */
static int			 archsrc_fd = -1;
static struct event		*archsrc_ev;
static int			 archsrc_done;	/* every archive read through */
static int			 archsrc_broken;	/* an archive could not be read */
static unsigned long		 archsrc_refused;	/* entries refused */
static unsigned long		 archsrc_entries;	/* entries of this archive */
static unsigned			 archsrc_inflight;	/* our adds in commit.c */
static char			*archsrc_idpath;	/* JOURNAL.archives */
/* the entry being spooled */
static int			 archsrc_in_entry;
static struct spool_add		*archsrc_add;
static uint64_t			 archsrc_refill;	/* its job's id when the
							 * entry refills lost
							 * data, else 0 */
static struct store		 archsrc_store;
static uint64_t			 archsrc_size;
static uint32_t			 archsrc_crc;
static char			 archsrc_buf[ARCHSRC_BUF];
/*
 * Entry names are read in a UTF-8 locale: in jq-serve's C locale libarchive
 * cannot give a zip's or a pax header's UTF-8 name at all.
 */
static locale_t			 archsrc_locale = (locale_t)0;

/* The archive's identity: size, mtime and the CRC-32C of both ends. */
static int
archsrc_ident(const char *path, char *out, size_t outlen, char **cause)
{
	struct stat	 st;
	uint32_t	 crc = 0;
	ssize_t		 n;
	off_t		 off;
	int		 fd, pass;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0 ||
	    fstat(fd, &st) != 0) {
		*cause = xprintf("--archive %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*cause = xprintf("--archive %s: not a regular file (%s)", path,
		    input_kind(st.st_mode));
		close(fd);
		return -1;
	}
	for (pass = 0; pass < 2; pass++) {
		off = pass == 0 ? 0 : st.st_size > ARCHSRC_ID_SPAN ?
		    st.st_size - ARCHSRC_ID_SPAN : 0;
		if ((n = pread(fd, archsrc_buf, ARCHSRC_ID_SPAN < ARCHSRC_BUF ?
		    ARCHSRC_ID_SPAN : ARCHSRC_BUF, off)) < 0) {
			*cause = xprintf("--archive %s: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		crc = crc32c_update(crc, archsrc_buf, (size_t)n);
	}
	close(fd);
	snprintf(out, outlen, "%lld %lld.%09ld %08x", (long long)st.st_size,
	    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, crc);
	return 0;
}

/*
 * The archives to serve (--archive): check each is a readable regular
 * file, resolve it and note its identity.  Exits with a usage or I/O
 * status when one is not fit (start-up code, like serve.c).
 */
void
archsrc_setup(char *const *paths, size_t n)
{
	const char	*base;
	char		*cause = NULL;
	size_t		 i, k;

	if (n > ARCHSRC_MAX)
		usage_error(cli_prog, "--archive: %zu archives, at most %d",
		    n, ARCHSRC_MAX);
	archsrc_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	spool_verify_on_settle();	/* our spool files are not synced */
	archsrc_files = xcalloc(n, sizeof *archsrc_files);
	archsrc_n = n;
	for (i = 0; i < n; i++) {
		struct archsrc_file *f = &archsrc_files[i];

		f->path = xstrdup(paths[i]);
		if (archsrc_ident(f->path, f->ident, sizeof f->ident,
		    &cause) != 0 || (f->real = realpath(f->path, NULL)) == NULL) {
			fprintf(stderr, "%s: %s\n", cli_prog, cause ? cause :
			    strerror(errno));
			exit(JQ_EXIT_IO);
		}
		base = strrchr(f->real, '/') + 1;
		f->prefix = n > 1 ? xprintf("%s:", base) : xstrdup("");
		for (k = 0; k < i; k++)
			if (n > 1 && strcmp(archsrc_files[k].prefix,
			    f->prefix) == 0)
				usage_error(cli_prog, "--archive %s and %s: one "
				    "base name, so their jobs' names (%sENTRY) "
				    "would clash; rename one", archsrc_files[k].path,
				    f->path, f->prefix);
	}
}

/* Whether jq-serve serves archives (--archive). */
int
archsrc_active(void)
{
	return archsrc_n > 0;
}

/*
 * What names the archives for the journal: their resolved paths (a new
 * string), or NULL when there are none.  Their contents are not in it: a
 * changed archive must find its journal, to be refused (archsrc_check).
 */
char *
archsrc_identity(void)
{
	char	*id = xstrdup("archives"), *tmp;
	size_t	 i;

	if (archsrc_n == 0) {
		free(id);
		return NULL;
	}
	for (i = 0; i < archsrc_n; i++) {
		tmp = xprintf("%s\n%s", id, archsrc_files[i].real);
		free(id);
		id = tmp;
	}
	return id;
}

/*
 * Once the journal is open (journal path jpath, resumed or not): a resumed
 * run's archives must be those it began with; a new run notes them.  0, or
 * JQ_EXIT_USAGE (an archive changed) or JQ_EXIT_IO with *cause.
 */
int
archsrc_check(const char *jpath, int resumed, char **cause)
{
	char	*want = xstrdup(""), *tmp, *have = NULL, *p, *q;
	size_t	 i, cap = 0;
	ssize_t	 len;
	FILE	*f;
	int	 rc = 0;

	if (archsrc_n == 0) {
		free(want);
		return 0;
	}
	archsrc_idpath = xprintf("%s.archives", jpath);
	for (i = 0; i < archsrc_n; i++) {
		tmp = xprintf("%s%s %s\n", want, archsrc_files[i].ident,
		    archsrc_files[i].real);
		free(want);
		want = tmp;
	}
	if (resumed && (f = fopen(archsrc_idpath, "re")) != NULL) {
		len = getdelim(&have, &cap, '\0', f);
		fclose(f);
		if (len >= 0 && strcmp(have, want) != 0) {
			/* name the first archive that differs */
			for (p = have, q = want; *p == *q && *p != '\0'; p++, q++)
				;
			while (q > want && q[-1] != '\n')
				q--;
			*cause = xprintf("--archive: an archive changed since the "
			    "interrupted run (now: %.*s): its entries' results "
			    "could be kept under the names of the old one; "
			    "refusing to resume (--fresh starts over)",
			    (int)strcspn(q, "\n"), q);
			rc = JQ_EXIT_USAGE;
		}
		free(have);
		if (rc != 0 || len >= 0) {
			free(want);
			return rc;
		}
	}
	rc = util_atomic_write(archsrc_idpath, want, strlen(want), cause);
	free(want);
	return rc == 0 ? 0 : JQ_EXIT_IO;
}

/* Whether entries are still to be read or on their way to being jobs. */
int
archsrc_busy(void)
{
	return archsrc_n > 0 && !jobs_stopping() &&
	    (!archsrc_done || archsrc_inflight > 0);
}

/* Entries refused or archives that could not be read, for the exit status. */
int
archsrc_status(void)
{
	if (archsrc_broken)
		return JQ_EXIT_IO;
	return archsrc_refused > 0 ? JQ_EXIT_FAILED : JQ_EXIT_OK;
}

/* Look again at whether to read on (called when jobs change). */
void
archsrc_wake(void)
{
	if (archsrc_ev != NULL && !archsrc_done)
		event_active(archsrc_ev, EV_TIMEOUT, 0);
}

/* Close the archive being read. */
static void
archsrc_close_archive(void)
{
	if (archsrc_ar != NULL)
		archive_read_free(archsrc_ar);
	archsrc_ar = NULL;
	if (archsrc_fd >= 0)
		close(archsrc_fd);
	archsrc_fd = -1;
}

/* Open archive archsrc_cur, checking it is still the one checked at start. */
static int
archsrc_open(void)
{
	struct archsrc_file	*f = &archsrc_files[archsrc_cur];
	char			 ident[sizeof f->ident];
	char			*cause = NULL;
	struct archive		*a;

	if (archsrc_ident(f->path, ident, sizeof ident, &cause) != 0) {
		log_warnx("%s; not read", cause);
		free(cause);
		return -1;
	}
	if (strcmp(ident, f->ident) != 0) {
		log_warnx("archive %s: changed since start; not read", f->path);
		return -1;
	}
	if ((archsrc_fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_warnx("archive %s: %s; not read", f->path, strerror(errno));
		return -1;
	}
	/* read once, front to back: a larger read-ahead (a hint only) */
	(void)posix_fadvise(archsrc_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	a = archive_read_new();
	/* built-in filters only: _all would run lrzip, lzop... from $PATH */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_filter_compress(a);
	/* not format_all: mtree could name local files, raw takes anything */
	archive_read_support_format_tar(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_7zip(a);
	archive_read_support_format_ar(a);
	archive_read_support_format_iso9660(a);
	archive_read_support_format_rar(a);
	archive_read_support_format_rar5(a);
	archive_read_support_format_xar(a);
	archive_read_support_format_cab(a);
	archive_read_support_format_lha(a);
	archsrc_ar = a;
	if (archive_read_open_fd(a, archsrc_fd, ARCHSRC_BUF) != ARCHIVE_OK) {
		log_warnx("archive %s: %s; not read", f->path,
		    archive_error_string(a));
		archsrc_close_archive();
		return -1;
	}
	archsrc_entries = 0;
	log_info("archive %s: reading", f->path);
	return 0;
}

/*
 * The job name of an entry path, or NULL with *why when it is refused
 * (a new string).
 */
static char *
archsrc_name(const char *prefix, const char *path, const char **why)
{
	const char	*p, *seg;
	size_t		 len;

	if (path == NULL) {
		*why = "it has no path";
		return NULL;
	}
	while (path[0] == '.' && path[1] == '/')
		for (path += 2; *path == '/'; path++)
			;
	if (*path == '\0') {
		*why = "its path is empty";
		return NULL;
	}
	if (*path == '/') {
		*why = "its path is absolute";
		return NULL;
	}
	for (seg = path; *seg != '\0'; seg = *p ? p + 1 : p) {
		p = seg + strcspn(seg, "/");
		if (p - seg == 2 && seg[0] == '.' && seg[1] == '.') {
			*why = "its path has a \"..\" component";
			return NULL;
		}
	}
	len = strlen(prefix) + strlen(path);
	if (len > JQ_NAME_MAX) {
		*why = "its path is longer than a job name may be";
		return NULL;
	}
	return xprintf("%s%s", prefix, path);
}

/* Refuse an entry: say which and why; the run will end with status 1. */
static void
archsrc_refuse(const char *path, const char *why)
{
	archsrc_refused++;
	log_warnx("archive %s: entry %s refused: %s",
	    archsrc_files[archsrc_cur].path, path ? path : "(none)", why);
}

/* commit.c is done with an entry's add: it is a job now, or it failed. */
static void
archsrc_add_done(struct commit *cm)
{
	struct spool_add	*a = cm->add;
	struct job		*j;
	char			*name = a->name, *result = a->result;

	spool_unpend(a);
	archsrc_inflight--;
	if (cm->rc == 0) {
		a->name = a->result = NULL;	/* the job's from now on */
		j = jobs_add(name, result, 0, 0, "an archive");
		spool_adopt(j, a);
	} else {
		archsrc_broken = 1;
		log_warnx("cannot make archive entry %s a job: %s", a->name,
		    cm->cause);
	}
	spool_add_free(a);
	free(cm->cause);
	free(cm);
	server_wake();
	archsrc_wake();
}

/*
 * Start spooling the entry just read, to be the job name (size bytes, or
 * UINT64_MAX if not known): 1 started, 0 skipped (a resumed run's entry, a
 * second entry of the name, or refused, saying why).
 */
static int
archsrc_begin(char *name, uint64_t size)
{
	struct spool_add	*a, *pending = NULL;
	struct job		*j = NULL;
	const char		*err = NULL;
	char			*errmsg = NULL, *cause = NULL;

	a = spool_add_new(name, strlen(name), 0);
	switch (spool_check(&server.queue, a, size, &j, &pending, &err,
	    &errmsg)) {
	case SPOOL_OK:
		break;
	case SPOOL_EXISTS:
		/* a resumed run's entry, or a second one of that name */
		if (j->origin != JOB_SPOOL)
			archsrc_refuse(name, "a job of that name exists");
		else if (j->in_name == NULL && j->state == JOB_FAILED &&
		    spool_begin(&archsrc_store, &cause) == 0) {
			/* its data was lost in a crash: spool it again */
			archsrc_refill = j->id;
			goto spooling;
		} else
			log_debug("archive entry %s: job %llu already",
			    name, (unsigned long long)j->id);
		if (cause != NULL) {
			log_warnx("archive entry %s: %s", name, cause);
			free(cause);
		}
		spool_add_free(a);
		return 0;
	case SPOOL_PENDING:
		log_warnx("archive %s: entry %s skipped: an entry of that "
		    "name came first", archsrc_files[archsrc_cur].path, name);
		spool_add_free(a);
		return 0;
	case SPOOL_REFUSED:
		archsrc_refuse(name, errmsg);
		free(errmsg);
		spool_add_free(a);
		return 0;
	}
	if (spool_begin(&archsrc_store, &cause) != 0) {
		archsrc_refuse(name, cause);
		archsrc_broken = 1;
		free(cause);
		spool_add_free(a);
		return 0;
	}
	a->unsynced = 1;	/* the archive is the durable copy: see the top */
	archsrc_store.lazy = 1;	/* nor is it written back early (store.c) */
spooling:
	archsrc_add = a;
	archsrc_size = 0;
	archsrc_crc = 0;
	archsrc_in_entry = 1;
	return 1;
}

/*
 * The entry, whose job's data was lost in a crash, is spooled again: pin
 * it to the job, and run the job again if it failed at this start for the
 * loss (a job whose command had failed stays failed, its data back for a
 * RETRY).
 */
static void
archsrc_refilled(struct spool_add *a)
{
	struct job	*j = queue_get(&server.queue, archsrc_refill);
	char		*cause = NULL;

	archsrc_refill = 0;
	if (j == NULL || j->state != JOB_FAILED || j->in_name != NULL) {
		store_abort(&archsrc_store);	/* RETRY or FORGET meanwhile */
		spool_add_free(a);
		return;
	}
	if (spool_refill(j, &archsrc_store, archsrc_size, archsrc_crc,
	    &cause) != 0) {
		archsrc_refuse(a->name, cause);
		free(cause);
		spool_add_free(a);
		return;
	}
	log_notice("job %llu %s: its data, lost in a crash, read again from "
	    "archive %s", (unsigned long long)j->id, j->path,
	    archsrc_files[archsrc_cur].path);
	if (spool_was_lost(j) && jobs_retry(j, "the archive", &cause) != 0) {
		archsrc_broken = 1;
		log_warnx("job %llu %s: cannot run it again: %s",
		    (unsigned long long)j->id, j->path, cause);
		free(cause);
	}
	spool_add_free(a);
	server_wake();
}

/* The entry is spooled whole: hand it to commit.c to become a job. */
static void
archsrc_end_entry(void)
{
	struct spool_add	*a = archsrc_add, *pending = NULL;
	struct commit		*cm;
	struct job		*j = NULL;
	const char		*err = NULL;
	char			*errmsg = NULL;

	archsrc_in_entry = 0;
	archsrc_add = NULL;
	if (archsrc_refill != 0) {
		archsrc_refilled(a);
		return;
	}
	/* checked again: an ADD of that name may have come meanwhile */
	if (spool_check(&server.queue, a, archsrc_size, &j, &pending, &err,
	    &errmsg) != SPOOL_OK) {
		archsrc_refuse(a->name, errmsg ? errmsg :
		    "a job of that name was added meanwhile");
		free(errmsg);
		store_abort(&archsrc_store);
		spool_add_free(a);
		return;
	}
	a->size = archsrc_size;
	a->crc = archsrc_crc;
	cm = xcalloc(1, sizeof *cm);
	cm->st = archsrc_store;		/* the store passes to commit.c */
	memset(&archsrc_store, 0, sizeof archsrc_store);
	cm->add = a;
	cm->done = archsrc_add_done;
	spool_pend(a);
	archsrc_inflight++;
	commit_submit(cm);
}

/* Drop the entry being spooled. */
static void
archsrc_drop_entry(void)
{
	if (!archsrc_in_entry)
		return;
	store_abort(&archsrc_store);
	spool_add_free(archsrc_add);
	archsrc_add = NULL;
	archsrc_in_entry = 0;
	archsrc_refill = 0;
}

/*
 * Copy up to ARCHSRC_SLICE bytes of the entry into its spool file.  1 the
 * entry is whole, 0 more to come, -1 the entry (or archive) failed.
 */
static int
archsrc_copy(void)
{
	const char	*path = archsrc_files[archsrc_cur].path;
	size_t		 moved = 0;
	ssize_t		 n;
	char		*cause = NULL;

	while (moved < ARCHSRC_SLICE) {
		n = archive_read_data(archsrc_ar, archsrc_buf, sizeof archsrc_buf);
		if (n == 0)
			return 1;
		if (n < 0) {
			log_warnx("archive %s: entry %s: %s", path,
			    archsrc_add->name, archive_error_string(archsrc_ar));
			return -1;
		}
		if ((uint64_t)n > spool_max_add() - archsrc_size) {
			archsrc_refuse(archsrc_add->name, "larger than "
			    "--max-add-size");
			return -1;
		}
		if (store_write(&archsrc_store, archsrc_buf, (size_t)n,
		    &cause) < 0) {
			log_warnx("archive entry %s: %s", archsrc_add->name,
			    cause);
			free(cause);
			archsrc_broken = 1;
			return -1;
		}
		archsrc_crc = crc32c_update(archsrc_crc, archsrc_buf, (size_t)n);
		archsrc_size += (uint64_t)n;
		moved += (size_t)n;
	}
	return 0;
}

/* Read the next header; spool it if it is a new regular entry. */
static void
archsrc_next(void)
{
	struct archive_entry	*e;
	const char		*path, *why = NULL;
	char			*name;
	int			 rc;

	rc = archive_read_next_header(archsrc_ar, &e);
	if (rc == ARCHIVE_EOF) {
		log_notice("archive %s: %lu entr%s read",
		    archsrc_files[archsrc_cur].path, archsrc_entries,
		    archsrc_entries == 1 ? "y" : "ies");
		archsrc_close_archive();
		archsrc_cur++;
		return;
	}
	if (rc < ARCHIVE_WARN) {
		log_warnx("archive %s: %s; the rest is not read",
		    archsrc_files[archsrc_cur].path,
		    archive_error_string(archsrc_ar));
		archsrc_broken = 1;
		archsrc_close_archive();
		archsrc_cur++;
		return;
	}
	/* a zip's UTF-8 name has no form in the C locale: take it as UTF-8 */
	if ((path = archive_entry_pathname(e)) == NULL)
		path = archive_entry_pathname_utf8(e);
	if (archive_entry_filetype(e) != AE_IFREG) {
		if (archive_entry_filetype(e) != AE_IFDIR)
			log_info("archive %s: entry %s skipped: not a regular "
			    "file", archsrc_files[archsrc_cur].path,
			    path ? path : "(none)");
		return;
	}
	archsrc_entries++;
	if ((name = archsrc_name(archsrc_files[archsrc_cur].prefix, path,
	    &why)) == NULL) {
		archsrc_refuse(path, why);
		return;
	}
	(void)archsrc_begin(name, archive_entry_size_is_set(e) ?
	    (uint64_t)archive_entry_size(e) : UINT64_MAX);
	free(name);
}

/*
 * One turn: while fewer than ARCHSRC_AHEAD jobs wait, read on (at most
 * ARCHSRC_SLICE bytes, then let the loop turn).
 */
static void
archsrc_step(evutil_socket_t fd, short what, void *arg)
{
	size_t	 moved = 0;
	int	 rc;
	locale_t old = (locale_t)0;

	(void)fd;
	(void)what;
	(void)arg;
	if (archsrc_locale != (locale_t)0)
		old = uselocale(archsrc_locale);
	while (!archsrc_done && !jobs_stopping() && !server.finishing) {
		if (!archsrc_in_entry && server.queue.count[JOB_WAITING] +
		    archsrc_inflight >= ARCHSRC_AHEAD)
			goto out;	/* archsrc_wake when a job is taken */
		if (archsrc_cur == archsrc_n) {
			archsrc_done = 1;
			server_wake();
			goto out;
		}
		if (archsrc_ar == NULL && archsrc_open() != 0) {
			archsrc_broken = 1;
			archsrc_cur++;
			continue;
		}
		if (!archsrc_in_entry) {
			archsrc_next();
			if (++moved >= 64)	/* many empty entries: a turn */
				break;
			continue;
		}
		if ((rc = archsrc_copy()) > 0)
			archsrc_end_entry();
		else if (rc < 0) {
			archsrc_drop_entry();
			(void)archive_read_data_skip(archsrc_ar);
		}
		break;
	}
	if (!archsrc_done && !jobs_stopping() && !server.finishing)
		archsrc_wake();
	else if (jobs_stopping())
		archsrc_drop_entry();
out:
	if (old != (locale_t)0)
		uselocale(old);
}

/* Start reading in the loop (server_run). */
void
archsrc_start(struct event_base *base)
{
	if (archsrc_n == 0)
		return;
	archsrc_ev = event_new(base, -1, 0, archsrc_step, NULL);
	archsrc_wake();
}

/*
 * The run is over: close what is open.  gone: the journal was removed, so
 * the identity file beside it goes too.
 */
void
archsrc_stop(int gone)
{
	size_t	 i;

	archsrc_drop_entry();
	archsrc_close_archive();
	if (archsrc_ev != NULL)
		event_free(archsrc_ev);
	archsrc_ev = NULL;
	if (gone && archsrc_idpath != NULL)
		(void)unlink(archsrc_idpath);
	free(archsrc_idpath);
	archsrc_idpath = NULL;
	for (i = 0; i < archsrc_n; i++) {
		free(archsrc_files[i].path);
		free(archsrc_files[i].real);
		free(archsrc_files[i].prefix);
	}
	free(archsrc_files);
	archsrc_files = NULL;
	if (archsrc_locale != (locale_t)0)
		freelocale(archsrc_locale);
	archsrc_locale = (locale_t)0;
	archsrc_n = 0;
}
