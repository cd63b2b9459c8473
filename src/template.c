/*
 * template.c: jq-run's command templates.
 *
 * A template is the COMMAND [ARG]... tail of jq-run, parsed once at start-up
 * and expanded once per job.  Inside any argument these placeholders are
 * replaced:
 *
 *   <in>  {in}		the path of the file holding the job's data
 *   <out> {out}		the path the command must write its result to
 *   <out.EXT> {out.EXT}	the same path with the extension .EXT
 *   <outdir> {outdir}	an empty directory: all the command leaves there
 *			is the result, a tree (not with <out>)
 *   <name> {name}	the job's original name
 *   <id> {id}		the job's id
 *
 * "<<" gives a literal "<" and "{{" a literal "{", so "<<in>" is the text
 * "<in>".  Anything else between brackets ("a < b", "<file>", "{print}") is
 * left exactly as written, so most shell snippets pass through unchanged.
 * An "out." word that cannot be an extension ("<out.>", "<out.a/b>") is an
 * error rather than text: it was surely meant as a placeholder.
 *
 * The module is pure: no I/O, no globals.  It also derives the safe file
 * names jq-run uses for <in> and <out> from a job name the server sent.
 */
#include <stdlib.h>
#include <string.h>

#include "jq.h"

/* One piece of an argument: literal text or a placeholder. */
struct template_seg {
	enum template_kind	 kind;
	char			*text;	/* TEMPLATE_TEXT only */
	size_t			 len;
};

struct template_arg {
	struct template_seg	*segs;
	size_t			 nsegs;
};

struct template {
	struct template_arg	*args;
	size_t			 nargs;
	int			 uses;	/* TEMPLATE_USES_* */
	char			*ext;	/* EXT of <out.EXT>, NULL for <out> */
	char			*out_form;	/* the first out placeholder seen, for messages */
};

/* A growing byte buffer for literal text. */
struct template_buf {
	char	*p;
	size_t	 len;
	size_t	 size;
};

/* Append n bytes to b. */
static void
template_buf_add(struct template_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->size) {
		b->size = (b->len + n + 1) * 2;
		b->p = xreallocarray(b->p, b->size, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append a segment to an argument; literal text is copied. */
static void
template_seg_add(struct template_arg *a, enum template_kind kind,
    const char *text, size_t len)
{
	struct template_seg	*seg;

	a->segs = xreallocarray(a->segs, a->nsegs + 1, sizeof *a->segs);
	seg = &a->segs[a->nsegs++];
	seg->kind = kind;
	seg->text = kind == TEMPLATE_TEXT ? xstrndup(text, len) : NULL;
	seg->len = len;
}

/* Move pending literal text into a segment. */
static void
template_flush_text(struct template_arg *a, struct template_buf *b)
{
	if (b->len == 0)
		return;
	template_seg_add(a, TEMPLATE_TEXT, b->p, b->len);
	b->len = 0;
}

/* Can ext follow "out." in a placeholder?  Not empty, no '/', no blanks. */
static int
template_ext_ok(const char *ext, size_t len, int *slash)
{
	size_t	i;

	*slash = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)ext[i];
		if (c == '/')
			*slash = 1;
		if (c <= ' ' || c == 0x7f || c == '<' || c == '>' ||
		    c == '{' || c == '}')
			return 0;
	}
	return len > 0 && !*slash;
}

/* The placeholder names, for near-miss checks and messages. */
static const char *const template_names[] = { "in", "out", "name", "id",
	"outdir" };
#define TEMPLATE_KNOWN	"<in> <out> <out.EXT> <name> <id> <outdir> (or the same in {})"

/*
 * Edit distance between a and b (both short), counting a swap of two
 * neighbours as one edit (optimal string alignment): "nmae" is one edit
 * from "name".  Words longer than 15 bytes are simply "far".
 */
static size_t
template_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t	d[16][16], i, j, cost, best;

	if (la >= 16 || lb >= 16)
		return 99;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			cost = a[i - 1] == b[j - 1] ? 0 : 1;
			best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

/*
 * Is the word between brackets a mistyped placeholder?  Only a bare word
 * ([A-Za-z0-9._-], as placeholders are) can be: "outt", "inn", "ot", "nmae",
 * "IN", "in.wav", "output".  Text such as "print", "file", "a b" or "1" is
 * not, so shell and awk snippets keep passing through.
 */
static int
template_near_miss(const char *w, size_t len)
{
	char	 low[16];
	size_t	 i, head, k, n;

	if (len == 0 || len >= sizeof low)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)w[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
		low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 'a' - 'A' : c);
	}
	for (head = 0; head < len && low[head] != '.'; head++)
		;
	if (head >= 3 && memcmp(low, "out", 3) == 0)
		return 1;		/* <outt>, <output>, <outfile.mp3> */
	if ((head >= 5 && memcmp(low, "input", 5) == 0) ||
	    (head >= 6 && memcmp(low, "infile", 6) == 0))
		return 1;		/* <input>, <infile.wav> */
	for (k = 0; k < sizeof template_names / sizeof *template_names; k++) {
		const char *name = template_names[k];

		n = strlen(name);
		/* one edit from a name, or the name itself in the wrong case or
		 * with an extension only <out.EXT> takes */
		if (template_distance(low, head, name, n) > 1)
			continue;
		/* "in" and "id" are one edit from many short words (HTML's
		 * <i>, <td>, <li>): there, only the same first letter or a
		 * swap ("inn", "IN", "ni") counts */
		if (n > 2 || (head >= 2 && (low[0] == name[0] ||
		    (head == 2 && low[0] == name[1] && low[1] == name[0]))))
			return 1;
	}
	return 0;
}

/*
 * Classify the word between brackets.  Returns the placeholder kind, or
 * TEMPLATE_TEXT when the word is not a placeholder, or -1 with *cause set
 * when it is a broken out.EXT or a near miss of a placeholder (a typo must
 * not turn into a literal file name and an empty result).  For
 * TEMPLATE_OUT, *ext and *extlen give EXT.
 */
static int
template_word(const char *w, size_t len, const char **ext, size_t *extlen,
    char **cause)
{
	int	slash;

	*ext = NULL;
	*extlen = 0;
	if (len == 2 && memcmp(w, "in", 2) == 0)
		return TEMPLATE_IN;
	if (len == 3 && memcmp(w, "out", 3) == 0)
		return TEMPLATE_OUT;
	if (len == 6 && memcmp(w, "outdir", 6) == 0)
		return TEMPLATE_OUTDIR;
	if (len == 4 && memcmp(w, "name", 4) == 0)
		return TEMPLATE_NAME;
	if (len == 2 && memcmp(w, "id", 2) == 0)
		return TEMPLATE_ID;
	if (len >= 4 && memcmp(w, "out.", 4) == 0) {
		if (template_ext_ok(w + 4, len - 4, &slash) &&
		    len - 4 > TEMPLATE_EXT_MAX) {
			*cause = xprintf("extension '%.*s...' is longer than %d "
			    "bytes", 16, w + 4, TEMPLATE_EXT_MAX);
			return -1;
		}
		if (template_ext_ok(w + 4, len - 4, &slash)) {
			*ext = w + 4;
			*extlen = len - 4;
			return TEMPLATE_OUT;
		}
		if (len == 4) {
			*cause = xstrdup("empty extension in out placeholder");
			return -1;
		}
		if (slash) {
			*cause = xprintf("extension '%.*s' contains '/'",
			    (int)(len - 4), w + 4);
			return -1;
		}
	}
	if (template_near_miss(w, len)) {
		*cause = xprintf("'%.*s' looks like a mistyped placeholder; the "
		    "placeholders are " TEMPLATE_KNOWN " (a doubled bracket, "
		    "'<<' or '{{', keeps the text as it is)", (int)len, w);
		return -1;
	}
	return TEMPLATE_TEXT;
}

/* Record an out placeholder; refuse a second, different one. */
static int
template_note_out(struct template *t, char open, const char *ext,
    size_t extlen, char **cause)
{
	char	 close = open == '<' ? '>' : '}';
	char	*form;

	form = ext == NULL ? xprintf("%cout%c", open, close) :
	    xprintf("%cout.%.*s%c", open, (int)extlen, ext, close);
	if (!(t->uses & TEMPLATE_USES_OUT)) {
		t->uses |= TEMPLATE_USES_OUT;
		t->ext = ext == NULL ? NULL : xstrndup(ext, extlen);
		t->out_form = form;
		return 0;
	}
	if ((ext == NULL && t->ext == NULL) ||
	    (ext != NULL && t->ext != NULL && strlen(t->ext) == extlen &&
	    memcmp(t->ext, ext, extlen) == 0)) {
		free(form);
		return 0;
	}
	*cause = xprintf("two different output placeholders: %s and %s",
	    t->out_form, form);
	free(form);
	return -1;
}

/* Parse one argument into segments. */
static int
template_parse_arg(struct template *t, struct template_arg *a, const char *s,
    char **cause)
{
	struct template_buf	 b = { NULL, 0, 0 };
	const char		*end, *ext;
	size_t			 i, extlen;
	int			 kind;

	for (i = 0; s[i] != '\0'; ) {
		char open = s[i], close;

		if (open != '<' && open != '{') {
			template_buf_add(&b, &s[i++], 1);
			continue;
		}
		if (s[i + 1] == open) {		/* "<<" or "{{" */
			template_buf_add(&b, &s[i], 1);
			i += 2;
			continue;
		}
		close = open == '<' ? '>' : '}';
		if ((end = strchr(s + i + 1, close)) == NULL) {
			template_buf_add(&b, &s[i++], 1);
			continue;
		}
		kind = template_word(s + i + 1, (size_t)(end - (s + i + 1)),
		    &ext, &extlen, cause);
		if (kind < 0) {
			free(b.p);
			return -1;
		}
		if (kind == TEMPLATE_TEXT) {
			/* Not ours: keep the bracket, rescan what follows. */
			template_buf_add(&b, &s[i++], 1);
			continue;
		}
		if (kind == TEMPLATE_OUT &&
		    template_note_out(t, open, ext, extlen, cause) == -1) {
			free(b.p);
			return -1;
		}
		if (kind == TEMPLATE_IN)
			t->uses |= TEMPLATE_USES_IN;
		else if (kind == TEMPLATE_NAME)
			t->uses |= TEMPLATE_USES_NAME;
		else if (kind == TEMPLATE_ID)
			t->uses |= TEMPLATE_USES_ID;
		else if (kind == TEMPLATE_OUTDIR)
			t->uses |= TEMPLATE_USES_OUTDIR;
		template_flush_text(a, &b);
		template_seg_add(a, (enum template_kind)kind, NULL, 0);
		i = (size_t)(end - s) + 1;
	}
	template_flush_text(a, &b);
	free(b.p);
	return 0;
}

/* Parse argc words into a template; NULL with *cause on error. */
struct template *
template_parse(int argc, char *const argv[], char **cause)
{
	struct template	*t;
	int		 i;

	if (argc <= 0) {
		*cause = xstrdup("no command");
		return NULL;
	}
	t = xcalloc(1, sizeof *t);
	t->args = xcalloc((size_t)argc, sizeof *t->args);
	t->nargs = (size_t)argc;
	for (i = 0; i < argc; i++) {
		if (template_parse_arg(t, &t->args[i], argv[i], cause) == -1) {
			char *why = *cause;
			*cause = xprintf("argument %d '%s': %s", i, argv[i],
			    why);
			free(why);
			template_free(t);
			return NULL;
		}
	}
	if ((t->uses & TEMPLATE_USES_OUT) && (t->uses & TEMPLATE_USES_OUTDIR)) {
		*cause = xprintf("%s and <outdir> cannot be combined: a job's "
		    "result is one file or one tree (put the file in "
		    "<outdir>)", t->out_form);
		template_free(t);
		return NULL;
	}
	if (t->args[0].nsegs == 0) {
		*cause = xstrdup("the command name is empty");
		template_free(t);
		return NULL;
	}
	return t;
}

/* Which placeholders the template uses: TEMPLATE_USES_* bits. */
int
template_uses(const struct template *t)
{
	return t->uses;
}

/* EXT of the template's <out.EXT>, or NULL for <out> or no out at all. */
const char *
template_out_ext(const struct template *t)
{
	return t->ext;
}

/* The value a placeholder stands for ("" when the caller left it NULL). */
static const char *
template_value(enum template_kind kind, const struct template_vars *v)
{
	const char	*s = NULL;

	switch (kind) {
	case TEMPLATE_IN:
		s = v->in;
		break;
	case TEMPLATE_OUT:
		s = v->out;
		break;
	case TEMPLATE_OUTDIR:
		s = v->outdir;
		break;
	case TEMPLATE_NAME:
		s = v->name;
		break;
	case TEMPLATE_ID:
		s = v->id;
		break;
	case TEMPLATE_TEXT:
		break;
	}
	return s == NULL ? "" : s;
}

/*
 * Expand the template for one job into a NULL-terminated argv, for
 * execvp(); free it with template_argv_free().  vars->out is the complete
 * output path, extension included.
 */
char **
template_expand(const struct template *t, const struct template_vars *vars)
{
	char	**argv;
	size_t	  i, j;

	argv = xcalloc(t->nargs + 1, sizeof *argv);
	for (i = 0; i < t->nargs; i++) {
		const struct template_arg *a = &t->args[i];
		size_t	 len = 0, off = 0;
		char	*p;

		for (j = 0; j < a->nsegs; j++)
			len += a->segs[j].kind == TEMPLATE_TEXT ?
			    a->segs[j].len :
			    strlen(template_value(a->segs[j].kind, vars));
		p = xmalloc(len + 1);
		for (j = 0; j < a->nsegs; j++) {
			const char *s;
			size_t n;

			if (a->segs[j].kind == TEMPLATE_TEXT) {
				s = a->segs[j].text;
				n = a->segs[j].len;
			} else {
				s = template_value(a->segs[j].kind, vars);
				n = strlen(s);
			}
			memcpy(p + off, s, n);
			off += n;
		}
		p[off] = '\0';
		argv[i] = p;
	}
	return argv;
}

/* Free an argv made by template_expand(). */
void
template_argv_free(char **argv)
{
	size_t	i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* Free a template. */
void
template_free(struct template *t)
{
	size_t	i, j;

	if (t == NULL)
		return;
	for (i = 0; i < t->nargs; i++) {
		for (j = 0; j < t->args[i].nsegs; j++)
			free(t->args[i].segs[j].text);
		free(t->args[i].segs);
	}
	free(t->args);
	free(t->ext);
	free(t->out_form);
	free(t);
}

/* Is s a name that cannot be a plain file in a directory? */
static int
template_bad_component(const char *s)
{
	return strcmp(s, "") == 0 || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0;
}

/*
 * The stem rule, the one place it is written: a base name's extension
 * starts at its last '.', unless that is its first byte (".bashrc" has no
 * extension; "a.b.wav" has stem "a.b").  Returns where the stem ends: that
 * '.', or the end of the name when it has no extension.
 */
const char *
template_stem_end(const char *base)
{
	const char	*dot = strrchr(base, '.');

	return dot == NULL || dot == base ? base + strlen(base) : dot;
}

/*
 * The file name jq-run gives a job's data: the last path component of the
 * job's name, "job" when that is empty, "." or "..".  It never holds a '/',
 * so it always names a file inside the directory it is joined to.  Names
 * longer than TEMPLATE_BASE_MAX bytes are cut, keeping a short extension,
 * so that "<out.EXT>" still fits in NAME_MAX.
 */
char *
template_basename(const char *name)
{
	const char	*base;
	size_t		 len, extlen;
	char		*p;

	base = (base = strrchr(name, '/')) == NULL ? name : base + 1;
	if (template_bad_component(base))
		return xstrdup("job");
	if ((len = strlen(base)) <= TEMPLATE_BASE_MAX)
		return xstrdup(base);
	extlen = strlen(template_stem_end(base));
	if (extlen > 32)
		extlen = 0;
	p = xmalloc(TEMPLATE_BASE_MAX + 1);
	memcpy(p, base, TEMPLATE_BASE_MAX - extlen);
	memcpy(p + TEMPLATE_BASE_MAX - extlen, base + len - extlen, extlen);
	p[TEMPLATE_BASE_MAX] = '\0';
	return p;
}

/*
 * The stem of a base name from template_basename(): without its last
 * extension ("A.wav" -> "A", "a.tar.gz" -> "a.tar"); a leading dot does not
 * start an extension (".profile" stays).  "job" when nothing usable is left.
 */
char *
template_stem(const char *base)
{
	char	*stem;

	stem = xstrndup(base, (size_t)(template_stem_end(base) - base));
	if (template_bad_component(stem) || strchr(stem, '/') != NULL) {
		free(stem);
		stem = xstrdup("job");
	}
	return stem;
}
