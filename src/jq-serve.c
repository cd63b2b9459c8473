/*
 * jq-serve: serve one job per file and collect the results.
 *
 * This file is the command line and the start-up checks: every input is
 * opened once, every result name is worked out and checked for collisions,
 * every result directory for write access, before anything listens.  The
 * serving itself is server.c and conn.c.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <popt.h>

#include "jq.h"

#define SERVE_REPORT_MAX	20	/* bad files named one by one */

struct names {
	char	**v;
	size_t	 n, alloc;
};

/* Append a name to a list. */
static void
names_add(struct names *l, char *name)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->v = xreallocarray(l->v, l->alloc, sizeof *l->v);
	}
	l->v[l->n++] = name;
}

/* Read names from a file ("-" is stdin), separated by LF or NUL. */
static void
names_read(struct names *l, const char *from, int nul)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if (strcmp(from, "-") == 0)
		f = stdin;
	else if ((f = fopen(from, "re")) == NULL) {
		fprintf(stderr, "%s: --files-from %s: %s\n", cli_prog, from,
		    strerror(errno));
		exit(JQ_EXIT_IO);
	}
	while ((n = getdelim(&line, &cap, nul ? '\0' : '\n', f)) > 0) {
		if (line[n - 1] == (nul ? '\0' : '\n'))
			line[--n] = '\0';
		if (n > 0)
			names_add(l, xstrndup(line, (size_t)n));
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: --files-from %s: %s\n", cli_prog, from,
		    strerror(errno));
		exit(JQ_EXIT_IO);
	}
	free(line);
	if (f != stdin)
		fclose(f);
}

/*
 * Expand a --result template for input base name base: {name}, {stem},
 * {ext}, {{ and }}.  Returns NULL with *cause for a bad template or result.
 */
static char *
serve_result_name(const char *tmpl, const char *base, char **cause)
{
	const char	*dot = strrchr(base, '.'), *p, *end;
	size_t		 stemlen;
	char		*out = xstrdup(""), *tmp, *piece;

	/* ".bashrc" has no extension; "a.b.wav" has stem "a.b" */
	if (dot == NULL || dot == base)
		dot = base + strlen(base);
	stemlen = (size_t)(dot - base);
	for (p = tmpl; *p != '\0'; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			piece = xstrndup(p++, 1);
		} else if (*p == '{') {
			if ((end = strchr(p, '}')) == NULL)
				goto bad;
			if (strncmp(p, "{name}", 6) == 0)
				piece = xstrdup(base);
			else if (strncmp(p, "{stem}", 6) == 0)
				piece = xstrndup(base, stemlen);
			else if (strncmp(p, "{ext}", 5) == 0)
				piece = xstrdup(*dot ? dot + 1 : "");
			else
				goto bad;
			p = end;
		} else if (*p == '}')
			goto bad;
		else
			piece = xstrndup(p, 1);
		tmp = xprintf("%s%s", out, piece);
		free(out);
		free(piece);
		out = tmp;
	}
	if (*out == '\0' || strchr(out, '/') != NULL || strcmp(out, ".") == 0 ||
	    strcmp(out, "..") == 0) {
		*cause = xprintf("--result %s gives \"%s\" for %s: a result name "
		    "must be a plain, non-empty file name", tmpl, out, base);
		free(out);
		return NULL;
	}
	return out;
bad:
	*cause = xprintf("--result %s: unknown or unclosed placeholder; use "
	    "{name}, {stem}, {ext}, and {{ or }} for braces", tmpl);
	free(out);
	return NULL;
}

/* Work out the result path of input path. */
static char *
serve_result_path(const char *path, const char *outdir, const char *tmpl,
    char **cause)
{
	const char	*slash = strrchr(path, '/');
	char		*name, *full;

	if ((name = serve_result_name(tmpl, slash ? slash + 1 : path,
	    cause)) == NULL)
		return NULL;
	if (outdir != NULL)
		full = xprintf("%s/%s", outdir, name);
	else if (slash != NULL)
		full = xprintf("%.*s/%s", (int)(slash - path + 1) - 1, path, name);
	else
		full = xstrdup(name);
	free(name);
	return full;
}

/* Check that path is a readable regular file; NULL or the reason. */
static char *
serve_check_input(const char *path)
{
	struct stat	 st;
	int		 fd;
	char		*why = NULL;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return xstrdup(strerror(errno));
	if (fstat(fd, &st) != 0)
		why = xstrdup(strerror(errno));
	else if (!S_ISREG(st.st_mode))
		why = xstrdup(S_ISDIR(st.st_mode) ? "is a directory" :
		    "is not a regular file");
	close(fd);
	return why;
}

struct pathref {
	const char	*path;
	int		 result;	/* 0 input, 1 result */
};

/* Order paths by name, inputs first. */
static int
pathref_cmp(const void *a, const void *b)
{
	const struct pathref	*x = a, *y = b;
	int			 c = strcmp(x->path, y->path);

	return c != 0 ? c : x->result - y->result;
}

/*
 * Refuse two jobs with one result path, or a result path that is an input,
 * and result directories we cannot write.  Exits on failure.
 */
static void
serve_check_results(struct queue *q)
{
	struct pathref	*v;
	size_t		 i, n = 0, bad = 0;
	char		*dir, *lastdir = NULL;
	const char	*slash;

	v = xreallocarray(NULL, q->njobs * 2 + 1, sizeof *v);
	for (i = 0; i < q->njobs; i++) {
		v[n++] = (struct pathref){ q->jobs[i].path, 0 };
		v[n++] = (struct pathref){ q->jobs[i].result, 1 };
	}
	qsort(v, n, sizeof *v, pathref_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i - 1].path, v[i].path) != 0 || !v[i].result)
			continue;
		if (bad++ < SERVE_REPORT_MAX)
			fprintf(stderr, "%s: %s: %s\n", cli_prog, v[i].path,
			    v[i - 1].result ? "two jobs would write this result "
			    "(choose another --result or --output-dir)" :
			    "this result would overwrite an input");
	}
	if (bad > 0) {
		fprintf(stderr, "%s: %zu result name collision%s; nothing "
		    "served\n", cli_prog, bad, bad == 1 ? "" : "s");
		exit(JQ_EXIT_USAGE);
	}
	for (i = 0; i < n; i++) {
		if (!v[i].result)
			continue;
		slash = strrchr(v[i].path, '/');
		dir = slash == NULL ? xstrdup(".") : slash == v[i].path ?
		    xstrdup("/") : xstrndup(v[i].path, (size_t)(slash - v[i].path));
		if (lastdir == NULL || strcmp(dir, lastdir) != 0) {
			if (access(dir, W_OK | X_OK) != 0) {
				fprintf(stderr, "%s: cannot write results in %s: %s\n",
				    cli_prog, dir, strerror(errno));
				exit(JQ_EXIT_IO);
			}
			free(lastdir);
			lastdir = dir;
		} else
			free(dir);
	}
	free(lastdir);
	free(v);
}

/*
 * Remember which directory each result goes to (device and inode), so that
 * one replaced while we run is refused instead of followed (store_open).
 */
static void
serve_pin_dirs(struct queue *q)
{
	struct stat	 sb;
	const char	*slash, *res;
	char		*dir, *lastdir = NULL;
	size_t		 i;

	for (i = 0; i < q->njobs; i++) {
		res = q->jobs[i].result;
		slash = strrchr(res, '/');
		dir = slash == NULL ? xstrdup(".") : slash == res ?
		    xstrdup("/") : xstrndup(res, (size_t)(slash - res));
		if (lastdir == NULL || strcmp(dir, lastdir) != 0) {
			if (stat(dir, &sb) != 0) {
				fprintf(stderr, "%s: cannot write results in "
				    "%s: %s\n", cli_prog, dir, strerror(errno));
				exit(JQ_EXIT_IO);
			}
			free(lastdir);
			lastdir = dir;
		} else
			free(dir);
		q->jobs[i].rdir_dev = sb.st_dev;
		q->jobs[i].rdir_ino = sb.st_ino;
	}
	free(lastdir);
}

/* Build the queue from the names; report or skip bad inputs. */
static void
serve_load(struct queue *q, struct names *files, const char *outdir,
    const char *tmpl, int skip)
{
	size_t	 i, bad = 0;
	char	*why, *result, *cause;

	queue_init(q);
	for (i = 0; i < files->n; i++) {
		if (strlen(files->v[i]) > JQ_NAME_MAX)
			why = xprintf("name longer than %d bytes", JQ_NAME_MAX);
		else
			why = serve_check_input(files->v[i]);
		if (why != NULL) {
			if (bad++ < SERVE_REPORT_MAX || skip)
				fprintf(stderr, "%s: %s: %s%s\n", cli_prog,
				    files->v[i], why, skip ? "; skipped" : "");
			free(why);
			free(files->v[i]);
			continue;
		}
		if ((result = serve_result_path(files->v[i], outdir, tmpl,
		    &cause)) == NULL)
			usage_error(cli_prog, "%s", cause);
		queue_add(q, files->v[i], result);
	}
	if (bad > 0 && !skip) {
		if (bad > SERVE_REPORT_MAX)
			fprintf(stderr, "%s: ... and %zu more\n", cli_prog,
			    bad - SERVE_REPORT_MAX);
		fprintf(stderr, "%s: %zu input%s missing or unreadable; nothing "
		    "served (--skip-missing serves the rest)\n", cli_prog, bad,
		    bad == 1 ? " is" : "s are");
		exit(JQ_EXIT_IO);
	}
	free(files->v);
	serve_check_results(q);
	serve_pin_dirs(q);
	queue_ready(q);
}

/* Options, checks, serve. */
int
main(int argc, char **argv)
{
	const char	**listen = NULL, *arg, **rest;
	char		*files_from = NULL, *outdir = NULL, *tmpl = NULL;
	char		*addr_file = NULL, *max_result = NULL, *max_conns = NULL;
	char		*linger = NULL, *lease = NULL, *retries = NULL;
	char		*state_dir = NULL, *joblog = NULL;
	char		*token_file = NULL, *unix_auth = NULL, *token_path;
	char		*stall = NULL, *idle = NULL;
	static struct auth_key key;
	int		 fresh = 0, retry_failed = 0, nosync = 0, noauth = 0;
	char		*cause = NULL;
	int		 nul = 0, skip = 0, verbose = 0, quiet = 0, rc;
	size_t		 n;
	struct names	 files = { 0 };
	struct stat	 st;
	static const char *default_listen[] = { ":" JQ_PORT_DEFAULT_STR, NULL };
	struct poptOption opts[] = {
		{ "listen", 'l', POPT_ARG_ARGV, &listen, 0,
		  "listen on ADDR (repeatable; default :" JQ_PORT_DEFAULT_STR ")",
		  "ADDR" },
		{ "files-from", 'T', POPT_ARG_STRING, NULL, 'T',
		  "read file names from FILE (- for stdin), one per line", "FILE" },
		{ "null", '0', POPT_ARG_NONE, &nul, 0,
		  "names in --files-from end with NUL, not newline", NULL },
		{ "skip-missing", '\0', POPT_ARG_NONE, &skip, 0,
		  "skip missing or unreadable files instead of refusing to start",
		  NULL },
		{ "output-dir", 'o', POPT_ARG_STRING, NULL, 'o',
		  "write results under DIR instead of beside each file", "DIR" },
		{ "result", 'r', POPT_ARG_STRING, NULL, 'r',
		  "result file name: {name} {stem} {ext} (default {name}.result)",
		  "TEMPLATE" },
		{ "max-result", '\0', POPT_ARG_STRING, NULL, 'm',
		  "largest result accepted (default 64G)", "SIZE" },
		{ "max-conns", '\0', POPT_ARG_STRING, NULL, 'c',
		  "most connections at once (default 4096)", "N" },
		{ "lease", '\0', POPT_ARG_STRING, NULL, 'E',
		  "a taken job returns to the queue when not renewed for "
		  "DURATION (default 10m)", "DURATION" },
		{ "retries", '\0', POPT_ARG_STRING, NULL, 'R',
		  "run a failed job up to N more times (default 0)", "N" },
		{ "state-dir", '\0', POPT_ARG_STRING, NULL, 'S',
		  "keep the journal in DIR (default $JQ_STATE_DIR or "
		  "./.jq-serve)", "DIR" },
		{ "fresh", '\0', POPT_ARG_NONE, &fresh, 0,
		  "forget an earlier run of this list and start over", NULL },
		{ "retry-failed", '\0', POPT_ARG_NONE, &retry_failed, 0,
		  "run the jobs that failed in an earlier run again", NULL },
		{ "no-sync", '\0', POPT_ARG_NONE, &nosync, 0,
		  "do not fsync results or the journal (fast, not crash-safe)",
		  NULL },
		{ "joblog", '\0', POPT_ARG_STRING, NULL, 'J',
		  "append a line per finished attempt to FILE (tab-separated)",
		  "FILE" },
		{ "linger", '\0', POPT_ARG_STRING, NULL, 'L',
		  "after the last job, answer late workers for DURATION "
		  "(default 1s)", "DURATION" },
		{ "token-file", '\0', POPT_ARG_STRING, NULL, 'k',
		  "the shared secret (default $JQ_TOKEN_FILE or "
		  "~/.config/jq/token; created when missing)", "FILE" },
		{ "no-auth", '\0', POPT_ARG_NONE, &noauth, 0,
		  "let anyone who can connect take jobs and put results", NULL },
		{ "unix-auth", '\0', POPT_ARG_STRING, NULL, 'U',
		  "how UNIX socket peers prove themselves: uid (default) or "
		  "token", "uid|token" },
		{ "stall-timeout", '\0', POPT_ARG_STRING, NULL, 's',
		  "close a connection stalled half-way through a request for "
		  "DURATION (default 30s)", "DURATION" },
		{ "idle-timeout", '\0', POPT_ARG_STRING, NULL, 'i',
		  "close a connection that holds no job and sends nothing for "
		  "DURATION (default 10m)", "DURATION" },
		{ "addr-file", '\0', POPT_ARG_STRING, NULL, 'a',
		  "write the addresses listened on to FILE", "FILE" },
		{ "verbose", 'v', POPT_ARG_NONE, NULL, 'v',
		  "log every job taken, done or failed", NULL },
		{ "quiet", 'q', POPT_ARG_NONE, NULL, 'q',
		  "log nothing once serving (start-up errors still print)", NULL },
		CLI_HELP_TABLE,
		POPT_TABLEEND
	};
	poptContext	 pc;

	pc = cli_context("jq-serve", argc, argv, opts, "[OPTION...] FILE...");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		/*
		 * Ours to free.  For a flag it is not always NULL: popt hands
		 * back the argument of an option it handled by itself (-l),
		 * so free it there too.
		 */
		arg = poptGetOptArg(pc);
		switch (rc) {
		case 'T': free(files_from); files_from = (char *)arg; break;
		case 'o': free(outdir); outdir = (char *)arg; break;
		case 'r': free(tmpl); tmpl = (char *)arg; break;
		case 'm': free(max_result); max_result = (char *)arg; break;
		case 'c': free(max_conns); max_conns = (char *)arg; break;
		case 'a': free(addr_file); addr_file = (char *)arg; break;
		case 'L': free(linger); linger = (char *)arg; break;
		case 'E': free(lease); lease = (char *)arg; break;
		case 'R': free(retries); retries = (char *)arg; break;
		case 'S': free(state_dir); state_dir = (char *)arg; break;
		case 'J': free(joblog); joblog = (char *)arg; break;
		case 'k': free(token_file); token_file = (char *)arg; break;
		case 'U': free(unix_auth); unix_auth = (char *)arg; break;
		case 's': free(stall); stall = (char *)arg; break;
		case 'i': free(idle); idle = (char *)arg; break;
		case 'v': verbose++; free((char *)arg); break;
		case 'q': quiet = 1; free((char *)arg); break;
		default: free((char *)arg); break;
		}
	}
	if (rc < -1)
		cli_bad_option(pc, rc);

	server.cfg.max_result = JQ_PAYLOAD_DEFAULT_MAX;
	if (max_result != NULL && parse_size(max_result, &server.cfg.max_result)
	    != 0)
		usage_error(cli_prog, "--max-result: \"%s\" is not a size (a "
		    "number with an optional K, M, G or T)", max_result);
	server.cfg.linger_ms = linger == NULL ? 1000 :
	    cli_duration("--linger", linger);
	server.cfg.lease_ms = lease == NULL ? JQ_LEASE_DEFAULT_MS :
	    cli_duration("--lease", lease);
	if (server.cfg.lease_ms < 1000 ||
	    server.cfg.lease_ms > (uint64_t)JQ_SECONDS_MAX * 1000)
		usage_error(cli_prog, "--lease: %s is not between 1s and 365d",
		    lease);
	server.cfg.retries = retries == NULL ? 0 :
	    cli_uint("--retries", retries, 0, 1000);
	server.cfg.max_conns = max_conns == NULL ? JQ_CONNS_DEFAULT_MAX :
	    cli_uint("--max-conns", max_conns, 1, 1000000);
	server.cfg.stall_ms = stall == NULL ? JQ_STALL_DEFAULT_MS :
	    cli_duration("--stall-timeout", stall);
	server.cfg.idle_ms = idle == NULL ? JQ_IDLE_DEFAULT_MS :
	    cli_duration("--idle-timeout", idle);
	if (server.cfg.stall_ms < 1000 || server.cfg.idle_ms < 1000)
		usage_error(cli_prog, "--%s-timeout: at least 1s",
		    server.cfg.stall_ms < 1000 ? "stall" : "idle");
	if (unix_auth != NULL && strcmp(unix_auth, "uid") != 0 &&
	    strcmp(unix_auth, "token") != 0)
		usage_error(cli_prog, "--unix-auth: \"%s\" is neither uid nor "
		    "token", unix_auth);
	server.cfg.unix_token = unix_auth != NULL &&
	    strcmp(unix_auth, "token") == 0;
	if (noauth && (token_file != NULL || unix_auth != NULL))
		usage_error(cli_prog, "--no-auth excludes --token-file and "
		    "--unix-auth");
	errno = 0;
	if (outdir != NULL && (stat(outdir, &st) != 0 || !S_ISDIR(st.st_mode)))
		usage_error(cli_prog, "--output-dir %s: %s", outdir,
		    errno ? strerror(errno) : "not a directory");
	if (tmpl != NULL) {
		char	*probe;

		if ((probe = serve_result_name(tmpl, "a.b", &cause)) == NULL)
			usage_error(cli_prog, "%s", cause);
		free(probe);
	}
	if ((rest = poptGetArgs(pc)) != NULL)
		for (; *rest != NULL; rest++)
			names_add(&files, xstrdup(*rest));
	if (files_from != NULL)
		names_read(&files, files_from, nul);
	else if (nul)
		usage_error(cli_prog, "-0 only applies to --files-from");
	if (files.n == 0 && files_from == NULL)
		usage_error(cli_prog, "no files to serve");

	if (joblog != NULL && joblog_open(joblog, &cause) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(JQ_EXIT_IO);
	}
	if (listen == NULL)
		listen = default_listen;
	for (n = 0; listen[n] != NULL; n++) {
		struct net_addr	 a;

		if (net_parse_addr(listen[n], 1, &a, &cause) != 0)
			usage_error(cli_prog, "--listen %s", cause);
	}
	log_init(cli_prog, quiet ? -1 : verbose);
	if (auth_init() != 0) {
		fprintf(stderr, "%s: libsodium cannot start\n", cli_prog);
		exit(JQ_EXIT_IO);
	}
	if (noauth)
		log_warnx("WARNING: authentication is off (--no-auth): anyone "
		    "who can connect may take jobs and store results");
	else {
		if ((token_path = auth_path(token_file, &cause)) == NULL ||
		    auth_load(token_path, 1, &key, &cause) != 0) {
			fprintf(stderr, "%s: %s\n", cli_prog, cause);
			exit(JQ_EXIT_AUTH);
		}
		log_debug("token file %s", token_path);
		free(token_path);
		server.cfg.key = &key;
	}
	serve_load(&server.queue, &files, outdir, tmpl ? tmpl : "{name}.result",
	    skip);
	if (state_dir == NULL && (arg = getenv("JQ_STATE_DIR")) != NULL &&
	    *arg != '\0')
		state_dir = xstrdup(arg);
	store_sync = !nosync;
	if (journal_open(&server.queue, state_dir ? state_dir : ".jq-serve",
	    fresh, retry_failed, !nosync, &cause) != 0) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		exit(JQ_EXIT_IO);
	}
	server.cfg.listen = listen;
	server.cfg.nlisten = n;
	server.cfg.addr_file = addr_file;

	rc = server_run(&cause);
	journal_close(&server.queue, rc == JQ_EXIT_OK);
	if (rc == JQ_EXIT_IO && cause != NULL) {
		fprintf(stderr, "%s: %s\n", cli_prog, cause);
		free(cause);
	}
	if (listen != default_listen) {
		for (n = 0; listen[n] != NULL; n++)
			free((char *)listen[n]);
		free(listen);
	}
	free(files_from);
	free(outdir);
	free(tmpl);
	free(addr_file);
	free(max_result);
	free(max_conns);
	free(linger);
	free(lease);
	free(retries);
	free(state_dir);
	free(joblog);
	free(token_file);
	free(unix_auth);
	free(stall);
	free(idle);
	queue_free(&server.queue);
	return rc;
}
