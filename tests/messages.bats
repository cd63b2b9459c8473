#!/usr/bin/env bats
# One message style: every line a tool writes to stderr starts with its
# name, "jq-take: ...".  Each tool is run through its usual error paths: bad
# options, every option of its --help given a bad value or none, a server
# that is not there, files that cannot be read or written, a wrong token, and
# a run against a live server (refusals, failed jobs, verbose logs).

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup sock
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	NOSOCK=unix:$D/no-such-socket
	HANDLE=7:0123456789abcdef0123456789abcdef
	ERRS=$D/errs
	: >"$ERRS"
	# what a bad value names (--joblog=..., an added job's result) lands here
	cd "$D" || return 1
}

TOOLS=(jq-serve jq-take jq-put jq-stat jq-run)

# base_args TOOL: operands that make TOOL fail on its own (no server, a missing
# input) once its options are accepted, without ever waiting or listening
base_args() {
	case $1 in
	jq-serve) echo "-l 127.0.0.1:0 --state-dir=$D/state $D/missing" ;;
	jq-take) echo "-o $D/out $NOSOCK" ;;
	jq-put) echo "$NOSOCK $HANDLE $D/a" ;;
	jq-stat) echo "$NOSOCK" ;;
	jq-run) echo "--reconnect=0 --tmpdir=$D $NOSOCK -- true" ;;
	esac
}

# value_options TOOL: the options of TOOL --help that take a value, long form
value_options() {
	"$1" --help | grep -E '^ {1,8}-' | grep -oE -- '--[a-z0-9-]+(=|\[=| [A-Z])' |
		grep -oE -- '--[a-z0-9-]+'
}

# try TOOL ARG...: run TOOL ARG... (bounded, stdin empty) and keep its stderr
# lines, each tagged with the command line, in $ERRS
try() {
	local tool=$1
	shift
	timeout -k 5 30 "$tool" "$@" </dev/null 2>"$D/stderr" >/dev/null || true
	sed "s|^|$tool $*	|" "$D/stderr" >>"$ERRS"
	[[ -s $D/stderr ]] || echo "$tool $*	(said nothing)" >>"$D/silent"
}

# all_prefixed: every line kept by try starts with its tool's name and ": "; else
# print each offending line once, with the first command that printed it
all_prefixed() {
	local cmd line bad=0
	local -A seen=()
	[[ -s $ERRS ]] || {
		echo "no message at all" >&2
		return 1
	}
	while IFS=$'\t' read -r cmd line; do
		[[ $line == "${cmd%% *}: "?* ]] && continue
		bad=1
		[[ ${seen[$line]-} ]] && continue
		seen[$line]=1
		printf 'not prefixed: %s\n    (from: %s)\n' "$line" "$cmd" >&2
	done <"$ERRS"
	return "$bad"
}

@test "usage errors of every tool: each stderr line starts with the tool's name" {
	local t o
	for t in "${TOOLS[@]}"; do
		# shellcheck disable=SC2046 # base_args prints words without blanks
		set -- $(base_args "$t")
		try "$t" --no-such-option "$@"
		try "$t" -Q "$@"
		try "$t" --no-such-option=1 "$@"
		for o in $(value_options "$t"); do
			try "$t" "$o=%bad value%" "$@"
			try "$t" "$o=" "$@"
			try "$t" "$@" "$o"
		done
		try "$t" --help --usage
	done
	all_prefixed
	# and none took a bad option in silence
	if [[ -s $D/silent ]] && grep -E -- ' (--no-such-option|-Q) ' "$D/silent" >&2; then
		false
	fi
}

@test "missing server, unreadable and unwritable files, a bad token: each stderr line starts with the tool's name" {
	local t
	printf 'not a token\n' >"$D/badtoken"
	chmod 600 "$D/badtoken"
	for t in "${TOOLS[@]}"; do
		# shellcheck disable=SC2046
		try "$t" $(base_args "$t")
		# shellcheck disable=SC2046
		try "$t" --token-file="$D/badtoken" $(base_args "$t")
		# shellcheck disable=SC2046
		try "$t" --token-file="$D/no-such-token" $(base_args "$t")
	done
	try jq-serve -l 127.0.0.1:0 --state-dir="$D/state" -o "$D/a/x" "$D/b"
	try jq-serve -l 127.0.0.1:0 --state-dir="$D/state" --files-from="$D/no-list"
	try jq-serve -l 127.0.0.1:0 --state-dir="$D/state" "$D"
	try jq-serve -l 127.0.0.1:0 --state-dir="$D/state" -r x "$D/a" "$D/b"
	try jq-serve -l "unix:$D/no/dir/sock" --state-dir="$D/state" "$D/a"
	try jq-take -o "$D/no/dir/in" 127.0.0.1:1
	try jq-take -w 1 127.0.0.1:1
	try jq-put 127.0.0.1:1 "$HANDLE" "$D/no-such-file"
	try jq-put --add 127.0.0.1:1 "$D/no-such-file"
	try jq-stat --json "[::1]:1"
	try jq-run --reconnect=0 --tmpdir="$D/no/dir" 127.0.0.1:1 -- true
	try jq-run --reconnect=0 127.0.0.1:1 -- "$D/no-such-command"
	all_prefixed
}

@test "against a live server: refusals, failed jobs and -v logs start with the tool's name" {
	local id
	start_server_unix -v --keep --state-dir="$D/state" "$D/a" "$D/b"
	id=$(jq-take -o "$D/in" "$SERVER" 2>>"$D/take.err")
	try jq-put "$SERVER" "$id" "$D/in"
	try jq-put "$SERVER" "$id" "$D/in"
	try jq-put --fail -m boom "$SERVER" "$id"
	try jq-put --retry "$SERVER" 99
	try jq-put --touch "$SERVER" "$HANDLE"
	try jq-run -v --max-jobs=1 --reconnect=0 --tmpdir="$D" "$SERVER" -- false
	# nothing waits now: jq-take gives up after 100 ms
	try jq-take -w 100ms -o "$D/in2" "$SERVER"
	try jq-put --add "$SERVER" "$D/a"
	try jq-put --add "$SERVER" "$D/a"
	try jq-run -v --max-jobs=1 --reconnect=0 --tmpdir="$D" "$SERVER" -- cat
	try jq-stat --state=nonsense "$SERVER"
	try jq-stat --no-auth "$SERVER"
	try jq-put --shutdown "$SERVER"
	wait_server_exit
	sed "s|^|jq-serve -v	|" "$SERVER_LOG" >>"$ERRS"
	sed "s|^|jq-take	|" "$D/take.err" >>"$ERRS"
	all_prefixed
}
