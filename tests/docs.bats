#!/usr/bin/env bats
# The documentation agrees with the programs: every option a tool's --help
# lists is an entry of its man page's option list and the other way round,
# with the same short and long forms paired; and jq(7) gathers the
# environment variables and files of every tool's page.  Nothing here names
# an option: the lists come from the programs and the pages themselves.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
	MAN=$BATS_TEST_DIRNAME/../man
}

TOOLS=(jq-serve jq-take jq-put jq-stat jq-run)

# help_entries TOOL: one line per option of TOOL --help, its names sorted and
# blank-separated ("--listen -l").  popt prints an option as "  -l, --listen=ADDR",
# "      --fresh" or "  -w, --watch[=INTERVAL]"; lines indented deeper continue a
# description.
help_entries() {
	"$1" --help | awk '
	# (no {1,8}: mawk, the Debian awk, has no intervals)
	match($0, /^ +-/) && RLENGTH <= 9 {
		sub(/^ +/, "")
		names = ""
		while (match($0, /^--?[?A-Za-z0-9][-A-Za-z0-9]*/)) {
			names = names " " substr($0, 1, RLENGTH)
			$0 = substr($0, RLENGTH + 1)
			sub(/^[^ ,]*/, "")	# the value: =ADDR, [=INTERVAL]
			if (!sub(/^, */, ""))
				break
		}
		print names
	}' | _sort_entries
}

# man_entries PAGE: one line per option entry of the mdoc PAGE (".It Fl ..." or
# ".It Xo" ... ".Xc"), its names sorted and blank-separated.  "Fl \-listen" is
# --listen, "Fl \&?" is -?.
man_entries() {
	awk '
	/^\.It Xo/ { xo = 1; line = ""; next }
	xo && /^\.Xc/ { xo = 0; print line; next }
	xo { line = line " " $0; next }
	/^\.It Fl / { print }' "$1" | awk '
	{
		names = ""
		for (i = 1; i < NF; i++)
			if ($i == "Fl" || $i == ".Fl") {
				w = $(i + 1)
				gsub(/\\&/, "", w)
				gsub(/\\-/, "-", w)
				names = names " -" w
			}
		if (names != "")
			print names
	}' | _sort_entries
}

# _sort_entries: sort the names within each line, then the lines
_sort_entries() {
	while read -r -a names; do
		printf '%s\n' "${names[@]}" | sort | paste -sd ' '
	done | sort -u
}

# options_agree TOOL PAGE: TOOL --help and PAGE list the same options with the
# same forms paired; else print each difference and return 1.
options_agree() {
	local tool=$1 page=$2 name bad=0
	local help man
	help=$(help_entries "$tool")
	man=$(man_entries "$page")
	[[ -n $help ]] || {
		echo "$tool --help: no option found"
		return 1
	}
	[[ -n $man ]] || {
		echo "$page: no option entry found"
		return 1
	}
	# names first: the message a person needs when an option is missing
	for name in $(comm -23 <(tr ' ' '\n' <<<"$help" | sort -u) <(tr ' ' '\n' <<<"$man" | sort -u)); do
		echo "$tool: $name is in --help but has no entry in ${page##*/}"
		bad=1
	done
	for name in $(comm -13 <(tr ' ' '\n' <<<"$help" | sort -u) <(tr ' ' '\n' <<<"$man" | sort -u)); do
		echo "$tool: $name has an entry in ${page##*/} but is not in --help"
		bad=1
	done
	if ((bad == 0)); then
		# same names: then each entry must pair the same short and long forms
		while IFS= read -r name; do
			[[ -n $name ]] && echo "$tool: --help has \"$name\" as one entry, ${page##*/} does not" && bad=1
		done < <(comm -23 <(printf '%s\n' "$help") <(printf '%s\n' "$man"))
	fi
	return "$bad"
}

@test "every option in each tool's --help has an entry in its man page, and the other way round" {
	local t out bad=0
	for t in "${TOOLS[@]}"; do
		out=$(options_agree "$t" "$MAN/$t.1") || {
			printf '%s\n' "$out" >&2
			bad=1
		}
	done
	((bad == 0))
}

@test "the option check reads both forms of --help and of mdoc, and catches each kind of mismatch" {
	local fake=$D/bin/jq-fake
	mkdir -p "$D/bin"
	# popt's layouts: short and long, long only, an optional value, a long
	# description continued on a deeper-indented line that starts with a dash
	cat >"$fake" <<'EOF'
#!/bin/sh
cat <<'HELP'
Usage: jq-fake [OPTION...] [SERVER]
  -l, --listen ADDR          listen on ADDR
  -T, --files-from=FILE      read names from FILE
                             -- not an option
      --fresh                start over
  -w, --watch[=INTERVAL]     again and again
  -q                         short only

Help options:
  -?, --help                 show this help and exit
HELP
EOF
	chmod +x "$fake"
	cat >"$D/good.1" <<'EOF'
.Bl -tag -width Ds
.It Fl l Ar addr , Fl \-listen Ns = Ns Ar addr
.It Fl T Ar file , Fl \-files-from Ns = Ns Ar file
.It Fl \-fresh
.It Xo
.Fl w Oo Ar interval Oc ,
.Fl \-watch Ns Oo = Ns Ar interval Oc
.Xc
.It Fl q
.It Fl \&? , Fl \-help
.El
EOF
	run -0 options_agree "$fake" "$D/good.1"
	assert_output ''

	# an option missing from the page, one the program does not have
	sed -e '/Fl \\-fresh/d' -e 's/^\.It Fl q$/.It Fl q , Fl \\-quiet/' "$D/good.1" >"$D/bad.1"
	run -1 options_agree "$fake" "$D/bad.1"
	assert_line "$fake: --fresh is in --help but has no entry in bad.1"
	assert_line "$fake: --quiet has an entry in bad.1 but is not in --help"

	# the same names, paired differently
	sed -e 's/^\.It Fl l Ar addr , Fl \\-listen.*/.It Fl l Ar addr\n.It Fl \\-listen Ns = Ns Ar addr/' \
		"$D/good.1" >"$D/split.1"
	run -1 options_agree "$fake" "$D/split.1"
	assert_output "$fake: --help has \"--listen -l\" as one entry, split.1 does not"
}

# section_items PAGE SECTION MACRO: the ".It MACRO ..." lines of SECTION in PAGE
section_items() {
	awk -v sec="$2" -v mac="$3" '
	BEGIN { prefix = mac == "" ? ".It " : ".It " mac " " }
	/^\.Sh / { in_sec = ($0 == ".Sh " sec) }
	in_sec && index($0, prefix) == 1 { print }' "$1" | sort -u
}

@test "jq(7) lists the environment variables and files of every tool's page" {
	local t line bad=0
	[[ -f $MAN/jq.7 ]]
	for t in "${TOOLS[@]}"; do
		while IFS= read -r line; do
			section_items "$MAN/jq.7" ENVIRONMENT Ev | grep -qxF -- "$line" || {
				echo "$t.1 has \"$line\" under ENVIRONMENT, jq.7 does not" >&2
				bad=1
			}
		done < <(section_items "$MAN/$t.1" ENVIRONMENT Ev)
		while IFS= read -r line; do
			section_items "$MAN/jq.7" FILES '' | grep -qxF -- "$line" || {
				echo "$t.1 has \"$line\" under FILES, jq.7 does not" >&2
				bad=1
			}
		done < <(section_items "$MAN/$t.1" FILES '')
	done
	((bad == 0))
}

@test "jq(7) names every tool and page, and each page names jq(7)" {
	local t
	for t in "${TOOLS[@]}"; do
		grep -qxF ".Xr $t 1" "$MAN/jq.7" || grep -qE "^\.Xr $t 1 [,.;]" "$MAN/jq.7" ||
			fail "jq.7 has no .Xr $t 1"
		grep -qE '^\.Xr jq 7( |$)' "$MAN/$t.1" || fail "$t.1 has no .Xr jq 7"
	done
	grep -qE '^\.Xr jq-protocol 7' "$MAN/jq.7"
	grep -qE '^\.Xr jq 7( |$)' "$MAN/jq-protocol.7"
}
