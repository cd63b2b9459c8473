#!/usr/bin/env bats
# tests/distrust.bats: jq-run distrusts its server (issue 5).  A fake server (fake_server below,
# run by socat on a UNIX socket, one bash per connection) greets like jq-serve, answers HELLO and
# hands jq-run one hostile job: names with "../", absolute names, names that look like options,
# control bytes, empty and 4096-byte names, bodies shorter than announced or cut off, CRC and
# total mismatches, junk in the JOB line.  Each test proves that jq-run writes nothing outside its
# temporary directory (a listing of the test's directory before and after, and the would-be
# targets), never passes an option to the command (the command records its argv, NUL-separated,
# and every argument made from the job must be an absolute path inside --tmpdir), and reports the
# bad job (FAIL, or an error exit of man/jq-run.1) without crashing (no status above 9).
#
# The fake server logs every line it receives to $F/log and every payload to $F/<VERB>.data; a
# test writes the reply to the first TAKE, raw, to $F/job.  Later TAKEs get "NOJOB finished".

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock bytes
	F=$D/fake
	TMPD=$D/tmp
	REC=$D/argv
	mkdir -p "$F" "$TMPD" "$D/a/b/c" "$D/outside"
	printf 'precious\n' >"$D/outside/target"
	export F REC
	SOCK=$JQ_TMP/sock
	jq_bg socat "UNIX-LISTEN:$SOCK,fork,mode=600" EXEC:'bash -c fake_server'
	wait_for_socket "$SOCK"
}

# wait_for_socket PATH: wait until socat listens at PATH
wait_for_socket() {
	local i
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		[[ -S $1 ]] && return 0
		sleep 0.05
	done
	echo "wait_for_socket: no socket $1" >&2
	return 1
}

# fake_server: one connection of the fake jq-serve, on standard input and output
fake_server() {
	local line id verb
	export LC_ALL=C
	printf 'JQ 2 fake/0 auth=none\n'
	while IFS= read -r line; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$F/log"
		verb=${line%% *}
		id=${line#* }
		id=${id%% *}
		case $verb in
		HELLO)
			if [[ -e $F/hello-reply ]]; then cat "$F/hello-reply"; else printf 'OK 2\n'; fi
			;;
		TAKE)
			if mkdir "$F/taken" 2>/dev/null; then
				cat "$F/job"
				# a server that dies in the middle of the job's data
				[[ ! -e $F/close ]] || exit 0
			else
				printf 'NOJOB finished\n'
			fi
			;;
		PUT | FAIL)
			fake_payload "$verb" || exit 0
			;;
		TOUCH) printf 'OK %s lease=600\n' "$id" ;;
		RELEASE) printf 'OK %s\n' "$id" ;;
		QUIT)
			printf 'OK bye\n'
			exit 0
			;;
		*) printf 'ERR PROTO unknown command\n' ;;
		esac
	done
}

# fake_payload VERB: read a payload into $F/VERB.data and answer it
fake_payload() {
	local line n chunk out=$F/$1.data
	: >"$out"
	while IFS= read -r line; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$F/log"
		case $line in
		DATA\ *)
			n=${line#DATA }
			if ((n > 0)); then
				IFS= read -r -N "$n" chunk || return 1
				printf '%s' "$chunk" >>"$out"
			fi
			;;
		END\ *)
			if [[ -e $F/$1-reply ]]; then cat "$F/$1-reply"; else printf 'OK %s\n' "$id"; fi
			return 0
			;;
		ABORT)
			printf 'ERR ABORTED the client abandoned it\n'
			return 0
			;;
		*) return 1 ;;
		esac
	done
	return 1
}
export -f fake_server fake_payload

# job ENCODED-NAME DATA [ID]: make the fake server hand out a well-formed job
job() {
	local data=$2
	{
		printf 'JOB %s %s size=%d attempt=1 lease=600 token=0badc0de000000010123456789abcdef\n' "${3:-1}" "$1" "${#data}"
		printf 'DATA %d\n%s' "${#data}" "$data"
		printf 'END %d %s\n' "${#data}" "$(printf '%s' "$data" | crc32c)"
	} >"$F/job"
}

# snapshot: every path under $D but the fake server's files and the command's record, with
# type, size and link target; and the would-be targets outside $D
snapshot() {
	find "$D" \( -path "$F" -o -path "$REC" -o -name '.jq-cleanup' -o -name 'separate-stderr-*' \
		-o -path "$D/token" \) -prune -o -type d -printf '%P/\n' -o -printf '%P %y %s %l\n' |
		LC_ALL=C sort
	ls -d /x /pwned "$JQ_TMP/pwned" "$JQ_TMP/x" 2>/dev/null || true
}

# jr ARG...: run jq-run against the fake server from $D/a/b/c (so that "../../x" would land in
# $D/a), one slot, no reconnection, with a time limit; BEFORE holds the snapshot taken first
jr() {
	BEFORE=$(snapshot)
	cd "$D/a/b/c" || return 1
	run --separate-stderr timeout -k 5 60 jq-run -v -j 1 --reconnect 0 --tmpdir "$TMPD" \
		"unix:$SOCK" -- "$@"
	cd "$D" || return 1
	printf '%s\n' "$stderr" >"$F/jr.err"
}

# record_cmd: the command for jr that records its argv ({in} {out}) and copies in to out
record_cmd() {
	# shellcheck disable=SC2016 # expanded by the command's shell
	printf '%s\n' sh -c 'printf "%s\0" "$@" >"$REC"; cat -- "$1" >"$2"' sh '{in}' '{out}'
}

# assert_confined: jq-run left nothing behind and wrote nothing outside its temp directory
assert_confined() {
	local left
	left=$(ls -A "$TMPD")
	assert_equal "$left" ""
	assert_equal "$(snapshot)" "$BEFORE"
	assert_equal "$(cat "$D/outside/target")" precious
	# a status of man/jq-run.1, not a crash (a signal gives 128+N)
	((status <= 9))
}

# assert_argv_safe: every argument the command got is an absolute path in $TMPD, of a file
# directly in the job's in/ or out/ directory
assert_argv_safe() {
	local -a args
	local a tmp
	tmp=$(realpath "$TMPD")
	mapfile -d '' args <"$REC"
	assert_equal "${#args[@]}" 2
	for a in "${args[@]}"; do
		[[ $a == "$tmp"/jq-run.??????/in/* || $a == "$tmp"/jq-run.??????/out/* ]] || {
			echo "argument '$a' is not inside $tmp" >&2
			return 1
		}
		a=${a#"$tmp"/jq-run.??????/*/}
		[[ $a != */* && $a != . && $a != .. && -n $a ]] || {
			echo "argument leaves its directory: '$a'" >&2
			return 1
		}
	done
	# shellcheck disable=SC2034 # used by the caller
	ARGS=("${args[@]}")
}

# run_hostile ENCODED-NAME: run one well-formed job with that name through the recording
# command; it must succeed, with the payload back as the result, confined
run_hostile() {
	local -a cmd
	rm -rf "$F/taken" "$F/log" "$F"/*.data "$REC"
	job "$1" 'payload bytes'
	mapfile -t cmd < <(record_cmd)
	jr "${cmd[@]}"
	assert_success
	assert_confined
	assert_argv_safe
	run cat "$F/PUT.data"
	assert_output 'payload bytes'
}

@test "jq-run asks for its next job ahead of the result it delivers" {
	run_hostile plain.wav
	# the second TAKE goes out before the PUT, so the server hands the next job over while it
	# makes the result durable (jq-protocol(7), PIPELINING); the fake server has no second job
	run grep -E '^(TAKE|PUT|FAIL)' "$F/log"
	assert_output "$(printf '%s\n' 'TAKE hold=conn' 'TAKE hold=conn wait=0' 'PUT 1 token=0badc0de000000010123456789abcdef')"
}

@test "job names with ../ and absolute names never leave the temporary directory" {
	local name
	for name in ../../x ../../../../../../../../x "/pwned" "$JQ_TMP/pwned" "$D/a/x" \
		x/../../../../x .. . / ../ x/.. x/. ... %2E%2E %2E%2E%2Fx %2Fpwned \
		"..%2F..%2F..%2F${D//\//%2F}%2Fa%2Fx"; do
		run_hostile "$name"
		assert_file_not_exists "$D/a/x"
		assert_file_not_exists "$D/x"
		assert_file_not_exists "$TMPD/x"
		assert_file_not_exists "$JQ_TMP/pwned"
	done
	# ".." and "." become "job": never the directory itself or its parent
	run_hostile ..
	[[ ${ARGS[0]} == */in/job && ${ARGS[1]} == */out/job ]]
}

@test "job names that look like options reach the command only as absolute paths" {
	local name
	for name in -rf --help -- - --output=%2Fpwned -x.wav --in%3D..%2F..%2Fx; do
		run_hostile "$name"
		[[ ${ARGS[0]} == /* && ${ARGS[1]} == /* ]]
	done
	[[ ${ARGS[0]} == */in/--in=..%2F..%2Fx || ${ARGS[0]} == */in/x ]]
	assert_file_not_exists "$D/a/x"
	assert_file_not_exists /pwned
}

@test "control bytes in a job name stay in the file name and out of jq-run's messages" {
	local esc=$'\e'
	run_hostile 'a%0Ab%0D%1B]0;title%07%1B[2J%09c%7F.dat'
	[[ ${ARGS[0]} == */in/a$'\n'b$'\r'"$esc"']0;title'$'\a'"$esc"$'[2J\tc\x7f.dat' ]]
	# -v logs the job's name: shown with '?' for control bytes
	assert_regex "$(cat "$F/jr.err")" 'a\?b\?\?\]0;title\?\?\[2J\?c\?\.dat: job 1'
	run grep -c $'[\x01-\x09\x0b-\x1f\x7f]' "$F/jr.err"
	assert_output 0
}

@test "an empty, a NUL-only and a missing job name: a safe file name, or an error" {
	local -a cmd
	run_hostile %00
	[[ ${ARGS[0]} == */in/job ]]
	run_hostile %00%2F..%2Fx
	[[ ${ARGS[0]} == */in/job ]]
	# no name at all: a malformed JOB line (status 7), nothing run
	rm -rf "$F/taken" "$REC"
	printf 'JOB 1\n' >"$F/job"
	mapfile -t cmd < <(record_cmd)
	jr "${cmd[@]}"
	assert_failure 7
	assert_regex "$stderr" 'malformed JOB line'
	assert_file_not_exists "$REC"
	assert_confined
}

@test "job names of 4096 bytes and more are cut to a short file name" {
	local long i
	local -a cmd
	long=$(printf 'a%.0s' {1..4096})
	run_hostile "$long"
	((${#ARGS[0]} < 512))
	run_hostile "$long.wav"
	[[ ${ARGS[0]} == */in/aaaa*.wav ]]
	# 4096 bytes of ../ and then a name
	long=
	for ((i = 0; i < 1364; i++)); do long+=../; done
	run_hostile "${long}xyz"
	[[ ${ARGS[0]} == */in/xyz ]]
	# a long last component full of dots and percents
	long=$(printf '.%%25%.0s' {1..1000})
	run_hostile "$long"
	((${#ARGS[0]} < 512))
	# a JOB line longer than jq-run's whole input buffer (256 KiB): refused (status 7), nothing run
	rm -rf "$F/taken" "$REC"
	long=$(printf 'b%.0s' {1..1000})
	job "$long${long//?/$long}" abc
	mapfile -t cmd < <(record_cmd)
	jr "${cmd[@]}"
	assert_failure 7
	assert_regex "$stderr" 'longer than'
	assert_file_not_exists "$REC"
	assert_confined
}

@test "a body shorter than size= is the job's data: END is authoritative" {
	local -a cmd
	{
		printf 'JOB 1 short.dat size=1000 attempt=1 lease=600 token=0badc0de000000010123456789abcdef\n'
		printf 'DATA 3\nabc'
		printf 'END 3 %s\n' "$(printf abc | crc32c)"
	} >"$F/job"
	mapfile -t cmd < <(record_cmd)
	jr "${cmd[@]}"
	assert_success
	assert_confined
	assert_argv_safe
	run cat "$F/PUT.data"
	assert_output abc
}

# bad_body BODY [CMD...]: a job whose payload is BODY (after the JOB line); the command must not
# deliver anything (no PUT completed) and jq-run must fail with status 7, or 6 when cut off
bad_body() {
	local body=$1
	shift
	rm -rf "$F/taken" "$F/log" "$F"/*.data "$REC"
	{
		printf 'JOB 1 bad.dat size=10 attempt=1 lease=600 token=0badc0de000000010123456789abcdef\n'
		printf '%s' "$body"
	} >"$F/job"
	jr "$@"
	assert_confined
	# no result: PUT never ended
	if [[ -e $F/log ]] && grep -q '^PUT ' "$F/log"; then
		assert_equal "$(grep -c '^END ' "$F/log")" 0
	fi
}

@test "a CRC mismatch or a wrong END total: the job is not run on the damaged data" {
	local -a cmd
	mapfile -t cmd < <(record_cmd)
	bad_body $'DATA 3\nabcEND 3 00000000\n' "${cmd[@]}"
	assert_failure 7
	assert_regex "$stderr" '(CRC|checksum)'
	assert_file_not_exists "$REC"
	bad_body $'DATA 3\nabcEND 5 '"$(printf abc | crc32c)"$'\n' "${cmd[@]}"
	assert_failure 7
	assert_file_not_exists "$REC"
	bad_body $'DATA 3\nabcEND 2 '"$(printf ab | crc32c)"$'\n' "${cmd[@]}"
	assert_failure 7
	assert_file_not_exists "$REC"
	# frame lines with numbers that do not fit, or are no numbers
	bad_body $'DATA 18446744073709551616\nabcEND 3 00000000\n' "${cmd[@]}"
	assert_failure 7
	bad_body $'DATA -1\nabcEND 3 00000000\n' "${cmd[@]}"
	assert_failure 7
	bad_body $'DATA 3\nabcEND 3 0000000g\n' "${cmd[@]}"
	assert_failure 7
	assert_file_not_exists "$REC"
	# a DATA line longer than what follows it: "DATA 3" then a frame line inside the data
	bad_body $'DATA 5\nabEND 2 '"$(printf ab | crc32c)"$'\n' "${cmd[@]}"
	((status == 6 || status == 7))
	assert_file_not_exists "$REC"
}

@test "a damaged body streamed to standard input: the command is stopped, no result sent" {
	# no {in}: the data goes to the command's stdin while it arrives, output is the result
	bad_body $'DATA 3\nabcEND 3 00000000\n' cat
	assert_failure 7
	bad_body $'DATA 3\nabcEND 9 '"$(printf abc | crc32c)"$'\n' cat
	assert_failure 7
}

@test "a connection closed in the middle of the job's data: status 6, nothing left" {
	local -a cmd
	: >"$F/close"
	mapfile -t cmd < <(record_cmd)
	bad_body $'DATA 10\nabc' "${cmd[@]}"
	assert_failure 6
	assert_file_not_exists "$REC"
	bad_body $'DATA 10\nabc' cat
	assert_failure 6
	bad_body '' cat
	assert_failure 6
}

@test "junk fields in the JOB line are ignored or refused, never trusted" {
	local -a cmd
	mapfile -t cmd < <(record_cmd)
	{
		printf 'JOB 1 junk.dat size=-1 attempt=99999999999999999999999 lease=0 extra junk=%%zz token=0badc0de000000010123456789abcdef '
		printf 'size=abc\n'
		printf 'DATA 3\nabcEND 3 %s\n' "$(printf abc | crc32c)"
	} >"$F/job"
	jr "${cmd[@]}"
	assert_success
	assert_confined
	assert_argv_safe
	run cat "$F/PUT.data"
	assert_output abc
}

@test "a job id that is not a plain word is refused: never an option, never an escape" {
	local id
	# shellcheck disable=SC2016 # expanded by the command's shell
	for id in -rf --help ../../x $'\e[2J' '%2Fx'; do
		rm -rf "$F/taken" "$F/log" "$F"/*.data "$REC"
		job ok.dat abc "$id"
		jr sh -c 'printf "%s\0" "$@" >"$REC"' sh '{id}' '{in}'
		assert_failure 7
		assert_regex "$stderr" 'job id'
		assert_file_not_exists "$REC"
		assert_confined
		run grep -c $'\e' "$F/jr.err"
		assert_output 0
	done
}

@test "hostile error texts from the server reach jq-run's messages without control bytes" {
	local -a cmd
	mapfile -t cmd < <(record_cmd)
	# a refused result (ERR DONE: someone else delivered first) is logged, not a failure
	printf 'ERR DONE already there\e]0;pwned\a\e[2J\n' >"$F/PUT-reply"
	job ok.dat abc
	jr "${cmd[@]}"
	assert_success
	assert_confined
	assert_regex "$stderr" 'already there'
	run grep -c $'[\x01-\x09\x0b-\x1f\x7f]' "$F/jr.err"
	assert_output 0
	# an answer to HELLO that is not OK
	rm -rf "$F/taken" "$REC"
	printf 'ERR PROTO go away\e[2J\r\n' >"$F/hello-reply"
	jr "${cmd[@]}"
	assert_failure 7
	assert_confined
	assert_regex "$stderr" 'go away'
	assert_file_not_exists "$REC"
	run grep -c $'[\x01-\x09\x0b-\x1f\x7f]' "$F/jr.err"
	assert_output 0
}
