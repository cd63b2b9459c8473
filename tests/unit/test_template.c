/*
 * test_template.c: unit tests for template.c (jq-run's command templates):
 * placeholders in both spellings, the escapes "<<" and "{{", text with
 * brackets that is not a placeholder (awk's {print}, "a < b"), <out.EXT>,
 * errors, and the safe file names made from job names (long names, blanks,
 * leading dashes).  Prints TAP; exits 1 when any test fails.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"
#include "tap.h"

static const struct template_vars vars = {
	"/t/in/A.wav", "/t/out/A.mp3", "dir/A.wav", "7", "/t/outdir"
};
/* What check() expands with: vars, unless a test says otherwise. */
static const struct template_vars *check_with = &vars;

/*
 * Parse the words of tpl (separated by '|'), expand them with vars and
 * compare with want (words separated by '|').  want NULL: parsing must fail.
 */
static void
check(const char *tpl, const char *want, int uses, const char *ext)
{
	char		*words[16], *copy, *cause = NULL, **argv, *got;
	struct template	*t;
	int		 n = 0, i;
	size_t		 len = 0;

	copy = xstrdup(tpl);
	for (char *p = copy, *w; (w = strsep(&p, "|")) != NULL; )
		words[n++] = w;
	t = template_parse(n, words, &cause);
	if (want == NULL) {
		OK(t == NULL && cause != NULL, "rejects [%s] (%s)", tpl,
		    cause != NULL ? cause : "accepted");
		template_free(t);
		free(cause);
		free(copy);
		return;
	}
	if (t == NULL) {
		OK(0, "parses [%s]: %s", tpl, cause);
		free(cause);
		free(copy);
		return;
	}
	argv = template_expand(t, check_with);
	for (i = 0; argv[i] != NULL; i++)
		len += strlen(argv[i]) + 1;
	got = xcalloc(len + 1, 1);
	for (i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			strcat(got, "|");
		strcat(got, argv[i]);
	}
	OK(strcmp(got, want) == 0 && i == n, "[%s] -> [%s]%s%s", tpl, want,
	    strcmp(got, want) == 0 ? "" : " got ", strcmp(got, want) == 0 ?
	    "" : got);
	if (uses >= 0)
		OK(template_uses(t) == uses, "[%s] uses 0x%x (got 0x%x)", tpl,
		    (unsigned)uses, (unsigned)template_uses(t));
	if (uses >= 0)
		OK((ext == NULL && template_out_ext(t) == NULL) ||
		    (ext != NULL && template_out_ext(t) != NULL &&
		    strcmp(ext, template_out_ext(t)) == 0),
		    "[%s] out extension %s", tpl, ext ? ext : "none");
	template_argv_free(argv);
	template_free(t);
	free(got);
	free(copy);
}

/* A copy of s with control bytes shown as '?', for TAP lines. */
static char *
visible(const char *s)
{
	char	*v = xstrdup(s), *p;

	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p < ' ')
			*p = '?';
	return v;
}

/* Check template_basename and template_stem on one name. */
static void
check_name(const char *name, const char *base, const char *stem)
{
	char	*b = template_basename(name), *s = template_stem(b);
	char	*vn = visible(name), *vb = visible(base), *vs = visible(stem);
	char	*gb = visible(b), *gs = visible(s);

	OK(strcmp(b, base) == 0, "basename of '%s' is '%s' (got '%s')", vn,
	    vb, gb);
	OK(strcmp(s, stem) == 0, "stem of '%s' is '%s' (got '%s')", vn,
	    vs, gs);
	free(b);
	free(s);
	free(vn);
	free(vb);
	free(vs);
	free(gb);
	free(gs);
}

/* Expand a one-word template "x|WORD" with v; a new string, or NULL. */
static char *
expand_one(const char *word, const struct template_vars *v)
{
	char		 w0[] = "x", *w1 = xstrdup(word), *w[] = { w0, w1 };
	char		*cause = NULL, **argv, *got = NULL;
	struct template	*t = template_parse(2, w, &cause);

	if (t != NULL) {
		argv = template_expand(t, v);
		if (argv[0] != NULL && argv[1] != NULL && argv[2] == NULL)
			got = xstrdup(argv[1]);
		template_argv_free(argv);
	}
	template_free(t);
	free(cause);
	free(w1);
	return got;
}

/* Edge cases: escapes, brackets that are text, <out.EXT>, odd names. */
static void
test_edges(void)
{
	static const struct template_vars odd = {
		"/t/in/-rf x", "/t/out/-rf x.out", "-rf x;$(y) *", "12", NULL
	};
	char	 name[TEMPLATE_BASE_MAX + 64], *b, *s, *word, *want, *got;
	char	*big;
	size_t	 i;

	/* escapes: "<<" is "<" and "{{" is "{" wherever they stand */
	/* <outdir>: a tree as the result; never with <out> */
	check("ffmpeg|-i|<in>|{outdir}/f%04d.png", "ffmpeg|-i|/t/in/A.wav|"
	    "/t/outdir/f%04d.png", TEMPLATE_USES_IN | TEMPLATE_USES_OUTDIR, NULL);
	check("x|<outdir>|<<outdir>", "x|/t/outdir|<outdir>",
	    TEMPLATE_USES_OUTDIR, NULL);
	check("x|<outdir>|<out>", NULL, 0, NULL);
	check("x|{out.png}|{outdir}", NULL, 0, NULL);
	check("x|<outdr>", NULL, 0, NULL);
	check("x|<out_dir>", NULL, 0, NULL);
	check("x|<OUTDIR>", NULL, 0, NULL);
	check("x|<<>", "x|<>", 0, NULL);
	check("x|a<<b", "x|a<b", 0, NULL);
	check("x|<<id>>", "x|<id>>", 0, NULL);
	check("x|{{name}}", "x|{name}}", 0, NULL);
	check("x|<<<<in>>", "x|<<in>>", 0, NULL);
	check("x|{{<in>", "x|{/t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("x|<<{id}", "x|<7", TEMPLATE_USES_ID, NULL);
	check("sh|-c|cat <<EOF", "sh|-c|cat <EOF", 0, NULL);
	check("sh|-c|cat <<<<EOF", "sh|-c|cat <<EOF", 0, NULL);

	/* placeholders inside brackets that are text */
	check("x|{<in>}", "x|{/t/in/A.wav}", TEMPLATE_USES_IN, NULL);
	check("x|<{in}>", "x|</t/in/A.wav>", TEMPLATE_USES_IN, NULL);
	check("sh|-c|f() { cat <in>; }", "sh|-c|f() { cat /t/in/A.wav; }",
	    TEMPLATE_USES_IN, NULL);
	check("awk|{ print > \"<out>\" }",
	    "awk|{ print > \"/t/out/A.mp3\" }", TEMPLATE_USES_OUT, NULL);

	/* bracketed text that is no near miss of a placeholder stays as
	 * written (near misses are errors: see main) */
	check("x|<foo>|{bar}", "x|<foo>|{bar}", 0, NULL);
	check("x|<name >|{ id}|< out>", "x|<name >|{ id}|< out>", 0, NULL);
	check("x|{name.x}", NULL, 0, NULL);
	check("x|<id.1>", NULL, 0, NULL);
	check("x|{Name}", NULL, 0, NULL);
	check("x|<in|{in|in>|in}|<in {in}", "x|<in|{in|in>|in}|<in /t/in/A.wav",
	    TEMPLATE_USES_IN, NULL);
	check("awk|{print}", "awk|{print}", 0, NULL);
	check("awk|BEGIN{n=0}{n++}END{print n}", "awk|BEGIN{n=0}{n++}END{print n}",
	    0, NULL);
	check("awk|{ if (a < b) print $1 }", "awk|{ if (a < b) print $1 }", 0,
	    NULL);
	check("sh|-c|test 1 < 2 && echo {} <>", "sh|-c|test 1 < 2 && echo {} <>",
	    0, NULL);
	check("x|a<b>c|{a,b}|${HOME}|<<-", "x|a<b>c|{a,b}|${HOME}|<-", 0, NULL);
	check("find|.|-exec|cp|{}|<out>|;", "find|.|-exec|cp|{}|/t/out/A.mp3|;",
	    TEMPLATE_USES_OUT, NULL);

	/* <out.EXT> */
	check("x|<out.MP3>", "x|/t/out/A.mp3", TEMPLATE_USES_OUT, "MP3");
	check("x|{out.a.b.c}", "x|/t/out/A.mp3", TEMPLATE_USES_OUT, "a.b.c");
	check("x|--output=<out.flac>", "x|--output=/t/out/A.mp3",
	    TEMPLATE_USES_OUT, "flac");
	check("x|<out.mp3>|{out.mp3}|<out.mp3>", "x|/t/out/A.mp3|/t/out/A.mp3|"
	    "/t/out/A.mp3", TEMPLATE_USES_OUT, "mp3");
	check("x|<out.a\tb>", "x|<out.a\tb>", 0, NULL);
	check("x|<out.mp3 >", "x|<out.mp3 >", 0, NULL);
	check("x|<out.a{b>|<out.}>|<out.<b>", "x|<out.a{b>|<out.}>|<out.<b>", 0,
	    NULL);
	check("x|<out.mp3>|<out.MP3>", NULL, 0, NULL);
	check("x|<out.mp3>|<out>", NULL, 0, NULL);
	check("x|<out./>", NULL, 0, NULL);
	check("x|{out../x}", NULL, 0, NULL);
	check("<out.>|x", NULL, 0, NULL);

	/* the command name */
	check("<<|x", "<|x", 0, NULL);
	check("{name}", "dir/A.wav", TEMPLATE_USES_NAME, NULL);

	/* names with blanks, leading dashes, shell characters stay one word */
	check_with = &odd;
	check("echo|<name>|{in}", "echo|-rf x;$(y) *|/t/in/-rf x",
	    TEMPLATE_USES_NAME | TEMPLATE_USES_IN, NULL);
	check("x|--in=<in>|-<id>-", "x|--in=/t/in/-rf x|-12-",
	    TEMPLATE_USES_IN | TEMPLATE_USES_ID, NULL);
	check_with = &vars;
	check_name("-", "-", "-");
	check_name("--help", "--help", "--help");
	check_name("-.wav", "-.wav", "-");
	check_name("dir/-rf", "-rf", "-rf");
	check_name("a/ /b c.d e", "b c.d e", "b c");
	check_name(" lead.wav", " lead.wav", " lead");
	check_name("x/ ", " ", " ");
	check_name("trailing.", "trailing.", "trailing");
	check_name("a\\b.wav", "a\\b.wav", "a\\b");
	check_name("<in>.wav", "<in>.wav", "<in>");

	/* long names */
	memset(name, 'n', TEMPLATE_BASE_MAX);
	name[TEMPLATE_BASE_MAX] = '\0';
	b = template_basename(name);
	OK(strcmp(b, name) == 0, "a name of exactly %d bytes is kept whole",
	    TEMPLATE_BASE_MAX);
	free(b);
	memcpy(name + TEMPLATE_BASE_MAX - 4, ".ogg", 5);
	memmove(name + 1, name, TEMPLATE_BASE_MAX + 1);
	b = template_basename(name);
	s = template_stem(b);
	OK(strlen(b) == TEMPLATE_BASE_MAX && strcmp(b + TEMPLATE_BASE_MAX - 4,
	    ".ogg") == 0 && strlen(s) == TEMPLATE_BASE_MAX - 4,
	    "one byte more: cut to %d, .ogg kept, stem %zu bytes",
	    TEMPLATE_BASE_MAX, strlen(s));
	free(b);
	free(s);
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	name[20] = '.';				/* an extension of 243 bytes */
	b = template_basename(name);
	OK(strlen(b) == TEMPLATE_BASE_MAX && strncmp(b, name, TEMPLATE_BASE_MAX) == 0,
	    "a long name whose extension is long is simply cut to %d bytes",
	    TEMPLATE_BASE_MAX);
	free(b);
	name[20] = 'n';
	name[0] = '.';				/* a dot file: no extension */
	b = template_basename(name);
	s = template_stem(b);
	OK(strlen(b) == TEMPLATE_BASE_MAX && b[0] == '.' && strcmp(s, b) == 0,
	    "a long dot file is cut and keeps its leading dot as its stem");
	free(b);
	free(s);
	big = xmalloc(5000);
	memset(big, 'd', 4999);
	big[4999] = '\0';
	big[10] = '/';
	memcpy(big + 4990, "/short.x", 9);
	b = template_basename(big);
	OK(strcmp(b, "short.x") == 0, "a long path with a short last name: "
	    "\"%s\"", b);
	free(b);

	/* long values expand whole, as often as they are named */
	memset(big, 'v', 4999);
	{
		struct template_vars longv = { big, "o", big, "1", NULL };
		got = expand_one("<in>:{name}:<in>", &longv);
		want = xprintf("%s:%s:%s", big, big, big);
		OK(got != NULL && strcmp(got, want) == 0,
		    "three 4999-byte values expand into one word of %zu bytes",
		    strlen(want));
		free(got);
		free(want);
	}
	/* many placeholders in one word */
	word = xcalloc(1, 4 * 1000 + 1);
	for (i = 0; i < 1000; i++)
		strcat(word, i % 2 ? "{id}" : "<id>");
	got = expand_one(word, &vars);
	OK(got != NULL && strlen(got) == 1000 && strspn(got, "7") == 1000,
	    "a word of 1000 placeholders expands to 1000 values");
	free(got);
	free(word);
	free(big);

	/* an accepted <out.EXT> fits NAME_MAX whatever the job's name */
	{
		char w0[] = "x", w1[80], *w[] = { w0, w1 }, *cause = NULL;
		struct template *t;

		memcpy(w1, "<out.", 5);
		memset(w1 + 5, 'e', 60);
		memcpy(w1 + 65, ">", 2);
		t = template_parse(2, w, &cause);
		memset(name, 'n', sizeof name - 1);
		name[sizeof name - 1] = '\0';
		b = template_basename(name);
		s = template_stem(b);
		OK(t == NULL || strlen(s) + 1 + strlen(template_out_ext(t)) <=
		    255, "an accepted <out.EXT> fits NAME_MAX with any job's stem "
		    "(%s)", t == NULL ? cause : "accepted");
		free(b);
		free(s);
		free(cause);
		template_free(t);
	}
}

int
main(void)
{
	char	 longname[600], *b;
	int	 i;

	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Plain words and each placeholder in both spellings. */
	check("cat", "cat", 0, NULL);
	check("cp|<in>|<out>", "cp|/t/in/A.wav|/t/out/A.mp3",
	    TEMPLATE_USES_IN | TEMPLATE_USES_OUT, NULL);
	check("cp|{in}|{out}", "cp|/t/in/A.wav|/t/out/A.mp3",
	    TEMPLATE_USES_IN | TEMPLATE_USES_OUT, NULL);
	check("ffmpeg|-i|<in>|<out.mp3>", "ffmpeg|-i|/t/in/A.wav|/t/out/A.mp3",
	    TEMPLATE_USES_IN | TEMPLATE_USES_OUT, "mp3");
	check("ffmpeg|-i|{in}|{out.mp3}", "ffmpeg|-i|/t/in/A.wav|/t/out/A.mp3",
	    TEMPLATE_USES_IN | TEMPLATE_USES_OUT, "mp3");
	check("x|<out.tar.gz>", "x|/t/out/A.mp3", TEMPLATE_USES_OUT,
	    "tar.gz");
	check("echo|<name>|{id}", "echo|dir/A.wav|7",
	    TEMPLATE_USES_NAME | TEMPLATE_USES_ID, NULL);
	check("echo|{name}|<id>", "echo|dir/A.wav|7",
	    TEMPLATE_USES_NAME | TEMPLATE_USES_ID, NULL);

	/* Placeholders inside a word, several in one word, repeated. */
	check("x|--input=<in>", "x|--input=/t/in/A.wav", TEMPLATE_USES_IN,
	    NULL);
	check("x|<id>:{name}:<id>", "x|7:dir/A.wav:7",
	    TEMPLATE_USES_NAME | TEMPLATE_USES_ID, NULL);
	check("x|a<in>b{in}c", "x|a/t/in/A.wavb/t/in/A.wavc",
	    TEMPLATE_USES_IN, NULL);
	check("x|<out>|{out}", "x|/t/out/A.mp3|/t/out/A.mp3",
	    TEMPLATE_USES_OUT, NULL);
	check("x|<out.mp3>|{out.mp3}", "x|/t/out/A.mp3|/t/out/A.mp3",
	    TEMPLATE_USES_OUT, "mp3");
	check("<in>", "/t/in/A.wav", TEMPLATE_USES_IN, NULL);

	/* Literal brackets. */
	check("echo|<<in>", "echo|<in>", 0, NULL);
	check("echo|{{in}", "echo|{in}", 0, NULL);
	check("echo|<<<in>", "echo|</t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("echo|{{{in}", "echo|{/t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("echo|<<", "echo|<", 0, NULL);
	check("echo|<<<<", "echo|<<", 0, NULL);
	check("echo|{{}}", "echo|{}}", 0, NULL);
	check("echo|<<out.mp3>", "echo|<out.mp3>", 0, NULL);
	check("echo|{{out.>", "echo|{out.>", 0, NULL);

	/* Text that only looks like a placeholder stays as written. */
	check("sh|-c|a < b", "sh|-c|a < b", 0, NULL);
	check("sh|-c|sort <file >x", "sh|-c|sort <file >x", 0, NULL);
	check("awk|{print $1}", "awk|{print $1}", 0, NULL);
	check("x|<in >|< in>", "x|<in >|< in>", 0, NULL);
	check("x|<in}|{in>", "x|<in}|{in>", 0, NULL);
	check("x|<|>|{|}|<>|{}", "x|<|>|{|}|<>|{}", 0, NULL);
	check("x|<out.a b>", "x|<out.a b>", 0, NULL);
	check("x|<a<in>", "x|<a/t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("x|{x{in}", "x|{x/t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("x|<out.", "x|<out.", 0, NULL);
	/* brackets around words that are no near miss of a placeholder:
	 * HTML, awk, regex counts, shell */
	check("sed|s/<i>|<b>|<td>|<li>|<dd>|<br>|<div>|<p>",
	    "sed|s/<i>|<b>|<td>|<li>|<dd>|<br>|<div>|<p>", 0, NULL);
	check("x|{print}|{1}|{2,3}|{x}|{}|<file>|<stdin>|{HOME}|<input file>",
	    "x|{print}|{1}|{2,3}|{x}|{}|<file>|<stdin>|{HOME}|<input file>", 0,
	    NULL);
	check("x|<<outt.mp3>|{{inn}", "x|<outt.mp3>|{inn}", 0, NULL);

	/* Near misses of a placeholder are errors, not literal text. */
	check("lame|<in>|<outt.mp3>", NULL, 0, NULL);
	check("x|{inn}", NULL, 0, NULL);
	check("x|<ot>", NULL, 0, NULL);
	check("x|<nmae>", NULL, 0, NULL);
	check("x|<nam>", NULL, 0, NULL);
	check("x|<ni>", NULL, 0, NULL);
	check("x|<IN>", NULL, 0, NULL);
	check("x|{Out}", NULL, 0, NULL);
	check("x|<ID>", NULL, 0, NULL);
	check("x|<in.wav>", NULL, 0, NULL);
	check("x|<outx>", NULL, 0, NULL);
	check("x|<output>", NULL, 0, NULL);
	check("x|<outfile.mp3>", NULL, 0, NULL);
	check("x|<input>", NULL, 0, NULL);
	check("x|{infile.wav}", NULL, 0, NULL);
	check("x|<index>|<info>", "x|<index>|<info>", 0, NULL);
	check("x|--file=<ids>", NULL, 0, NULL);
	check("x|", "x|", 0, NULL);
	check("x|-", "x|-", 0, NULL);

	/* Errors. */
	check("x|<out>|<out.mp3>", NULL, 0, NULL);
	check("x|{out.mp3}|<out.wav>", NULL, 0, NULL);
	check("x|<out.wav>|{out}", NULL, 0, NULL);
	check("x|<out.>", NULL, 0, NULL);
	check("x|{out.}", NULL, 0, NULL);
	check("x|<out.a/b>", NULL, 0, NULL);
	check("x|<out../../etc>", NULL, 0, NULL);
	check("", NULL, 0, NULL);
	{
		char *cause = NULL;
		OK(template_parse(0, NULL, &cause) == NULL && cause != NULL,
		    "rejects an empty command");
		free(cause);
	}

	/* Unset variables expand to nothing rather than crashing. */
	{
		char w0[] = "x", w1[] = "<in>", w2[] = "{out}";
		char *w[] = { w0, w1, w2 };
		char *cause = NULL, **argv;
		struct template_vars none = { NULL, NULL, NULL, NULL, NULL };
		struct template *t = template_parse(3, w, &cause);

		argv = template_expand(t, &none);
		OK(argv[0] != NULL && strcmp(argv[1], "") == 0 &&
		    strcmp(argv[2], "") == 0 && argv[3] == NULL,
		    "unset variables expand to empty words");
		template_argv_free(argv);
		template_free(t);
	}

	/* Safe file names from job names. */
	check_name("A.wav", "A.wav", "A");
	check_name("/abs/dir/A.wav", "A.wav", "A");
	check_name("../../etc/passwd", "passwd", "passwd");
	check_name("dir/", "job", "job");
	check_name("", "job", "job");
	check_name(".", "job", "job");
	check_name("..", "job", "job");
	check_name("a/..", "job", "job");
	check_name("a/.", "job", "job");
	check_name("-x.wav", "-x.wav", "-x");
	check_name("a b;$(rm -rf).wav", "a b;$(rm -rf).wav", "a b;$(rm -rf)");
	check_name(".profile", ".profile", ".profile");
	check_name("a.tar.gz", "a.tar.gz", "a.tar");
	check_name("...", "...", "job");
	check_name("..x", "..x", "job");
	check_name("noext", "noext", "noext");
	check_name("line\nbreak.txt", "line\nbreak.txt", "line\nbreak");

	memset(longname, 'a', sizeof longname - 5);
	memcpy(longname + sizeof longname - 5, ".wav", 5);
	b = template_basename(longname);
	OK(strlen(b) == TEMPLATE_BASE_MAX && strcmp(b + strlen(b) - 4,
	    ".wav") == 0, "a long name is cut to %d bytes, extension kept",
	    TEMPLATE_BASE_MAX);
	free(b);
	memset(longname, '/', 10);
	b = template_basename(longname);
	OK(strchr(b, '/') == NULL, "a long base name holds no '/'");
	free(b);

	/* No base name ever holds a '/', whatever the bytes. */
	for (i = 0; i < 2000; i++) {
		char name[16];
		int j, bad = 0;

		for (j = 0; j < 15; j++)
			name[j] = "/.a"[(i >> (j % 11)) % 3];
		name[15] = '\0';
		b = template_basename(name);
		bad = strchr(b, '/') != NULL || strcmp(b, ".") == 0 ||
		    strcmp(b, "..") == 0 || *b == '\0';
		free(b);
		if (bad) {
			OK(0, "base name of '%s' is safe", name);
			break;
		}
	}
	if (i == 2000)
		OK(1, "2000 generated names give safe base names");

	test_edges();
	return t_done();
}
