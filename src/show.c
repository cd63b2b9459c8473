/*
 * show.c: bytes from the server (job names, worker names, messages) shown
 * safely: on a terminal, where a name must not move the cursor, change
 * colours or reorder the text around it, and in JSON, which must stay
 * valid whatever the bytes.  jq-stat prints with it, and jq-put --wait.
 *
 * The text form writes a newline, a tab and a backslash as \n, \t and \\,
 * and as \xXX each byte of a control character (C0, DEL and the C1 range
 * U+0080..U+009F, which some terminals take as escapes), of a bidirectional
 * override or isolate (U+202A..U+202E, U+2066..U+2069), or of anything
 * that is not valid UTF-8.  The JSON form keeps valid UTF-8, but writes
 * those same characters as \uXXXX escapes (the string is the same, and a
 * JSON document printed on a terminal is safe too), and every byte that
 * is not valid UTF-8 as \u00XX.
 */
#include <stdio.h>
#include <string.h>

#include "jq.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
show_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 need, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need + 1;
}

/*
 * Whether the n-byte UTF-8 sequence at s is a character a terminal must
 * not get: C1 controls, bidirectional overrides and isolates.
 */
static int
show_unsafe(const unsigned char *s, size_t n)
{
	if (n == 2)
		return s[0] == 0xc2 && s[1] <= 0x9f;
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x80)
		return s[2] >= 0xaa && s[2] <= 0xae;
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x81)
		return s[2] >= 0xa6 && s[2] <= 0xa9;
	return 0;
}

/*
 * Write bytes in the text form to out, or only count when out is NULL;
 * return the columns they take, a character counted as one.
 */
static size_t
show_text_to(FILE *out, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, k, cols = 0;
	char			 esc[8];

	while (i < len) {
		esc[0] = '\0';
		n = 1;
		if (p[i] == '\\')
			strcpy(esc, "\\\\");
		else if (p[i] == '\n')
			strcpy(esc, "\\n");
		else if (p[i] == '\t')
			strcpy(esc, "\\t");
		else if (p[i] < 0x20 || p[i] == 0x7f ||
		    (n = show_utf8_len(p + i, len - i)) == 0) {
			snprintf(esc, sizeof esc, "\\x%02x", p[i]);
			n = 1;
		} else if (show_unsafe(p + i, n)) {
			for (k = 0; k < n; k++) {
				cols += 4;
				if (out != NULL)
					fprintf(out, "\\x%02x", p[i + k]);
			}
			i += n;
			continue;
		}
		if (esc[0] != '\0') {
			cols += strlen(esc);
			if (out != NULL)
				fputs(esc, out);
		} else {
			cols++;
			if (out != NULL)
				fwrite(p + i, 1, n, out);
		}
		i += n;
	}
	return cols;
}

/* Print bytes on stdout in the text form. */
void
show_text(const char *s, size_t len)
{
	show_text_to(stdout, s, len);
}

/* Print bytes on out in the text form. */
void
show_text_fp(FILE *out, const char *s, size_t len)
{
	show_text_to(out, s, len);
}

/*
 * Print a message to out line by line, each in the text form and ending in
 * a newline; trailing empty lines are dropped.  jq-put --wait shows a failed
 * job's stderr tail with it.
 */
void
show_text_lines(FILE *out, const char *s, size_t len)
{
	const char	*nl;
	size_t		 n;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	while (len > 0) {
		nl = memchr(s, '\n', len);
		n = nl != NULL ? (size_t)(nl - s) : len;
		show_text_to(out, s, n > 0 && s[n - 1] == '\r' ? n - 1 : n);
		fputc('\n', out);
		if (nl == NULL)
			break;
		s += n + 1;
		len -= n + 1;
	}
}

/* The columns show_text takes for these bytes. */
size_t
show_text_width(const char *s, size_t len)
{
	return show_text_to(NULL, s, len);
}

/*
 * Print the last line of a message in the text form, trailing blanks
 * dropped, cut to its last max bytes or so after "...".
 */
void
show_text_tail(const char *s, size_t len, size_t max)
{
	size_t	 end = len, start;

	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r' ||
	    s[end - 1] == ' ' || s[end - 1] == '\t'))
		end--;
	for (start = end; start > 0 && s[start - 1] != '\n'; start--)
		;
	if (end - start > max) {
		start = end - max;
		/* do not start inside a UTF-8 sequence */
		while (start < end && ((unsigned char)s[start] & 0xc0) == 0x80)
			start++;
		fputs("...", stdout);
	}
	show_text(s + start, end - start);
}

/*
 * Print bytes on stdout as a JSON string: valid UTF-8 kept but for the
 * characters show_unsafe names, written as \uXXXX, and other bytes as
 * \u00XX.
 */
void
show_json(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;

	putchar('"');
	while (i < len) {
		if (p[i] == '"' || p[i] == '\\') {
			putchar('\\');
			putchar(p[i++]);
		} else if (p[i] == '\n') {
			fputs("\\n", stdout);
			i++;
		} else if (p[i] == '\t') {
			fputs("\\t", stdout);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f ||
		    (n = show_utf8_len(p + i, len - i)) == 0)
			printf("\\u%04x", p[i++]);
		else if (show_unsafe(p + i, n)) {
			/* two bytes 110xxxxx 10yyyyyy, or three 1110xxxx ... */
			printf("\\u%04x", n == 2 ? (p[i] & 0x1fU) << 6 |
			    (p[i + 1] & 0x3fU) : (p[i] & 0x0fU) << 12 |
			    (p[i + 1] & 0x3fU) << 6 | (p[i + 2] & 0x3fU));
			i += n;
		} else {
			fwrite(p + i, 1, n, stdout);
			i += n;
		}
	}
	putchar('"');
}
