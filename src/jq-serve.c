/*
 * jq-serve: serve one job per file, and the jobs added while it runs, and
 * collect the results.
 *
 * This file is the command line: the option table, the checks of option
 * values, and the start-up steps in order.  The files, their result names
 * and the checks made on them before anything listens are serve.c; the
 * serving itself is server.c and conn.c.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <popt.h>

#include "jq.h"

/* The command line: option values as given, and the files to serve. */
struct serve_args {
	char			**listen;	/* --listen values, NULL-terminated */
	size_t			 nlisten;
	char			*files_from, *outdir, *tmpl, *addr_file;
	char			*max_result, *max_conns, *max_unauth;
	char			*linger, *lease;
	char			*retries, *crash_limit, *state_dir, *joblog;
	char			*token_file;
	char			*unix_auth, *stall, *idle;
	char			*max_add, *max_spool, *max_spool_jobs;
	char			*watch;		/* --watch DIR */
	char			**watch_match;	/* --watch-match, NULL-terminated */
	size_t			 nwatch_match;
	int			 nul, skip, fresh, retry_failed, redo, nosync, keep;
	int			 early_ok;
	int			 archive;	/* --archive: the FILEs are archives */
	char			*output_archive;
	int			 noauth, verbose, quiet;
	struct spool_limits	 spool;		/* checked --max-add-size... */
	struct serve_files	 files;
};

enum {
	OPT_LISTEN = 256, OPT_FILES_FROM, OPT_NULL, OPT_SKIP_MISSING,
	OPT_OUTPUT_DIR, OPT_RESULT, OPT_MAX_RESULT, OPT_MAX_CONNS, OPT_LEASE,
	OPT_MAX_UNAUTH, OPT_RETRIES, OPT_CRASH_LIMIT, OPT_STATE_DIR, OPT_FRESH,
	OPT_RETRY_FAILED, OPT_REDO, OPT_NO_SYNC, OPT_EARLY_OK,
	OPT_JOBLOG, OPT_LINGER, OPT_TOKEN_FILE, OPT_NO_AUTH, OPT_UNIX_AUTH,
	OPT_STALL, OPT_IDLE, OPT_ADDR_FILE, OPT_VERBOSE, OPT_QUIET, OPT_KEEP,
	OPT_MAX_ADD, OPT_MAX_SPOOL, OPT_MAX_SPOOL_JOBS, OPT_WATCH,
	OPT_WATCH_MATCH, OPT_ARCHIVE, OPT_OUTPUT_ARCHIVE
};

static struct poptOption serve_options[] = {
	{ "listen", 'l', POPT_ARG_ARGV, NULL, OPT_LISTEN,
	  "listen on ADDR (repeatable; default :" JQ_PORT_DEFAULT_STR ")",
	  "ADDR" },
	{ "files-from", 'T', POPT_ARG_STRING, NULL, OPT_FILES_FROM,
	  "read file names from FILE (- for stdin), one per line", "FILE" },
	{ "null", '0', POPT_ARG_NONE, NULL, OPT_NULL,
	  "names in --files-from end with NUL, not newline", NULL },
	{ "skip-missing", '\0', POPT_ARG_NONE, NULL, OPT_SKIP_MISSING,
	  "skip missing or unreadable files instead of refusing to start",
	  NULL },
	{ "output-dir", 'o', POPT_ARG_STRING, NULL, OPT_OUTPUT_DIR,
	  "write results under DIR instead of beside each file", "DIR" },
	{ "result", 'r', POPT_ARG_STRING, NULL, OPT_RESULT,
	  "result file name: {name} {stem} {ext} (default {name}.result)",
	  "TEMPLATE" },
	{ "keep", '\0', POPT_ARG_NONE, NULL, OPT_KEEP,
	  "serve on when every job has finished, for jobs added later, "
	  "until told to stop; the default with no FILE", NULL },
	{ "watch", '\0', POPT_ARG_STRING, NULL, OPT_WATCH,
	  "serve every file closed after writing in DIR or moved into it, "
	  "and the files there at start; implies --keep", "DIR" },
	{ "watch-match", '\0', POPT_ARG_ARGV, NULL, OPT_WATCH_MATCH,
	  "with --watch, serve only names matching GLOB (repeatable)",
	  "GLOB" },
	{ "archive", '\0', POPT_ARG_NONE, NULL, OPT_ARCHIVE,
	  "each FILE is an archive (tar, zip, ...; compressed or not): serve "
	  "each of its regular entries as a job (needs -o or "
	  "--output-archive)", NULL },
	{ "output-archive", '\0', POPT_ARG_STRING, NULL, OPT_OUTPUT_ARCHIVE,
	  "put every result in the archive FILE, written when the run ends "
	  "(.tar .tar.gz .tar.zst .tar.xz .tar.bz2 .tar.lz4 .zip)", "FILE" },
	{ "max-result", '\0', POPT_ARG_STRING, NULL, OPT_MAX_RESULT,
	  "largest result accepted (default 64G)", "SIZE" },
	{ "max-add-size", '\0', POPT_ARG_STRING, NULL, OPT_MAX_ADD,
	  "largest job data accepted from jq-put --add (default 1G)", "SIZE" },
	{ "max-spool", '\0', POPT_ARG_STRING, NULL, OPT_MAX_SPOOL,
	  "most bytes of added jobs' data kept at once (default 64G)", "SIZE" },
	{ "max-spool-jobs", '\0', POPT_ARG_STRING, NULL, OPT_MAX_SPOOL_JOBS,
	  "most added jobs whose data is kept at once (default 1000000)", "N" },
	{ "max-conns", '\0', POPT_ARG_STRING, NULL, OPT_MAX_CONNS,
	  "most authenticated connections at once (default 4096)", "N" },
	{ "max-unauth", '\0', POPT_ARG_STRING, NULL, OPT_MAX_UNAUTH,
	  "most connections still authenticating; past it the oldest is "
	  "dropped (default 256)", "N" },
	{ "lease", '\0', POPT_ARG_STRING, NULL, OPT_LEASE,
	  "a taken job returns to the queue when not renewed for "
	  "DURATION (default 10m)", "DURATION" },
	{ "retries", '\0', POPT_ARG_STRING, NULL, OPT_RETRIES,
	  "run a failed job up to N more times (default 0)", "N" },
	{ "crash-limit", '\0', POPT_ARG_STRING, NULL, OPT_CRASH_LIMIT,
	  "fail a job whose worker was lost N times (default 5; 0: never)",
	  "N" },
	{ "state-dir", '\0', POPT_ARG_STRING, NULL, OPT_STATE_DIR,
	  "keep the journal in DIR (default $JQ_STATE_DIR or "
	  "~/.local/state/jq)", "DIR" },
	{ "fresh", '\0', POPT_ARG_NONE, NULL, OPT_FRESH,
	  "forget an earlier run of this list and start over", NULL },
	{ "retry-failed", '\0', POPT_ARG_NONE, NULL, OPT_RETRY_FAILED,
	  "run the jobs that failed in an earlier run again", NULL },
	{ "redo", '\0', POPT_ARG_NONE, NULL, OPT_REDO,
	  "serve every file, also those whose result is up to date", NULL },
	{ "no-sync", '\0', POPT_ARG_NONE, NULL, OPT_NO_SYNC,
	  "do not fsync results or the journal (fast, not crash-safe)",
	  NULL },
	{ "early-ok", '\0', POPT_ARG_NONE, NULL, OPT_EARLY_OK,
	  "answer a result of up to 64 KiB once it is synced in the journal; "
	  "its file appears a moment later", NULL },
	{ "joblog", '\0', POPT_ARG_STRING, NULL, OPT_JOBLOG,
	  "append a line per finished attempt to FILE (tab-separated)",
	  "FILE" },
	{ "linger", '\0', POPT_ARG_STRING, NULL, OPT_LINGER,
	  "after the last job, answer late workers for DURATION "
	  "(default 1s)", "DURATION" },
	{ "token-file", '\0', POPT_ARG_STRING, NULL, OPT_TOKEN_FILE,
	  "the shared secret (default $JQ_TOKEN_FILE or "
	  "~/.config/jq/token; created when missing)", "FILE" },
	{ "no-auth", '\0', POPT_ARG_NONE, NULL, OPT_NO_AUTH,
	  "let anyone who can connect take jobs and put results", NULL },
	{ "unix-auth", '\0', POPT_ARG_STRING, NULL, OPT_UNIX_AUTH,
	  "how UNIX socket peers prove themselves: uid (default) or "
	  "token", "uid|token" },
	{ "stall-timeout", '\0', POPT_ARG_STRING, NULL, OPT_STALL,
	  "close a connection stalled half-way through a request for "
	  "DURATION (default 30s)", "DURATION" },
	{ "idle-timeout", '\0', POPT_ARG_STRING, NULL, OPT_IDLE,
	  "close a connection that holds no job and sends nothing for "
	  "DURATION (default 10m)", "DURATION" },
	{ "addr-file", '\0', POPT_ARG_STRING, NULL, OPT_ADDR_FILE,
	  "write the addresses listened on to FILE", "FILE" },
	{ "verbose", 'v', POPT_ARG_NONE, NULL, OPT_VERBOSE,
	  "log every job taken, done or failed", NULL },
	{ "quiet", 'q', POPT_ARG_NONE, NULL, OPT_QUIET,
	  "log nothing once serving (start-up errors still print)", NULL },
	CLI_TREE_TABLE,
	CLI_HELP_TABLE,
	CLI_EPILOGUE(
"Serve each FILE as one job to jq-run, jq-take and jq-put workers, and write\n"
"each job's result to FILE.result (see -o and -r); exit when every job has\n"
"finished.  jq-put --add adds jobs while it runs.  With --keep, or with no\n"
"FILE, serve on when every job has finished, until jq-put --shutdown (or a\n"
"signal).  A journal in the state directory lets a restarted server resume.\n"
"Like make, a FILE whose result exists and is not older than it is left out\n"
"(--redo serves it too); when all are, exit 0 at once.  --watch DIR serves\n"
"the files in DIR, and each file closed after writing there or moved in,\n"
"until shut down (not dot files, names ending in ~ .tmp .part, or names\n"
"like results).\n"
"\n"
"Exit status: 0 every job done, none to do, or after jq-put --shutdown no\n"
"job failed; 1 some job failed, 2 usage error (a bad option or value,\n"
"clashing result names), 8 an input missing or unreadable, the watched\n"
"directory gone, or another local I/O error, 9 stopped by SIGINT, SIGTERM\n"
"or SIGHUP, 10 authentication (an unsafe or malformed token file)."),
	POPT_TABLEEND
};

/* Add a --listen address to the list (which takes it over). */
static void
serve_listen_add(struct serve_args *a, char **value)
{
	a->listen = xreallocarray(a->listen, a->nlisten + 2, sizeof *a->listen);
	a->listen[a->nlisten++] = *value;
	a->listen[a->nlisten] = NULL;
	*value = NULL;
}

/* Add a --watch-match glob to the list (which takes it over). */
static void
serve_watch_match_add(struct serve_args *a, char **value)
{
	a->watch_match = xreallocarray(a->watch_match, a->nwatch_match + 2,
	    sizeof *a->watch_match);
	a->watch_match[a->nwatch_match++] = *value;
	a->watch_match[a->nwatch_match] = NULL;
	*value = NULL;
}

/* Fill the arguments from one option (cli_parse). */
static void
serve_option(void *arg, int val, char **value)
{
	struct serve_args	*a = arg;

	switch (val) {
	case OPT_LISTEN: serve_listen_add(a, value); break;
	case OPT_FILES_FROM: cli_keep(&a->files_from, value); break;
	case OPT_OUTPUT_DIR: cli_keep(&a->outdir, value); break;
	case OPT_RESULT: cli_keep(&a->tmpl, value); break;
	case OPT_MAX_RESULT: cli_keep(&a->max_result, value); break;
	case OPT_MAX_CONNS: cli_keep(&a->max_conns, value); break;
	case OPT_MAX_UNAUTH: cli_keep(&a->max_unauth, value); break;
	case OPT_ADDR_FILE: cli_keep(&a->addr_file, value); break;
	case OPT_LINGER: cli_keep(&a->linger, value); break;
	case OPT_LEASE: cli_keep(&a->lease, value); break;
	case OPT_RETRIES: cli_keep(&a->retries, value); break;
	case OPT_CRASH_LIMIT: cli_keep(&a->crash_limit, value); break;
	case OPT_STATE_DIR: cli_keep(&a->state_dir, value); break;
	case OPT_JOBLOG: cli_keep(&a->joblog, value); break;
	case OPT_TOKEN_FILE: cli_keep(&a->token_file, value); break;
	case OPT_UNIX_AUTH: cli_keep(&a->unix_auth, value); break;
	case OPT_STALL: cli_keep(&a->stall, value); break;
	case OPT_IDLE: cli_keep(&a->idle, value); break;
	case OPT_NULL: a->nul = 1; break;
	case OPT_SKIP_MISSING: a->skip = 1; break;
	case OPT_FRESH: a->fresh = 1; break;
	case OPT_RETRY_FAILED: a->retry_failed = 1; break;
	case OPT_REDO: a->redo = 1; break;
	case OPT_NO_SYNC: a->nosync = 1; break;
	case OPT_EARLY_OK: a->early_ok = 1; break;
	case OPT_NO_AUTH: a->noauth = 1; break;
	case OPT_VERBOSE: a->verbose++; break;
	case OPT_QUIET: a->quiet = 1; break;
	case OPT_KEEP: a->keep = 1; break;
	case OPT_MAX_ADD: cli_keep(&a->max_add, value); break;
	case OPT_MAX_SPOOL: cli_keep(&a->max_spool, value); break;
	case OPT_MAX_SPOOL_JOBS: cli_keep(&a->max_spool_jobs, value); break;
	case OPT_WATCH: cli_keep(&a->watch, value); break;
	case OPT_WATCH_MATCH: serve_watch_match_add(a, value); break;
	case OPT_ARCHIVE: a->archive = 1; break;
	case OPT_OUTPUT_ARCHIVE: cli_keep(&a->output_archive, value); break;
	}
}

static uint64_t	serve_size(const char *, const char *, uint64_t);

/* Check the sizes, counts and durations, and put them in server.cfg. */
static void
serve_check_limits(struct serve_args *a)
{
	struct server_config	*cfg = &server.cfg;

	cfg->max_result = JQ_PAYLOAD_DEFAULT_MAX;
	if (a->max_result != NULL && parse_size(a->max_result,
	    &cfg->max_result) != 0)
		usage_error(cli_prog, "--max-result: \"%s\" is not a size (a "
		    "number with an optional K, M, G or T)", a->max_result);
	cfg->linger_ms = a->linger == NULL ? 1000 :
	    cli_duration("--linger", a->linger);
	cfg->lease_ms = a->lease == NULL ? JQ_LEASE_DEFAULT_MS :
	    cli_duration("--lease", a->lease);
	if (cfg->lease_ms < 1000 || cfg->lease_ms > (uint64_t)JQ_SECONDS_MAX * 1000)
		usage_error(cli_prog, "--lease: %s is not between 1s and 365d",
		    a->lease);
	cfg->retries = a->retries == NULL ? 0 :
	    cli_uint("--retries", a->retries, 0, 1000);
	cfg->crash_limit = a->crash_limit == NULL ? JQ_CRASH_LIMIT_DEFAULT :
	    cli_uint("--crash-limit", a->crash_limit, 0, 1000);
	cfg->max_conns = a->max_conns == NULL ? JQ_CONNS_DEFAULT_MAX :
	    cli_uint("--max-conns", a->max_conns, 1, 1000000);
	cfg->max_unauth = a->max_unauth == NULL ? JQ_UNAUTH_DEFAULT_MAX :
	    cli_uint("--max-unauth", a->max_unauth, 1, 1000000);
	cfg->stall_ms = a->stall == NULL ? JQ_STALL_DEFAULT_MS :
	    cli_duration("--stall-timeout", a->stall);
	cfg->idle_ms = a->idle == NULL ? JQ_IDLE_DEFAULT_MS :
	    cli_duration("--idle-timeout", a->idle);
	if (cfg->stall_ms < 1000 || cfg->idle_ms < 1000)
		usage_error(cli_prog, "--%s-timeout: at least 1s",
		    cfg->stall_ms < 1000 ? "stall" : "idle");
	a->spool.max_add = serve_size("--max-add-size", a->max_add,
	    JQ_ADD_DEFAULT_MAX);
	a->spool.max_bytes = serve_size("--max-spool", a->max_spool,
	    JQ_SPOOL_DEFAULT_MAX);
	a->spool.max_files = a->max_spool_jobs == NULL ?
	    JQ_SPOOL_JOBS_DEFAULT_MAX : cli_uint("--max-spool-jobs",
	    a->max_spool_jobs, 0, QUEUE_JOBS_MAX);
}

/* Parse a SIZE option (default def), or exit 2 naming it. */
static uint64_t
serve_size(const char *opt, const char *val, uint64_t def)
{
	uint64_t	 v = def;

	if (val != NULL && parse_size(val, &v) != 0)
		usage_error(cli_prog, "%s: \"%s\" is not a size (a number with "
		    "an optional K, M, G or T)", opt, val);
	return v;
}



/* Check the authentication options, --output-dir and --result. */
static void
serve_check_options(const struct serve_args *a)
{
	struct stat	 st;
	char		*probe, *cause = NULL;

	if (a->unix_auth != NULL && strcmp(a->unix_auth, "uid") != 0 &&
	    strcmp(a->unix_auth, "token") != 0)
		usage_error(cli_prog, "--unix-auth: \"%s\" is neither uid nor "
		    "token", a->unix_auth);
	server.cfg.unix_token = a->unix_auth != NULL &&
	    strcmp(a->unix_auth, "token") == 0;
	if (a->noauth && (a->token_file != NULL || a->unix_auth != NULL))
		usage_error(cli_prog, "--no-auth excludes --token-file and "
		    "--unix-auth");
	/* a missing --output-dir is made once the inputs are known good */
	if (a->outdir != NULL && stat(a->outdir, &st) == 0 &&
	    !S_ISDIR(st.st_mode))
		usage_error(cli_prog, "--output-dir %s: not a directory",
		    a->outdir);
	if (a->tmpl != NULL) {
		server.cfg.result_named = 1;
		if ((probe = serve_result_name(a->tmpl, "a.b", &cause)) == NULL)
			usage_error(cli_prog, "%s", cause);
		free(probe);
	}
}

/* Gather the files to serve: the operands, then --files-from. */
static void
serve_gather_files(struct serve_args *a, poptContext pc)
{
	const char	**rest;

	if ((rest = poptGetArgs(pc)) != NULL)
		for (; *rest != NULL; rest++)
			serve_files_add(&a->files, xstrdup(*rest));
	if (a->watch != NULL && (a->files.n > 0 || a->files_from != NULL))
		usage_error(cli_prog, "--watch serves the files of its "
		    "directory: give no FILE and no --files-from");
	if (a->watch == NULL && a->watch_match != NULL)
		usage_error(cli_prog, "--watch-match only applies to --watch");
	if (a->files_from != NULL)
		serve_files_read(&a->files, a->files_from, a->nul);
	else if (a->nul)
		usage_error(cli_prog, "-0 only applies to --files-from");
	if (a->archive && a->watch != NULL)
		usage_error(cli_prog, "--archive and --watch exclude each other");
	if (a->archive && a->files.n == 0)
		usage_error(cli_prog, "--archive: give the archives to serve as "
		    "FILE operands (or with --files-from)");
	if (a->archive && a->outdir == NULL && a->output_archive == NULL)
		usage_error(cli_prog, "--archive: say where the entries' results "
		    "go: -o DIR or --output-archive FILE");
	/* nothing to serve yet: serve what is added, until shut down */
	if ((a->files.n == 0 && a->files_from == NULL) || a->watch != NULL)
		a->keep = 1;
	server.cfg.keep = a->keep;
}

/* Check the addresses to listen on (default :PORT), for server.cfg. */
static void
serve_check_listen(const struct serve_args *a)
{
	static const char *default_listen[] = { ":" JQ_PORT_DEFAULT_STR, NULL };
	const char	**listen = default_listen;
	struct net_addr	 addr;
	char		*cause = NULL;
	size_t		 n;

	if (a->listen != NULL)
		listen = (const char **)a->listen;
	for (n = 0; listen[n] != NULL; n++)
		if (net_parse_addr(listen[n], 1, &addr, &cause) != 0)
			usage_error(cli_prog, "--listen %s", cause);
	server.cfg.listen = listen;
	server.cfg.nlisten = n;
	server.cfg.addr_file = a->addr_file;
}

/* Start libsodium and load the token, or warn that --no-auth lets all in. */
static void
serve_auth(const struct serve_args *a)
{
	static struct auth_key	 key;
	struct passwd		*pw;
	char			*token_path, *cause = NULL;

	if (auth_init() != 0) {
		fprintf(stderr, "%s: libsodium cannot start\n", cli_prog);
		exit(JQ_EXIT_IO);
	}
	if (a->noauth) {
		log_warnx("WARNING: authentication is off (--no-auth): anyone "
		    "who can connect may take jobs and store results");
		return;
	}
	if ((token_path = auth_path(a->token_file, &cause)) == NULL ||
	    auth_load(token_path, 1, &key, &cause) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(JQ_EXIT_AUTH);
	}
	log_debug("token file %s", token_path);
	free(token_path);
	server.cfg.key = &key;
	/* named in the hint to a refused UNIX peer; looked up once, not per peer */
	if (!server.cfg.unix_token && (pw = getpwuid(geteuid())) != NULL &&
	    strlen(pw->pw_name) < sizeof server.cfg.user)
		strcpy(server.cfg.user, pw->pw_name);
}

/*
 * The default state directory: one per user, never per working directory,
 * so that the same list served from two directories finds one journal and
 * one lock.  $XDG_STATE_HOME/jq, else ~/.local/state/jq; the directories
 * above it are made (mode 0700) when missing.  Exits on failure.
 */
static char *
serve_default_state_dir(void)
{
	const char	*env;
	char		*dir, *p;

	if ((env = getenv("XDG_STATE_HOME")) != NULL && *env == '/')
		dir = xprintf("%s/jq", env);
	else if ((env = getenv("HOME")) != NULL && *env == '/')
		dir = xprintf("%s/.local/state/jq", env);
	else
		usage_error(cli_prog, "no state directory: HOME is not set; use "
		    "--state-dir or JQ_STATE_DIR");
	for (p = strchr(dir + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "%s: state directory %s: %s\n", cli_prog,
			    dir, strerror(errno));
			exit(JQ_EXIT_IO);
		}
		*p = '/';
	}
	return dir;
}

/*
 * The state directory: --state-dir, else $JQ_STATE_DIR, else the user's
 * default.  Directories served as jobs are packed there (input.c).
 */
static void
serve_state_dir(struct serve_args *a)
{
	const char	*env;

	if (a->state_dir == NULL && (env = getenv("JQ_STATE_DIR")) != NULL &&
	    *env != '\0')
		a->state_dir = xstrdup(env);
	if (a->state_dir == NULL)
		a->state_dir = serve_default_state_dir();
	input_tree_setup(a->state_dir);
}

/* Open the journal in the state directory (serve_state_dir). */
static void
serve_open_journal(struct serve_args *a)
{
	char		*cause = NULL;
	int		 rc;

	store_sync = !a->nosync;
	commit_early_ok = a->early_ok;
	if (archsrc_active())
		journal_name_extra(archsrc_identity());
	if (journal_open(&server.queue, a->state_dir, a->fresh,
	    a->retry_failed, !a->nosync, &cause) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(JQ_EXIT_IO);
	}
	if ((rc = archsrc_check(journal_filename(), journal_was_resumed(),
	    &cause)) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(rc);
	}
}

/*
 * --archive and --output-archive: the archives checked (the FILE list is
 * theirs), the output archive's kind, and where results are kept until it
 * is written (which becomes -o DIR).  Exits when one is not fit.
 */
/* Join n names with ", " into a new string, for the start line. */
static char *
serve_join(char *const *v, size_t n)
{
	char	*all = NULL, *tmp;
	size_t	 i;

	for (i = 0; i < n; i++) {
		tmp = xprintf("%s%s%s", all ? all : "", all ? ", " : "", v[i]);
		free(all);
		all = tmp;
	}
	return all;
}

static void
serve_archives(struct serve_args *a)
{
	char	*cause = NULL;
	size_t	 i;

	if (a->output_archive != NULL) {
		if (archout_setup(a->output_archive, &cause) != 0)
			usage_error(cli_prog, "%s", cause);
		a->redo = 1;	/* every result goes in, up to date or not */
	}
	if (a->archive) {
		archsrc_setup(a->files.v, a->files.n);
		server.cfg.archives = serve_join(a->files.v, a->files.n);
		for (i = 0; i < a->files.n; i++)
			free(a->files.v[i]);
		a->files.n = 0;
	}
	serve_state_dir(a);
	if (a->output_archive != NULL) {
		if (mkdir(a->state_dir, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "%s: state directory %s: %s\n", cli_prog,
			    a->state_dir, strerror(errno));
			exit(JQ_EXIT_IO);
		}
		cause = xstrdup(archout_result_dir(a->outdir, a->state_dir));
		free(a->outdir);
		a->outdir = cause;
	}
}

/*
 * The run is over with status rc (started: it listened): write the output
 * archive, then drop the journal (and what it kept) if the run is
 * complete.  The new status.
 */
static int
serve_end(struct serve_args *a, int rc, int started)
{
	char	*cause = NULL;
	int	 gone, src;

	if (commit_lost() > 0 && (rc == JQ_EXIT_OK || rc == JQ_EXIT_FAILED)) {
		fprintf(stderr, "%s: %zu acknowledged result%s could not be put "
		    "in place; the journal keeps %s: run again to place %s\n",
		    cli_prog, commit_lost(), commit_lost() == 1 ? "" : "s",
		    commit_lost() == 1 ? "it" : "them",
		    commit_lost() == 1 ? "it" : "them");
		rc = JQ_EXIT_IO;
	}
	if (archout_active() && rc != JQ_EXIT_SIGNAL && rc != JQ_EXIT_IO &&
	    archout_write(&server.queue, &cause) != 0) {
		fprintf(stderr, "%s: the output archive is not written: %s; "
		    "the results and the journal are kept: run again to write "
		    "it\n", cli_prog, cause);
		free(cause);
		rc = JQ_EXIT_IO;
	}
	/* a --keep server's queue outlives the run: its journal stays */
	gone = rc == JQ_EXIT_OK && !a->keep &&
	    server.queue.count[JOB_DONE] == server.queue.njobs;
	archsrc_stop(gone);
	/*
	 * the lock is held until the last file operation: the journal is
	 * emptied (a crash from here costs a run from scratch), the results
	 * kept in the state directory removed, and only then the journal
	 * removed and a second server let in
	 */
	journal_end(&server.queue, rc == JQ_EXIT_OK && !a->keep, started);
	if (gone && archout_active())
		archout_clean(&server.queue);
	journal_unlock();
	archout_free();
	/* entries refused (1) or an archive unread (8): not jobs, but the
	 * run did not do them all */
	src = archsrc_status();
	if (src == JQ_EXIT_IO && (rc == JQ_EXIT_OK || rc == JQ_EXIT_FAILED))
		rc = JQ_EXIT_IO;
	else if (src == JQ_EXIT_FAILED && rc == JQ_EXIT_OK)
		rc = JQ_EXIT_FAILED;
	return rc;
}

/*
 * --watch DIR: set up the watch (before the journal is read, so that no
 * file arriving meanwhile is missed); exits when it cannot be.
 */
static void
serve_watch(const struct serve_args *a)
{
	struct watchdir_config	 cfg;
	const char		*own[] = { a->joblog, a->addr_file, NULL, NULL };
	char			*cause = NULL;
	int			 rc;

	if (own[0] == NULL) {		/* no NULL in the middle */
		own[0] = own[1];
		own[1] = NULL;
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.dir = a->watch;
	cfg.outdir = a->outdir;
	cfg.tmpl = a->tmpl;
	cfg.match = a->watch_match;
	cfg.own = own;
	if ((rc = watch_setup(&cfg, a->redo, &cause)) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(rc);
	}
}

/* Free the option values. */
static void
serve_args_free(struct serve_args *a)
{
	char	**strs[] = { &a->files_from, &a->outdir, &a->tmpl,
	    &a->addr_file, &a->max_result, &a->max_conns, &a->max_unauth,
	    &a->linger, &a->lease, &a->retries, &a->crash_limit, &a->state_dir,
	    &a->joblog, &a->token_file, &a->unix_auth, &a->stall, &a->idle,
	    &a->max_add, &a->max_spool, &a->max_spool_jobs, &a->watch,
	    &a->output_archive };
	size_t	 i;

	for (i = 0; i < a->nlisten; i++)
		free(a->listen[i]);
	free(a->listen);
	for (i = 0; i < a->nwatch_match; i++)
		free(a->watch_match[i]);
	free(a->watch_match);
	for (i = 0; i < sizeof strs / sizeof strs[0]; i++)
		free(*strs[i]);
	free(server.cfg.archives);
	server.cfg.archives = NULL;
}

/* Options, checks, start-up in order, serve. */
int
main(int argc, char **argv)
{
	struct serve_args	 a;
	poptContext		 pc;
	char			*cause = NULL;
	int			 rc, started;

	memset(&a, 0, sizeof a);
	pc = cli_context("jq-serve", argc, argv, serve_options,
	    "[OPTION...] [FILE...]");
	cli_parse(pc, serve_option, &a);
	serve_check_limits(&a);
	serve_check_options(&a);
	serve_gather_files(&a, pc);

	if (a.joblog != NULL && joblog_open(a.joblog, &cause) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(JQ_EXIT_IO);
	}
	serve_check_listen(&a);
	log_init(cli_prog, a.quiet ? -1 : a.verbose);
	serve_auth(&a);
	serve_archives(&a);
	serve_load(&server.queue, &a.files, a.outdir,
	    a.tmpl ? a.tmpl : "{name}.result", a.skip);
	if (a.watch != NULL)
		serve_watch(&a);
	/*
	 * added jobs' results go to -o DIR, else here, or with --watch to the
	 * watched directory (spool.c pins it)
	 */
	spool_setup(a.outdir != NULL || a.watch == NULL ? a.outdir :
	    watchdir_real(), a.tmpl, &a.spool);
	serve_open_journal(&a);
	serve_keep_outdir();
	serve_skip_current(&server.queue, a.redo);
	if (server.queue.njobs == 0 && !a.keep && !archsrc_active() &&
	    a.watch == NULL) {
		/*
		 * nothing to do (an empty list, or every result up to date;
		 * not an archive, whose entries become jobs as they are read,
		 * nor a watched directory): exit 0 at once, no listening, no
		 * journal left behind
		 */
		journal_close(&server.queue, 1, 1);
		serve_args_free(&a);
		queue_free(&server.queue);
		input_free();
		drain_free();
		return JQ_EXIT_OK;
	}
	journal_log_resume(&server.queue);

	rc = server_run(&cause);	/* cause set: the start failed */
	if (watch_lost() && rc != JQ_EXIT_SIGNAL)
		rc = JQ_EXIT_IO;	/* the watched directory went away */
	started = cause == NULL;
	if (rc == JQ_EXIT_IO && cause != NULL) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		free(cause);
	}
	rc = serve_end(&a, rc, started);
	serve_args_free(&a);
	queue_free(&server.queue);
	input_free();
	drain_free();
	return rc;
}
