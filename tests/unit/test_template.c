/*
 * test_template.c: TAP unit test of template.c (jq-run's command templates).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

static int	 test_n;
static int	 test_failed;

/* Print one TAP line. */
static void JQ_PRINTF(2, 3)
ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	printf("%sok %d - ", cond ? "" : "not ", ++test_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		test_failed = 1;
}

static const struct template_vars vars = {
	"/t/in/A.wav", "/t/out/A.mp3", "dir/A.wav", "7"
};

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
		ok(t == NULL && cause != NULL, "rejects [%s] (%s)", tpl,
		    cause != NULL ? cause : "accepted");
		template_free(t);
		free(cause);
		free(copy);
		return;
	}
	if (t == NULL) {
		ok(0, "parses [%s]: %s", tpl, cause);
		free(cause);
		free(copy);
		return;
	}
	argv = template_expand(t, &vars);
	for (i = 0; argv[i] != NULL; i++)
		len += strlen(argv[i]) + 1;
	got = xcalloc(len + 1, 1);
	for (i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			strcat(got, "|");
		strcat(got, argv[i]);
	}
	ok(strcmp(got, want) == 0 && i == n, "[%s] -> [%s]%s%s", tpl, want,
	    strcmp(got, want) == 0 ? "" : " got ", strcmp(got, want) == 0 ?
	    "" : got);
	if (uses >= 0)
		ok(template_uses(t) == uses, "[%s] uses 0x%x (got 0x%x)", tpl,
		    (unsigned)uses, (unsigned)template_uses(t));
	if (uses >= 0)
		ok((ext == NULL && template_out_ext(t) == NULL) ||
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

	ok(strcmp(b, base) == 0, "basename of '%s' is '%s' (got '%s')", vn,
	    vb, gb);
	ok(strcmp(s, stem) == 0, "stem of '%s' is '%s' (got '%s')", vn,
	    vs, gs);
	free(b);
	free(s);
	free(vn);
	free(vb);
	free(vs);
	free(gb);
	free(gs);
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
	check("x|<IN>|{Out}|<in >|< in>", "x|<IN>|{Out}|<in >|< in>", 0,
	    NULL);
	check("x|<in}|{in>", "x|<in}|{in>", 0, NULL);
	check("x|<|>|{|}|<>|{}", "x|<|>|{|}|<>|{}", 0, NULL);
	check("x|<out.a b>", "x|<out.a b>", 0, NULL);
	check("x|<a<in>", "x|<a/t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("x|{x{in}", "x|{x/t/in/A.wav", TEMPLATE_USES_IN, NULL);
	check("x|<outx>|<out.", "x|<outx>|<out.", 0, NULL);
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
		ok(template_parse(0, NULL, &cause) == NULL && cause != NULL,
		    "rejects an empty command");
		free(cause);
	}

	/* Unset variables expand to nothing rather than crashing. */
	{
		char w0[] = "x", w1[] = "<in>", w2[] = "{out}";
		char *w[] = { w0, w1, w2 };
		char *cause = NULL, **argv;
		struct template_vars none = { NULL, NULL, NULL, NULL };
		struct template *t = template_parse(3, w, &cause);

		argv = template_expand(t, &none);
		ok(argv[0] != NULL && strcmp(argv[1], "") == 0 &&
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
	ok(strlen(b) == TEMPLATE_BASE_MAX && strcmp(b + strlen(b) - 4,
	    ".wav") == 0, "a long name is cut to %d bytes, extension kept",
	    TEMPLATE_BASE_MAX);
	free(b);
	memset(longname, '/', 10);
	b = template_basename(longname);
	ok(strchr(b, '/') == NULL, "a long base name holds no '/'");
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
			ok(0, "base name of '%s' is safe", name);
			break;
		}
	}
	if (i == 2000)
		ok(1, "2000 generated names give safe base names");

	printf("1..%d\n", test_n);
	return test_failed;
}
